"""CRCHistoPhenotypes (Sirinukunwattana et al. 2016): colon H&E with typed nucleus dots. Gated.

- Official URL: https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/crchistophenotypes_2016_04_28.zip
  Since about November 2023 the TIA Centre pages ask for a login, so this script does not download by
  default. Sign in on https://warwick.ac.uk/fac/cross_fac/tia/data/ , download the zip in a browser and run
  ``python -m data_scripts.crchisto --dest DIR --archive crchistophenotypes_2016_04_28.zip``.
- sha256: not published; none checked (pass ``--sha256`` to pin your copy).
- Size: about 200 MB; 100 images of 500 x 500 at 20x, 29,756 nuclei dots, 22,444 typed.
- Licence: not stated; assume non-commercial research use; do not redistribute.
- Cite: K. Sirinukunwattana et al. Locality sensitive deep learning for detection and classification of
  nuclei in routine colon cancer histology images. IEEE TMI 35(5), 2016.
- Format: ``Classification/imgN/imgN.bmp`` with ``imgN_{epithelial,inflammatory,fibroblast,others}.mat``
  (key ``detection``: N x 2 [x, y], 1-based). Converted to points (row, col) with classes 0 epithelial,
  1 inflammatory, 2 fibroblast, 3 miscellaneous; no instance labels.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from ._common import Dataset, main, write_dataset

CLASSES = ("epithelial", "inflammatory", "fibroblast", "others")


def convert(archive: Path, out: Path) -> None:
    from PIL import Image
    from scipy.io import loadmat

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        images = sorted(n for n in names if re.search(r"Classification/img\d+/img\d+\.bmp$", n))
        if not images:
            raise ValueError(f"{archive}: no Classification/imgN/imgN.bmp found")

        def items():
            for n in images:
                stem = n[: -len(".bmp")]
                img = np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB"))
                pts, cls = [], []
                for k, cname in enumerate(CLASSES):
                    mat = f"{stem}_{cname}.mat"
                    if mat in names:
                        xy = np.asarray(loadmat(io.BytesIO(z.read(mat)))["detection"], float).reshape(-1, 2)
                        pts.append(xy[:, ::-1] - 1)  # [x, y] 1-based -> (row, col) 0-based
                        cls.append(np.full(len(xy), k, np.int64))
                pts_a = np.concatenate(pts) if pts else np.zeros((0, 2))
                cls_a = np.concatenate(cls) if cls else np.zeros(0, np.int64)
                num = int(re.search(r"img(\d+)\.bmp$", n).group(1))
                yield (
                    Path(n).stem,
                    "train" if num <= 50 else "test",
                    {"image": img, "labels": None, "points_rc": pts_a, "classes": cls_a, "regions": None},
                )

        write_dataset(
            out,
            {
                "name": "crchisto",
                "source": DATASET.page,
                "licence": DATASET.licence,
                "citation": DATASET.citation,
                "mpp": 0.5,
                "class_names": ["epithelial", "inflammatory", "fibroblast", "miscellaneous"],
                "region_names": [],
            },
            items(),
        )


DATASET = Dataset(
    name="crchisto",
    url=None,
    filename="crchistophenotypes_2016_04_28.zip",
    sha256=None,
    size="about 200 MB, 100 images",
    licence="not stated (assume non-commercial research use)",
    citation="Sirinukunwattana et al., IEEE TMI 2016",
    page="https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/",
    convert=convert,
    instructions=__doc__.split("- sha256")[0],
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
