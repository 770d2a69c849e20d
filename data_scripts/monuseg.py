"""MoNuSeg 2018 (Kumar et al.): H&E at 40x with one polygon per nucleus.

- Source: Google Drive file ids 1ZgqFJomqQGNnsx7w7QBzQQMVA16lbVCA (train, 37 images) and
  1NKkSQ5T0ZNQ8aUhh0a8Dt2YKYCQXIViw (test, 14 images); a Hugging Face mirror is ``RationAI/MoNuSeg``.
  Google Drive enforces download quotas ("too many users"): if the download fails, fetch the archive
  in a browser from https://monuseg.grand-challenge.org/Data/ and pass it with ``--archive``.
- sha256: train 25d3d3185bb2970b397cafa72eb664c9b4d24294aee382e7e3df9885affce742,
  test 13e522387ae8b1bcc0530e13ff9c7b4d91ec74959ef6f6e57747368d7ee6f88a
- Size: about 35 MB (train), 15 MB (test); images 1000 x 1000.
- Licence: CC BY-NC-SA 4.0 (non-commercial; do not redistribute in this repository).
- Cite: N. Kumar et al. A dataset and a technique for generalized nuclear segmentation for computational
  pathology. IEEE TMI 36(7), 2017; and the MoNuSeg 2018 challenge paper (IEEE TMI 39(5), 2020).
- Format: ``*.tif`` + Aperio ImageScope ``*.xml`` (``<Region>`` with ``<Vertex X= Y=>``); polygons are
  rasterised in file order (later ones on top).

Usage: ``python -m data_scripts.monuseg --dest DIR`` (train) or add ``--url`` / ``--sha256`` of the test file.
"""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np

from ._common import Dataset, centroids, main, write_dataset

TRAIN_ID = "1ZgqFJomqQGNnsx7w7QBzQQMVA16lbVCA"
TEST_ID = "1NKkSQ5T0ZNQ8aUhh0a8Dt2YKYCQXIViw"


def drive_url(file_id: str) -> str:
    """Direct-download address of a public Google Drive file."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


def polygons_to_labels(xml_text: str, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise ImageScope XML polygons into instance labels 1..N."""
    from skimage.draw import polygon
    from skimage.segmentation import relabel_sequential

    labels = np.zeros(shape, np.int32)
    root = ET.fromstring(xml_text)
    k = 0
    for region in root.iter("Region"):
        xs = [float(v.get("X")) for v in region.iter("Vertex")]
        ys = [float(v.get("Y")) for v in region.iter("Vertex")]
        if len(xs) < 3:
            continue
        rr, cc = polygon(np.asarray(ys), np.asarray(xs), shape)
        if len(rr):
            k += 1
            labels[rr, cc] = k
    return relabel_sequential(labels)[0].astype(np.int32)


def convert(archive: Path, out: Path) -> None:
    import tifffile

    with zipfile.ZipFile(archive) as z:
        tifs = {Path(n).stem: n for n in z.namelist() if n.lower().endswith((".tif", ".tiff"))}
        xmls = {Path(n).stem: n for n in z.namelist() if n.lower().endswith(".xml")}
        keys = sorted(set(tifs) & set(xmls))
        if not keys:
            raise ValueError(f"{archive}: no *.tif with a matching *.xml found")
        split = "test" if "test" in archive.name.lower() else "train"

        def items():
            for key in keys:
                img = tifffile.imread(io.BytesIO(z.read(tifs[key])))[..., :3].astype(np.uint8)
                labels = polygons_to_labels(z.read(xmls[key]).decode("utf-8", "replace"), img.shape[:2])
                pts = centroids(labels)
                yield (
                    key,
                    split,
                    {
                        "image": np.ascontiguousarray(img),
                        "labels": labels,
                        "points_rc": pts,
                        "classes": np.zeros(len(pts), np.int64),
                        "regions": None,
                    },
                )

        write_dataset(
            out,
            {
                "name": "monuseg",
                "source": DATASET.page,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.25,
                "class_names": ["nucleus"],
                "region_names": [],
            },
            items(),
        )


DATASET = Dataset(
    name="monuseg",
    url=drive_url(TRAIN_ID),
    filename="MoNuSeg_train.zip",
    sha256="25d3d3185bb2970b397cafa72eb664c9b4d24294aee382e7e3df9885affce742",
    size="about 35 MB (train, 37 images of 1000 x 1000)",
    licence="CC BY-NC-SA 4.0",
    citation="Kumar et al., IEEE TMI 2017 and 2020",
    page="https://monuseg.grand-challenge.org/Data/",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
