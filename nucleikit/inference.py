"""Whole-image inference for fully convolutional models: sliding windows with centre-crop merging.

Sayin Mercadier et al. run their U-Net on 256 px windows at a stride of 128 px and keep only each
window's central 128 x 128 pixels: the centre of a window sees enough context on every side, so the kept
crops tile the image with no seams and no border artefacts from the windows' zero padding. The image's own
border is handled by reflecting it by half the overlap first. :func:`tile_predict` is the naive alternative
(non-overlapping windows, everything kept), shown in chapter 3 for its seams.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["sliding_window_predict", "tile_predict"]


def _check_input(image: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"image: expected a torch tensor of shape (C, H, W) or (1, C, H, W), got {type(image).__name__}"
        )
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"image: expected one image (1, C, H, W), got batch shape {tuple(image.shape)}")
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"image: expected shape (C, H, W), got {tuple(image.shape)}")
    if not (0 < stride <= window) or (window - stride) % 2:
        raise ValueError(
            f"window, stride: expected 0 < stride <= window and an even overlap, got {window}, {stride}"
        )
    return image


def _windows(model, batch: list[torch.Tensor], outputs: list[torch.Tensor]) -> None:
    outputs.extend(model(torch.stack(batch)).float().unbind(0))
    batch.clear()


@torch.no_grad()
def sliding_window_predict(
    model: torch.nn.Module,
    image: torch.Tensor,
    *,
    window: int = 256,
    stride: int = 128,
    batch_size: int = 8,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Run a fully convolutional model over an image of any size; keep each window's centre.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, window, window)`` to ``(B, K, window, window)``; evaluated in its current mode (call
        ``model.eval()`` first) on the device of its parameters.
    image : Tensor of shape (C, H, W) or (1, C, H, W)
        The image, already normalised as the model expects.
    window : int
        Window size (the paper: 256).
    stride : int
        Step between windows (the paper: 128); each window contributes its central ``stride x stride`` crop.
    batch_size : int
        Windows per forward pass.
    pad_mode : str
        How the image border is extended by ``(window - stride) / 2`` pixels: ``"reflect"`` or ``"constant"``.

    Returns
    -------
    Tensor of shape (K, H, W)
        The model's output (e.g. logits), float32, on the model's device.

    Notes
    -----
    The image is padded by ``m = (window - stride) / 2`` on the top and left, and by ``m`` plus whatever
    completes the last window on the bottom and right. Window ``(i, j)`` starts at
    ``(i * stride, j * stride)`` of the padded image, and its crop ``[m : m + stride]`` lands at
    ``(i * stride, j * stride)`` of the output, so the crops tile the output exactly once.
    """
    image = _check_input(image, window, stride)
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else image.device
    _, h, w = image.shape
    m = (window - stride) // 2
    ny, nx = max(1, math.ceil(h / stride)), max(1, math.ceil(w / stride))
    pad_b, pad_r = ny * stride + 2 * m - h - m, nx * stride + 2 * m - w - m
    mode = pad_mode if pad_mode != "reflect" or (m < h and m < w and pad_b < h and pad_r < w) else "replicate"
    padded = F.pad(image[None].to(device), (m, pad_r, m, pad_b), mode=mode)[
        0
    ]  # (C, ny*stride+2m, nx*stride+2m)
    crops: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    for i in range(ny):
        for j in range(nx):
            batch.append(padded[:, i * stride : i * stride + window, j * stride : j * stride + window])
            if len(batch) == batch_size:
                _windows(model, batch, crops)
    if batch:
        _windows(model, batch, crops)
    k = crops[0].shape[0]
    out = torch.empty((k, ny * stride, nx * stride), dtype=torch.float32, device=device)
    for n, crop in enumerate(crops):
        i, j = divmod(n, nx)
        out[:, i * stride : (i + 1) * stride, j * stride : (j + 1) * stride] = crop[
            :, m : m + stride, m : m + stride
        ]
    return out[:, :h, :w]


@torch.no_grad()
def tile_predict(
    model: torch.nn.Module, image: torch.Tensor, *, tile: int = 256, batch_size: int = 8
) -> torch.Tensor:
    """Naive tiling: non-overlapping ``tile x tile`` windows, every output pixel kept (shows seams).

    Parameters and returns as :func:`sliding_window_predict` (the last row and column of tiles are
    zero-padded).
    """
    return sliding_window_predict(
        model, image, window=tile, stride=tile, batch_size=batch_size, pad_mode="constant"
    )
