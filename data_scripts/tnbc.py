"""TNBC nuclei segmentation dataset (Naylor et al. 2018).

- URL: https://zenodo.org/records/1175282/files/TNBC_NucleiSegmentation.zip
- Size: tens of MB; 50 H&E images of 512 x 512 at 40x from 11 patients, 4,022 nuclei.
- sha256: da708c3a988f4ad4b9bbb9283b387faf703f0bc0e5e689927306bd27ea13a57f
- Licence: CC BY 4.0 (confirm on the Zenodo page).
- Cite: P. Naylor, M. Lae, F. Reyal, T. Walter. Segmentation of nuclei in histopathology images by deep
  regression of the distance map. IEEE TMI 38(2), 2019.
- Format: ``Slide_XX/*.png`` (RGBA) and ``GT_XX/*.png`` (binary masks; instances = connected components,
  so touching nuclei may merge). Converted with split "test" (DS1 of Sayin Mercadier et al.).

Usage: ``python -m data_scripts.tnbc --dest DIR``
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from ._common import Dataset, centroids, instances_from_mask, main, write_dataset


def convert(archive: Path, out: Path) -> None:
    from PIL import Image

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        slides = {}
        for n in names:
            m = re.search(r"Slide_(\d+)/([^/]+)\.png$", n)
            if m:
                slides[(m.group(1), m.group(2))] = n
        masks = {}
        for n in names:
            m = re.search(r"GT_(\d+)/([^/]+)\.png$", n)
            if m:
                masks[(m.group(1), m.group(2))] = n
        keys = sorted(set(slides) & set(masks))
        if not keys:
            raise ValueError(f"{archive}: no Slide_XX/*.png with a matching GT_XX/*.png found")

        def items():
            for key in keys:
                img = np.asarray(Image.open(io.BytesIO(z.read(slides[key]))).convert("RGB"))
                gt = np.asarray(Image.open(io.BytesIO(z.read(masks[key]))))
                if gt.ndim == 3:
                    gt = gt[..., 0]
                labels = instances_from_mask(gt)
                pts = centroids(labels)
                item = {
                    "image": img,
                    "labels": labels,
                    "points_rc": pts,
                    "classes": np.zeros(len(pts), np.int64),
                    "regions": None,
                }
                yield f"patient{key[0]}/{key[1]}", "test", item

        write_dataset(
            out,
            {
                "name": "tnbc",
                "source": DATASET.url,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.25,
                "class_names": ["nucleus"],
                "region_names": [],
            },
            items(),
        )


DATASET = Dataset(
    name="tnbc",
    url="https://zenodo.org/records/1175282/files/TNBC_NucleiSegmentation.zip",
    filename="TNBC_NucleiSegmentation.zip",
    sha256="da708c3a988f4ad4b9bbb9283b387faf703f0bc0e5e689927306bd27ea13a57f",
    size="about 30 MB, 50 images",
    licence="CC BY 4.0",
    citation="Naylor et al., IEEE TMI 2019 (doi:10.1109/TMI.2018.2865709)",
    page="https://zenodo.org/records/1175282",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
