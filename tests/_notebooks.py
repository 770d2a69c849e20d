"""Tiny notebooks for testing the chapter pipeline (papermill, nbval, the rerun CLI)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def make_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    """Write a notebook of (kind, source, tags) cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def chapter_cells(key: str, body: str = "x = 1 + 1") -> list[tuple[str, str, list[str]]]:
    """The cells of a minimal chapter: parameters, resolve, a body and a checked, reported metric."""
    return [
        ("markdown", f"# {key}", []),
        ("code", 'profile = "quick"', ["parameters"]),
        ("code", f'import nucleikit as nk\ncfg = nk.profiles.resolve("{key}", profile, globals())', []),
        ("code", body, []),
        (
            "code",
            "# NBVAL_CHECK_OUTPUT\n"
            f'rep = nk.report.Report("{key}", profile=profile, settings=cfg)\n'
            'rep.add("demo", "f1", 0.5 + cfg.seed / 100)\nrep.save()\nrep.show()',
            [],
        ),
    ]
