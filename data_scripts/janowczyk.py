"""Janowczyk nuclei: ER+ breast H&E with *partial* nucleus masks (Janowczyk & Madabhushi 2016).

- URL: https://andrewjanowczyk.com/wp-static/nuclei.tgz
- sha256: cb881c29d9f0ae5ad1d953160a4e00be70af329e0351eed614d51b4b66c65e6b
- Size: about 1.5 GB; 143 images of 2000 x 2000 at 40x, about 12,000 nuclei annotated (sparsely).
- Licence: none stated; research use; cite the paper.
- Cite: A. Janowczyk, A. Madabhushi. Deep learning for digital pathology image analysis: a comprehensive
  tutorial with selected use cases. J Pathol Inform 7:29, 2016.
- Format: ``*_original.tif`` + ``*_mask.png`` (binary). **Unlabelled is not background**: only some nuclei
  are outlined. Split by patient (first token of the name): the last 15 patients "test", the 5 before
  "val", the rest "train" (as in Sayin Mercadier et al.: 121 / 5 / 15 images, approximately).

Usage: ``python -m data_scripts.janowczyk --dest DIR``
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np

from ._common import Dataset, centroids, instances_from_mask, main, write_dataset


def convert(archive: Path, out: Path) -> None:
    import tifffile
    from PIL import Image

    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        originals = sorted(n for n in members if n.endswith("_original.tif"))
        pairs = [(n, n.replace("_original.tif", "_mask.png")) for n in originals]
        pairs = [(a, b) for a, b in pairs if b in members]
        if not pairs:
            raise ValueError(f"{archive}: no *_original.tif with a matching *_mask.png found")
        patients = sorted({Path(a).name.split("_")[0] for a, _ in pairs})
        test, val = set(patients[-15:]), set(patients[-20:-15])

        def items():
            for a, b in pairs:
                img = tifffile.imread(io.BytesIO(tar.extractfile(members[a]).read()))[..., :3]
                mask = np.asarray(Image.open(io.BytesIO(tar.extractfile(members[b]).read())))
                if mask.ndim == 3:
                    mask = mask[..., 0]
                labels = instances_from_mask(mask)
                pid = Path(a).name.split("_")[0]
                split = "test" if pid in test else "val" if pid in val else "train"
                pts = centroids(labels)
                yield (
                    Path(a).name.removesuffix("_original.tif"),
                    split,
                    {
                        "image": np.ascontiguousarray(img.astype(np.uint8)),
                        "labels": labels,
                        "points_rc": pts,
                        "classes": np.zeros(len(pts), np.int64),
                        "regions": None,
                    },
                )

        write_dataset(
            out,
            {
                "name": "janowczyk",
                "source": DATASET.url,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.25,
                "class_names": ["nucleus"],
                "region_names": [],
                "partial": True,
            },
            items(),
        )


DATASET = Dataset(
    name="janowczyk",
    url="https://andrewjanowczyk.com/wp-static/nuclei.tgz",
    filename="nuclei.tgz",
    sha256="cb881c29d9f0ae5ad1d953160a4e00be70af329e0351eed614d51b4b66c65e6b",
    size="about 1.5 GB, 143 images",
    licence="none stated (research use; cite the paper)",
    citation="Janowczyk & Madabhushi, J Pathol Inform 2016 (doi:10.4103/2153-3539.186902)",
    page="https://andrewjanowczyk.com/use-case-1-nuclei-segmentation/",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
