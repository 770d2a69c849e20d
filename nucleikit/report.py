"""Chapter results: metrics recorded beside the paper's numbers, in one predictable place.

A chapter records its measured metrics once, at the end of its evaluation::

    rep = nk.report.Report("07_kinet", profile=profile, settings=cfg)
    rep.add("KiNet", "det_f1", f1, paper=("xing2019", "KiNet"))
    rep.show()   # rounded table, printed under ``# NBVAL_CHECK_OUTPUT``
    rep.save()   # -> <results dir>/07_kinet.json

The results folder is ``$NUCLEIKIT_RESULTS``, else ``<checkout>/_build/results``
(see :mod:`nucleikit._paths`).
``python -m nucleikit run`` points it at ``<out>/results`` and gathers every chapter's file into a summary
table (markdown + CSV) with :func:`summarize`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from ._paths import results_dir
from .papers import PAPERS, paper_value

__all__ = ["Report", "Row", "load", "results_dir", "summarize", "write_summary", "write_text_atomic"]


@dataclass(frozen=True)
class Row:
    """One measured value with the paper's value for the same method and metric (if it reports one)."""

    experiment: str
    metric: str
    ours: float
    paper: float | None = None
    paper_ref: str = ""
    note: str = ""


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically: a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Report:
    """Collect a chapter's metrics and save them as ``<results dir>/<chapter>.json``.

    Parameters
    ----------
    chapter : str
        Chapter key, e.g. ``"03_segmentation"``.
    profile : str
        Profile the metrics were measured with.
    settings : dataclass, optional
        The chapter's resolved settings, stored beside the metrics.
    """

    def __init__(self, chapter: str, *, profile: str, settings: Any = None) -> None:
        self.chapter = chapter
        self.profile = profile
        self.settings = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
        self.rows: list[Row] = []
        self.extra: dict[str, Any] = {}

    def add(
        self,
        experiment: str,
        metric: str,
        ours: float,
        *,
        paper: tuple[str, str] | float | None = None,
        note: str = "",
    ) -> None:
        """Record one value.

        Parameters
        ----------
        experiment : str
            Method or setting, e.g. ``"KiNet, seed 0"``.
        metric : str
            Metric name, e.g. ``"det_f1"``.
        ours : float
            The measured value.
        paper : (paper key, method) or float, optional
            The paper's value: looked up in :data:`nucleikit.papers.PAPERS` under the same metric name,
            or given directly.
        note : str
            Free text (e.g. why the numbers are not comparable).
        """
        ours = float(ours)
        ref, value = "", None
        if isinstance(paper, tuple):
            key, method = paper
            if key not in PAPERS:
                raise ValueError(f"paper: unknown paper key {key!r}; known: {', '.join(PAPERS)}")
            value = paper_value(key, method, metric)
            ref = f"{key}: {method}"
        elif paper is not None:
            value = float(paper)
        self.rows.append(Row(experiment, metric, ours, value, ref, note))

    def add_many(self, experiment: str, metrics: dict[str, float], **kwargs: Any) -> None:
        """Record several metrics of one experiment (same keyword arguments as :meth:`add`)."""
        for metric, value in metrics.items():
            self.add(experiment, metric, value, **kwargs)

    def table(self, decimals: int | None = None):
        """Return the rows as a pandas DataFrame (columns experiment, metric, ours, paper, note)."""
        import pandas as pd

        df = pd.DataFrame(
            [dataclasses.asdict(r) for r in self.rows],
            columns=["experiment", "metric", "ours", "paper", "paper_ref", "note"],
        )
        if decimals is not None:
            df[["ours", "paper"]] = df[["ours", "paper"]].astype(float).round(decimals)
        return df

    def show(self, decimals: int = 3) -> None:
        """Print the rounded table as aligned text (deterministic, for ``# NBVAL_CHECK_OUTPUT`` cells)."""
        print(format_rows(self.rows, decimals))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready content of the results file."""
        return {
            "chapter": self.chapter,
            "profile": self.profile,
            "nucleikit_version": __version__,
            "settings": self.settings,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "extra": self.extra,
        }

    def save(self, folder: str | Path | None = None) -> Path:
        """Write ``<folder>/<chapter>.json`` atomically and return its path (folder: the results dir)."""
        path = Path(folder or results_dir()) / f"{self.chapter}.json"
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n")
        return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a results file")


def _fmt(value: float | None, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{decimals}f}"
    return "0." + "0" * decimals if text.lstrip("-") == "0." + "0" * decimals else text


def format_rows(rows: list[Row], decimals: int = 3) -> str:
    """Format rows as an aligned text table with the paper's value beside ours."""
    header = ("experiment", "metric", "ours", "paper")
    body = [(r.experiment, r.metric, _fmt(r.ours, decimals), _fmt(r.paper, decimals)) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in body]
    return "\n".join(lines)


def load(chapter: str, folder: str | Path | None = None) -> dict[str, Any]:
    """Load a chapter's results file."""
    path = Path(folder or results_dir()) / f"{chapter}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def summarize(folder: str | Path | None = None, chapters: list[str] | None = None):
    """Gather every chapter's results into one DataFrame (one row per chapter, experiment, metric)."""
    import pandas as pd

    folder = Path(folder or results_dir())
    frames = []
    for path in sorted(folder.glob("*.json")):
        if chapters is not None and path.stem not in chapters:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        df = pd.DataFrame(
            data["rows"], columns=["experiment", "metric", "ours", "paper", "paper_ref", "note"]
        )
        df.insert(0, "profile", data.get("profile", ""))
        df.insert(0, "chapter", data.get("chapter", path.stem))
        frames.append(df)
    if not frames:
        return pd.DataFrame(
            columns=["chapter", "profile", "experiment", "metric", "ours", "paper", "paper_ref", "note"]
        )
    return pd.concat(frames, ignore_index=True)


def write_summary(df, out: str | Path, decimals: int = 3) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.md`` (one markdown table per chapter) into ``out``."""
    out = Path(out)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    write_text_atomic(csv_path, df.to_csv(index=False))
    parts = ["# nucleikit results: ours beside the papers'\n"]
    for chapter, group in df.groupby("chapter", sort=True):
        parts.append(f"\n## {chapter} (profile {group['profile'].iloc[0]})\n")
        parts.append("\n| experiment | metric | ours | paper | paper source |\n|---|---|---|---|---|\n")
        for r in group.itertuples():
            paper = None if r.paper is None or r.paper != r.paper else r.paper
            parts.append(
                f"| {r.experiment} | {r.metric} | {_fmt(r.ours, decimals)} | "
                f"{_fmt(paper, decimals)} | {r.paper_ref} |\n"
            )
    write_text_atomic(md_path, "".join(parts))
    return md_path, csv_path
