"""Models: one file per paper, assembled from the shared blocks of :mod:`nucleikit.models.blocks`.

============================  ===========================================  =========================
model                         paper                                        chapter
============================  ===========================================  =========================
:class:`UNet`                 Sayin Mercadier et al., ISBI 2019            3, segmentation
:class:`KiNet`                Xing et al., IEEE TBME 2019                  7, Ki67 detection
:class:`StainTransferNet`     Yuan & Suh 2018 (after Iizuka et al. 2016)   2, stain transfer
============================  ===========================================  =========================

Models take ``(B, C, H, W)`` float32 tensors of any height and width, take keyword-only arguments with
the paper's defaults, and never pick a device (they follow ``model.to(device)`` and their input).
"""

from __future__ import annotations

from . import blocks
from .kinet import KiNet, KiNetOutput
from .stain_transfer import (
    AB_SCALE,
    L_SCALE,
    StainTransferNet,
    StainTransferOutput,
    lab_to_rgb_tensor,
    merge_lab,
    normalize_image,
    rgb_to_lab_tensor,
    split_lab,
)
from .unet import UNet

__all__ = [
    "AB_SCALE",
    "L_SCALE",
    "KiNet",
    "KiNetOutput",
    "StainTransferNet",
    "StainTransferOutput",
    "UNet",
    "blocks",
    "lab_to_rgb_tensor",
    "merge_lab",
    "normalize_image",
    "rgb_to_lab_tensor",
    "split_lab",
]
