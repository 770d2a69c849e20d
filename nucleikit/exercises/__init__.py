"""Exercise checks for the chapter notebooks.

A chapter's exercise is three cells: a student stub (tag ``exercise``) that defines a function raising
``NotImplementedError``, the solution (tags ``solution`` and ``hide-input``, collapsed in the book), and a
check cell::

    nk.exercises.check("03.1", weight_map)

Checks live in ``nucleikit/exercises/chNN.py``, one module per chapter, each registering functions with
:func:`register`. A check raises ``NotImplementedError`` while the stub is in place, ``AssertionError`` with a
hint when the answer is wrong, and prints a one-line confirmation when it is right. CI runs every stub and
every solution of every notebook against its check (``tests/test_exercises.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["check", "register", "registered"]

_CHECKS: dict[str, Callable[[Callable[..., Any]], None]] = {}


def register(exercise_id: str) -> Callable:
    """Register a check function under an id such as ``"03.1"`` (chapter number, dot, exercise number)."""

    def wrap(func: Callable[[Callable[..., Any]], None]) -> Callable[[Callable[..., Any]], None]:
        _CHECKS[exercise_id] = func
        return func

    return wrap


def _load(exercise_id: str) -> Callable[[Callable[..., Any]], None]:
    if exercise_id in _CHECKS:
        return _CHECKS[exercise_id]
    chapter = exercise_id.split(".", 1)[0]
    if not chapter.isdigit():
        raise ValueError(f"exercise id: expected 'NN.k' (e.g. '03.1'), got {exercise_id!r}")
    try:
        importlib.import_module(f".ch{int(chapter):02d}", __name__)
    except ModuleNotFoundError as exc:
        raise ValueError(f"no exercise checks for chapter {chapter} ({exc})") from None
    if exercise_id not in _CHECKS:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(_CHECKS))}")
    return _CHECKS[exercise_id]


def registered(chapter: int) -> list[str]:
    """Return the exercise ids registered for a chapter."""
    try:
        importlib.import_module(f".ch{chapter:02d}", __name__)
    except ModuleNotFoundError:
        return []
    return sorted(k for k in _CHECKS if int(k.split(".")[0]) == chapter)


def check(exercise_id: str, func: Callable[..., Any]) -> None:
    """Check a learner's function for one exercise.

    Raises
    ------
    NotImplementedError
        While the function is still the stub.
    AssertionError
        When the function gives a wrong answer (the message says what differs).
    """
    checker = _load(exercise_id)
    try:
        checker(func)
    except NotImplementedError:
        raise NotImplementedError(
            f"Exercise {exercise_id} is not done yet: replace the `raise NotImplementedError` with your code"
        ) from None
    print(f"Exercise {exercise_id}: correct.")
