"""BC-DeepLIIF: Ki67-stained breast cancer tiles with positive / negative nuclei (Ghahremani et al. 2022).

- URL: https://zenodo.org/records/4751737/files/BC-DeepLIIF_Training_Set.zip?download=1 (training set;
  ``--url`` with ``BC-DeepLIIF_Validation_Set.zip`` and ``--sha256`` below for the validation set)
- sha256: training 598bef02f1dcc54f888976ad5ed267e1672816e9326c2011a35c68d5b0167d8e,
  validation 349278854a95b0a31790e81acd21f87c7afaa8f3641ce5fb4c47b09987e45b23
- Size: several hundred MB.
- Licence: CC BY 4.0.
- Cite: P. Ghahremani et al. Deep learning-inferred multiplex immunofluorescence for IHC quantification.
  Nature Machine Intelligence 4, 2022.
- Format: PNG strips of six 512 x 512 panels (IHC, hematoxylin, DAPI, Lap2, marker, mask). In the mask,
  red = Ki67-positive, blue = negative nucleus, green = boundary. Instances are connected components of
  each colour (touching nuclei may merge; the mask is slightly offset from the IHC panel).
  Classes: 0 = positive, 1 = negative (the first two classes of ``nk.synth.KI67_CLASSES``); there is no
  non-tumour class and no region map.

Usage: ``python -m data_scripts.bc_deepliif --dest DIR``
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from ._common import Dataset, centroids, instances_from_mask, main, write_dataset

PANELS = 6


def split_strip(strip: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (IHC image, instance labels, classes) of one six-panel strip."""
    w = strip.shape[1]
    pw = w // PANELS
    if pw * PANELS != w:
        raise ValueError(f"expected a strip of {PANELS} panels side by side, got width {w}")
    ihc = strip[:, :pw, :3]
    mask = strip[:, (PANELS - 1) * pw :, :3].astype(int)
    red = (mask[..., 0] > 127) & (mask[..., 2] <= 127) & (mask[..., 1] <= 127)
    blue = (mask[..., 2] > 127) & (mask[..., 0] <= 127) & (mask[..., 1] <= 127)
    pos, neg = instances_from_mask(red), instances_from_mask(blue)
    labels = np.where(neg > 0, neg + pos.max(), pos).astype(np.int32)
    classes = np.concatenate([np.zeros(pos.max(), np.int64), np.ones(neg.max(), np.int64)])
    return np.ascontiguousarray(ihc), labels, classes


def convert(archive: Path, out: Path) -> None:
    from PIL import Image

    with zipfile.ZipFile(archive) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith(".png"))
        if not names:
            raise ValueError(f"{archive}: no PNG strips found")

        def items():
            for n in names:
                strip = np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB"))
                ihc, labels, classes = split_strip(strip)
                split = "val" if "valid" in n.lower() else "test" if "test" in n.lower() else "train"
                yield (
                    Path(n).stem,
                    split,
                    {
                        "image": ihc,
                        "labels": labels,
                        "points_rc": centroids(labels),
                        "classes": classes,
                        "regions": None,
                    },
                )

        write_dataset(
            out,
            {
                "name": "bc_deepliif",
                "source": DATASET.url,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.5,
                "class_names": ["ki67_positive_tumour", "ki67_negative_tumour"],
                "region_names": [],
            },
            items(),
        )


DATASET = Dataset(
    name="bc_deepliif",
    url="https://zenodo.org/records/4751737/files/BC-DeepLIIF_Training_Set.zip?download=1",
    filename="BC-DeepLIIF_Training_Set.zip",
    sha256="598bef02f1dcc54f888976ad5ed267e1672816e9326c2011a35c68d5b0167d8e",
    size="several hundred MB",
    licence="CC BY 4.0",
    citation="Ghahremani et al., Nature Machine Intelligence 2022",
    page="https://zenodo.org/records/4751737",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
