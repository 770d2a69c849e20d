"""PanNuke (Gamper et al. 2019, 2020): 7,901 H&E patches of 256 x 256 from 19 tissues. Gated.

- Official URLs: https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke/fold_{1,2,3}.zip (about 0.7 GB each).
  The TIA Centre pages may ask for a login (reports since November 2023; one user reported them working
  again in January 2025). Try ``python -m data_scripts.pannuke --dest DIR --url <fold URL>``; if it fails,
  download the folds in a browser and pass each with ``--archive fold_1.zip``. A third-party mirror is the
  Hugging Face dataset ``Angelou0516/PanNuke`` (keep the original licence).
- sha256: fold 1 6e19ad380300e8ce9480f9ab6a14cc91fa4b6a511609b40e3d70bdf9c881ed0b,
  fold 2 5bc540cc509f64b5f5a274d6e5a245527dbd3e6d3155d43555115c5d54709b07,
  fold 3 c14d372981c42f611ebc80afad01702b89cad8c1b3089daa31931cf5a4b1a39d
- Licence: CC BY-NC-SA 4.0 (non-commercial; do not redistribute in this repository).
- Cite: J. Gamper et al. PanNuke: an open pan-cancer histology dataset for nuclei instance segmentation
  and classification. ECDP 2019; and arXiv:2003.10778 (2020).
- Format: ``images.npy`` (N, 256, 256, 3) float and ``masks.npy`` (N, 256, 256, 6): instance maps of
  neoplastic, inflammatory, connective, dead and epithelial nuclei, then background. The arrays are about
  8 GB per fold in memory, so they are extracted to disk and read with ``mmap_mode="r"``.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._common import Dataset, centroids, main, write_dataset

CLASSES = ("neoplastic", "inflammatory", "connective", "dead", "epithelial")
SHA256 = {
    1: "6e19ad380300e8ce9480f9ab6a14cc91fa4b6a511609b40e3d70bdf9c881ed0b",
    2: "5bc540cc509f64b5f5a274d6e5a245527dbd3e6d3155d43555115c5d54709b07",
    3: "c14d372981c42f611ebc80afad01702b89cad8c1b3089daa31931cf5a4b1a39d",
}


def masks_to_item(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge PanNuke's per-class instance maps (256, 256, 6) into labels 1..N and classes (N,)."""
    labels = np.zeros(mask.shape[:2], np.int32)
    classes = []
    for k in range(len(CLASSES)):
        inst = mask[..., k].astype(np.int64)
        for v in np.unique(inst[inst > 0]):
            classes.append(k)
            labels[inst == v] = len(classes)
    return labels, np.asarray(classes, np.int64)


def convert(archive: Path, out: Path) -> None:
    m = re.search(r"fold_?(\d)", archive.name.lower())
    fold = int(m.group(1)) if m else 1
    tmp = Path(tempfile.mkdtemp(prefix=".pannuke-", dir=out.parent if out.parent.exists() else None))
    try:
        with zipfile.ZipFile(archive) as z:
            want = {}
            for n in z.namelist():
                if n.endswith("images.npy") or n.endswith("masks.npy"):
                    want[Path(n).name] = Path(z.extract(n, tmp))
        if set(want) != {"images.npy", "masks.npy"}:
            raise ValueError(f"{archive}: expected images.npy and masks.npy inside")
        images = np.load(want["images.npy"], mmap_mode="r")
        masks = np.load(want["masks.npy"], mmap_mode="r")

        def items():
            for i in range(images.shape[0]):
                labels, classes = masks_to_item(np.asarray(masks[i]))
                img = np.clip(np.asarray(images[i]), 0, 255).astype(np.uint8)
                yield (
                    f"fold{fold}/{i:05d}",
                    f"fold{fold}",
                    {
                        "image": img,
                        "labels": labels,
                        "points_rc": centroids(labels),
                        "classes": classes,
                        "regions": None,
                    },
                )

        write_dataset(
            out.with_name(f"{out.name}_fold{fold}"),
            {
                "name": f"pannuke_fold{fold}",
                "source": DATASET.page,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.25,
                "class_names": list(CLASSES),
                "region_names": [],
            },
            items(),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DATASET = Dataset(
    name="pannuke",
    url=None,
    filename="fold_1.zip",
    sha256=SHA256[1],
    size="about 0.7 GB per fold, 3 folds",
    licence="CC BY-NC-SA 4.0",
    citation="Gamper et al., ECDP 2019 / arXiv:2003.10778",
    page="https://warwick.ac.uk/fac/cross_fac/tia/data/pannuke/",
    convert=convert,
    instructions=__doc__.split("- sha256")[0],
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
