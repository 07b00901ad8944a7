"""Exercises with checkers: write a backward pass, have it checked element by element.

The differentiation exercises (lesson 6) are in :mod:`chainrule.exercises.diff`; everything in it
is importable from here: ``from chainrule.exercises import check_sigmoid, sigmoid_vjp``. How a
check works is in :mod:`chainrule.exercises.checking`.
"""
from .checking import ATOL, RTOL, Attempt, Exercise, ExerciseError, ExerciseReport, attempt
from .diff import *  # noqa: F401,F403  (the exercises, their stubs and checkers)
from .diff import CHECKS, EXERCISES, STUBS
