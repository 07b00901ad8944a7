"""Tutorials: lessons as Jupytext "py:percent" scripts, with exercises, checkers and solutions.

- ``diff_0N_*.py``: the differentiation lessons (section 5.5 of the source material, Tomasi's
  back-propagation notes, the softmax / cross-entropy lecture). Run one with
  ``python tutorials/diff_01_graphs.py`` or open it as a notebook with Jupytext.
- :mod:`tutorials.exercises`: the exercises' forward functions, stubs for the student, and checkers.
- :mod:`tutorials.solutions`: the answers, kept apart so that a student can try first.

See ``tutorials/README.md`` for the index.
"""
