"""Every exercise of every chapter: the student stub fails its check, the solution passes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import nucleikit as nk

ROOT = Path(__file__).resolve().parent.parent
CHECK = re.compile(r'nk\.exercises\.check\(\s*"([^"]+)"\s*,\s*(\w+)\s*\)')


def _exercises() -> list[tuple[str, str, str, str, str]]:
    """(notebook, exercise id, function name, stub source, solution source) for every exercise."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        for i, cell in enumerate(cells):
            if "exercise" not in cell["metadata"].get("tags", []):
                continue
            solution = next((c for c in cells[i + 1 :] if "solution" in c["metadata"].get("tags", [])), None)
            assert solution is not None, f"{path.name}: exercise cell {i} has no solution cell after it"
            later = "".join("".join(c["source"]) for c in cells[i + 1 :])
            match = CHECK.search(later)
            assert match, f"{path.name}: exercise cell {i} is not followed by nk.exercises.check(...)"
            found.append(
                (path.stem, match[1], match[2], "".join(cell["source"]), "".join(solution["source"]))
            )
    return found


EXERCISES = _exercises()


def _namespace() -> dict:
    import scipy
    import skimage
    import torch

    return {"np": np, "nk": nk, "torch": torch, "scipy": scipy, "skimage": skimage}


@pytest.mark.parametrize(
    ("notebook", "ex_id", "func", "stub", "solution"), EXERCISES, ids=[f"{e[0]}-{e[1]}" for e in EXERCISES]
)
def test_stub_fails_and_solution_passes(notebook, ex_id, func, stub, solution):
    ns = _namespace()
    exec(compile(stub, f"<{notebook} exercise {ex_id}>", "exec"), ns)
    with pytest.raises(NotImplementedError, match=f"Exercise {re.escape(ex_id)} is not done yet"):
        nk.exercises.check(ex_id, ns[func])
    ns = _namespace()
    exec(compile(solution, f"<{notebook} solution {ex_id}>", "exec"), ns)
    nk.exercises.check(ex_id, ns[func])


def test_every_registered_exercise_is_in_its_chapter():
    in_notebooks = {e[1] for e in EXERCISES}
    for chapter in nk.profiles.CHAPTERS.values():
        for ex_id in nk.exercises.registered(chapter.number):
            assert ex_id in in_notebooks, f"exercise {ex_id} has a check but no cells in {chapter.key}"


def test_check_tells_stub_wrong_and_right_apart(capsys):
    @nk.exercises.register("99.1")
    def _square_check(func):
        assert func(3) == 9, "square(3) should be 9"

    def stub(x):
        raise NotImplementedError

    try:
        with pytest.raises(NotImplementedError, match=r"Exercise 99\.1 is not done yet"):
            nk.exercises.check("99.1", stub)
        with pytest.raises(AssertionError, match=r"square\(3\) should be 9"):
            nk.exercises.check("99.1", lambda x: x + 1)
        nk.exercises.check("99.1", lambda x: x * x)
        assert capsys.readouterr().out == "Exercise 99.1: correct.\n"
    finally:
        del nk.exercises._CHECKS["99.1"]


def test_unknown_exercise_id_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected 'NN\.k'"):
        nk.exercises.check("x.1", print)
    with pytest.raises(ValueError, match="no exercise checks for chapter 98"):
        nk.exercises.check("98.1", print)
