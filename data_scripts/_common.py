"""Shared command line and conversion helpers of the dataset scripts."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._download import DownloadError, download

__all__ = ["Dataset", "instances_from_mask", "main", "write_dataset"]


@dataclass(frozen=True)
class Dataset:
    """What a script downloads and how it converts it."""

    name: str
    url: str | None
    filename: str
    sha256: str | None
    size: str
    licence: str
    citation: str
    page: str
    convert: Callable[[Path, Path], None] | None = None
    instructions: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def instances_from_mask(mask: np.ndarray, min_size: int = 4) -> np.ndarray:
    """Label the connected components of a binary mask as instances 1..N (tiny ones dropped)."""
    from skimage.measure import label
    from skimage.segmentation import relabel_sequential

    lab = label(np.asarray(mask) > 0, connectivity=1)
    if min_size > 1 and lab.max() > 0:
        small = np.bincount(lab.ravel()) < min_size
        small[0] = False
        lab[small[lab]] = 0
    return relabel_sequential(lab)[0].astype(np.int32)


def centroids(labels: np.ndarray) -> np.ndarray:
    """Centroids (row, col) of instances 1..N, shape (N, 2)."""
    from scipy import ndimage as ndi

    n = int(labels.max())
    if n == 0:
        return np.zeros((0, 2))
    return np.asarray(ndi.center_of_mass(np.ones_like(labels), labels, np.arange(1, n + 1)), float).reshape(
        -1, 2
    )


def write_dataset(out: Path, meta: dict[str, Any], items: Iterable[tuple[str, str, dict[str, Any]]]) -> Path:
    """Write a converted dataset atomically: items into a temporary folder, then one rename.

    ``items`` yields ``(name, split, item)``. The folder ``out`` appears only when complete; an old
    version is replaced.
    """
    from nucleikit import data

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        records = []
        for i, (name, split, item) in enumerate(items):
            rel = f"items/{i:05d}.npz"
            data.save_item(tmp / rel, item)
            records.append({"file": rel, "split": split, "name": name})
        data.write_meta(tmp, {**meta, "items": records})
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(ds: Dataset, argv: list[str] | None = None) -> int:
    """Command line of one dataset script; returns the exit code (0 = converted)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m data_scripts.{ds.name}",
        description=f"Download and convert {ds.name} ({ds.size}; licence: {ds.licence}). Cite: {ds.citation}",
    )
    parser.add_argument(
        "--dest",
        required=True,
        type=Path,
        help="folder for the download and the converted dataset (e.g. $NUCLEIKIT_DATA/datasets)",
    )
    parser.add_argument(
        "--url", default=ds.url, help="download address (a mirror); default: the official one"
    )
    parser.add_argument("--sha256", default=ds.sha256, help="expected sha256 of the archive")
    parser.add_argument(
        "--archive", type=Path, help="an archive you downloaded yourself (skips the download)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    print(f"{ds.name}: {ds.page}\n  licence: {ds.licence}\n  cite: {ds.citation}", file=sys.stderr)
    try:
        if args.archive is not None:
            archive = args.archive
            if not archive.is_file():
                raise DownloadError(f"--archive {archive}: no such file")
            if args.sha256:
                from ._download import sha256_file

                got = sha256_file(archive)
                if got != args.sha256:
                    raise DownloadError(f"{archive}: sha256 {got} does not match the expected {args.sha256}")
        elif args.url is None:
            print(ds.instructions.strip(), file=sys.stderr)
            return 2
        else:
            archive = download(
                args.url,
                args.dest / "downloads" / ds.filename,
                sha256=args.sha256,
                progress=not args.no_progress,
            )
        if ds.convert is None:
            print(f"{ds.name}: downloaded to {archive}; no converter yet", file=sys.stderr)
            return 0
        out = args.dest / ds.name
        ds.convert(archive, out)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: converting {ds.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"{ds.name}: converted into {out}; read it with nk.data.ConvertedDataset({str(out)!r})",
        file=sys.stderr,
    )
    return 0
