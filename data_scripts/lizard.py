"""Lizard (Graham et al. 2021): colon H&E at 20x, 495,179 labelled nuclei of six classes. Gated.

Instructions only (no converter yet):

1. The official download (https://warwick.ac.uk/fac/cross_fac/tia/data/lizard/) needs a TIA Centre login
   since about November 2023. Sign in and download ``lizard_images1.zip``, ``lizard_images2.zip`` and
   ``lizard_labels.zip`` in a browser.
2. Alternatively, the Kaggle mirror ``aadimator/lizard-dataset`` works with Kaggle API credentials
   (``kaggle datasets download aadimator/lizard-dataset``); this is opt-in: nucleikit never uses your
   credentials.
3. Labels are ``.mat`` files per image with ``inst_map`` (instance labels), ``class`` (per instance, 1..6:
   neutrophil, epithelial, lymphocyte, plasma, eosinophil, connective) and ``centroid`` ([x, y]).
   Load them with ``scipy.io.loadmat`` and save items with ``nucleikit.data.save_item`` /
   ``write_meta`` (see ``data_scripts/_common.write_dataset``) to read them with
   ``nk.data.ConvertedDataset``.

- sha256: not checked (the files vary between mirrors).
- Licence: CC BY-NC-SA 4.0 (non-commercial; do not redistribute in this repository).
- Cite: S. Graham et al. Lizard: a large-scale dataset for colonic nuclear instance segmentation and
  classification. ICCV Workshops 2021.
"""

from __future__ import annotations

import sys

from ._common import Dataset, main

DATASET = Dataset(
    name="lizard",
    url=None,
    filename="lizard_labels.zip",
    sha256=None,
    size="about 1 GB",
    licence="CC BY-NC-SA 4.0",
    citation="Graham et al., ICCV Workshops 2021",
    page="https://warwick.ac.uk/fac/cross_fac/tia/data/lizard/",
    convert=None,
    instructions=__doc__,
)

if __name__ == "__main__":
    sys.exit(main(DATASET))
