"""Answers to the tutorials' exercises, kept apart so that a student can try first.

The differentiation answers (lesson 6) are in :mod:`chainrule.exercises.solutions.diff`.
"""
