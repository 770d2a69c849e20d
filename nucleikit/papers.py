"""The published numbers each chapter compares itself with, in one place, with their source.

Every value is copied from the paper's own table or text (see ``source``); chapters read them from here
and put them beside their measured values through :mod:`nucleikit.report`. Values are fractions (0..1)
unless the metric name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PAPERS", "Paper", "paper_value"]


@dataclass(frozen=True)
class Paper:
    """A seed paper: citation key (in ``book/references.bib``), short citation and its reported numbers."""

    key: str
    citation: str
    source: str
    values: MappingProxyType  # {(method, metric): value}


def _p(key: str, citation: str, source: str, values: dict[tuple[str, str], float]) -> Paper:
    return Paper(key, citation, source, MappingProxyType(dict(values)))


PAPERS: dict[str, Paper] = {
    "yuan2018": _p(
        "yuan2018",
        "Yuan & Suh, Neural stain normalization and unsupervised classification of cell nuclei "
        "in histopathological breast cancer images, CS231n report 2018",
        "Table 1 (stain normalization, 100 BACH test images); Table 2 (segmentation Dice %); Table 3",
        {
            ("SVD (Macenko)", "euclidean"): 1.25,
            ("SVD (Macenko)", "hist_corr"): 0.18,
            ("SVD (Macenko)", "hellinger"): 0.83,
            ("CNN (MSE + class)", "euclidean"): 0.98,
            ("CNN (MSE + class)", "hist_corr"): 0.48,
            ("CNN (MSE + class)", "hellinger"): 0.58,
            ("no normalization", "dice"): 0.293,
            ("SVD (Macenko)", "dice"): 0.306,
            ("CNN (MSE + class)", "dice"): 0.330,
            ("InfoGAN", "accuracy"): 0.666,
            ("k-means", "accuracy"): 0.443,
            ("ResNet-152 + k-means", "accuracy"): 0.472,
        },
    ),
    "sayin2019": _p(
        "sayin2019",
        "Sayin Mercadier et al., Automatic segmentation of nuclei in histopathology images using "
        "encoding-decoding convolutional neural networks, ISBI 2019",
        "Table 1 (DS1 = TNBC averaged per patient; DS2 = Kumar)",
        {
            ("proposed, DS1-pp", "recall"): 0.60,
            ("proposed, DS1-pp", "precision"): 0.89,
            ("proposed, DS1-pp", "f1"): 0.70,
            ("proposed, DS1-pp", "accuracy"): 0.94,
            ("proposed, DS1-pp", "iou"): 0.55,
            ("proposed, DS1-pp", "aji"): 0.88,
            ("proposed, DS2", "recall"): 0.73,
            ("proposed, DS2", "precision"): 0.82,
            ("proposed, DS2", "f1"): 0.76,
            ("proposed, DS2", "accuracy"): 0.89,
            ("proposed, DS2", "iou"): 0.62,
            ("proposed, DS2", "aji"): 0.78,
            ("baseline [8], DS1-pp", "recall"): 0.35,
            ("baseline [8], DS1-pp", "precision"): 0.91,
            ("baseline [8], DS1-pp", "f1"): 0.45,
            ("baseline [8], DS1-pp", "accuracy"): 0.92,
            ("baseline [8], DS1-pp", "iou"): 0.32,
            ("baseline [8], DS1-pp", "aji"): 0.84,
            ("baseline [8], DS2", "recall"): 0.59,
            ("baseline [8], DS2", "precision"): 0.81,
            ("baseline [8], DS2", "f1"): 0.63,
            ("baseline [8], DS2", "accuracy"): 0.85,
            ("baseline [8], DS2", "iou"): 0.49,
            ("baseline [8], DS2", "aji"): 0.70,
        },
    ),
    "xing2019": _p(
        "xing2019",
        "Xing et al., Pixel-to-pixel learning with weak supervision for single-stage nucleus recognition "
        "in Ki67 images, IEEE TBME 2019",
        "Table I (pancreatic NET Ki67, 19 test cases)",
        {
            ("KiNet", "det_precision"): 0.861,
            ("KiNet", "det_recall"): 0.938,
            ("KiNet", "det_f1"): 0.898,
            ("KiNet", "tp_distance_px"): 2.02,
            ("KiNet", "cls_f1"): 0.804,
            ("KiNet", "cls_pr_auc"): 0.724,
            ("FRCN", "det_precision"): 0.880,
            ("FRCN", "det_recall"): 0.841,
            ("FRCN", "det_f1"): 0.860,
            ("FRCN", "tp_distance_px"): 4.60,
            ("FRCN", "cls_f1"): 0.768,
            ("FRCN", "cls_pr_auc"): 0.680,
            ("U-Net", "det_precision"): 0.859,
            ("U-Net", "det_recall"): 0.650,
            ("U-Net", "det_f1"): 0.740,
            ("U-Net", "tp_distance_px"): 6.01,
            ("U-Net", "cls_f1"): 0.660,
            ("U-Net", "cls_pr_auc"): 0.550,
        },
    ),
    "hou2019": _p(
        "hou2019",
        "Hou et al., Sparse autoencoder for unsupervised nucleus detection and representation in "
        "histopathology images, Pattern Recognition 2019",
        "Table 4 (CRCHisto detection)",
        {
            ("CSP-CNN", "precision"): 0.7883,
            ("CSP-CNN", "recall"): 0.8864,
            ("CSP-CNN", "f1"): 0.8345,
            ("SUP-CNN", "f1"): 0.8311,
            ("U-net", "f1"): 0.8209,
            ("CSP-CAE (unsupervised)", "f1"): 0.6159,
        },
    ),
}


def paper_value(paper: str, method: str, metric: str) -> float | None:
    """Return a published value, or None when the paper does not report it."""
    return PAPERS[paper].values.get((method, metric))
