"""Shared convolution blocks and size helpers: the only place they exist.

Every model in :mod:`nucleikit.models` is assembled from these pieces, so a block is written and tested
once. Blocks take and return tensors of shape ``(B, C, H, W)``; every 3x3 convolution is zero-padded
("same"), so a block keeps the height and width unless it has ``stride=2``, which rounds up
(``ceil(H / 2)``).

=====================  ==========================================================  ===================
block                  layers                                                      used by
=====================  ==========================================================  ===================
:class:`ConvReLUBN`    conv -> ReLU -> BN (BN *after* the non-linearity)           U-Net (Sayin Mercadier)
:class:`DoubleConv`    two :class:`ConvReLUBN`                                     U-Net levels
:class:`ConvBNReLU`    conv -> BN -> ReLU                                          stain transfer (Iizuka)
:class:`ConvBNELU`     conv -> BN -> ELU                                           KiNet
:class:`ResidualBlock` x + [conv -> BN -> ELU] x 2 (identity shortcut)             KiNet
:class:`DownBlock`     3x3 stride-2 conv -> BN -> ELU [-> dropout] -> residual     KiNet contraction
:class:`UpBlock`       2x2 stride-2 transposed conv -> BN -> ELU, fit to the skip,  KiNet expansion
                       concatenate the skip -> residual
=====================  ==========================================================  ===================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvBNELU",
    "ConvBNReLU",
    "ConvReLUBN",
    "DoubleConv",
    "DownBlock",
    "ResidualBlock",
    "UpBlock",
    "crop_to",
    "fit_to",
    "pad_to_multiple",
]


# ------------------------------------------------------------------------------------------ size helpers
def pad_to_multiple(
    x: torch.Tensor, multiple: int, *, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` so that its height and width are multiples of ``multiple``.

    Parameters
    ----------
    x : Tensor of shape (B, C, H, W)
        Input batch.
    multiple : int
        The height and width of the result are the smallest multiples of this that are >= H and W.
    mode : {"reflect", "replicate", "constant"}
        Padding mode of :func:`torch.nn.functional.pad` (``"constant"`` pads zeros). ``"reflect"`` falls
        back to ``"replicate"`` when the pad is as large as the image (reflection needs pad < size).

    Returns
    -------
    padded : Tensor of shape (B, C, H', W')
        ``x`` itself when no padding is needed (never modified in place).
    size : tuple of int
        The original ``(H, W)``, for :func:`crop_to`.
    """
    if x.ndim != 4:
        raise ValueError(f"x: expected a tensor of shape (B, C, H, W), got shape {tuple(x.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple: expected an integer >= 1, got {multiple!r}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Keep the top-left ``size = (H, W)`` of ``x`` (the inverse of :func:`pad_to_multiple`)."""
    return x[..., : size[0], : size[1]]


def fit_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad or crop the bottom and right of ``x`` so that its last two dimensions are ``size``.

    Used where an upsampled map meets a skip connection: with 3x3 stride-2 convolutions (which round up,
    ``ceil(H / 2)``) and 2x2 stride-2 transposed convolutions, the upsampled map is one pixel too large
    for an odd skip (cropped here), and a map upsampled from a level that rounded down elsewhere would
    be too small (zero-padded here). Pixel ``i`` of a map at stride ``s`` covers input pixels
    ``s*i .. s*i + s - 1`` in both cases, so padding and cropping happen at the bottom and right.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    th, tw = int(size[0]), int(size[1])
    if (h, w) == (th, tw):
        return x
    x = x[..., : min(h, th), : min(w, tw)]
    if h < th or w < tw:
        x = F.pad(x, (0, max(tw - w, 0), 0, max(th - h, 0)))
    return x


# ------------------------------------------------------------------------------------------------ blocks
class ConvReLUBN(nn.Sequential):
    """Convolution -> ReLU -> batch norm (BN after the non-linearity, as in Sayin Mercadier et al.).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int
        Odd kernel size; zero padding keeps the spatial size.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvReLUBN` layers: one level of the U-Net.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvReLUBN(in_channels, out_channels), ConvReLUBN(out_channels, out_channels))


class ConvBNReLU(nn.Sequential):
    """Convolution -> batch norm -> ReLU (the stain-transfer network, after Iizuka et al.).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int
        Odd kernel size; zero padding ``kernel_size // 2``.
    stride : int
        1 keeps the size; 2 gives ``ceil(H / 2)``.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ConvBNELU(nn.Sequential):
    """Convolution -> batch norm -> ELU (KiNet).

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ELU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two conv -> BN -> ELU layers with an identity shortcut: ``x + body(x)`` (KiNet).

    Parameters
    ----------
    channels : int
        Channels in and out (an identity shortcut needs them equal; blocks that change the width do it in
        the convolution before, see :class:`DownBlock` and :class:`UpBlock`).

    Shape
    -----
    ``(B, channels, H, W) -> (B, channels, H, W)``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNELU(channels, channels), ConvBNELU(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


class DownBlock(nn.Module):
    """Contraction block: 3x3 stride-2 conv -> BN -> ELU, optional channel dropout, then a residual block.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out (KiNet doubles them at every downsampling).
    dropout : float
        Probability of :class:`torch.nn.Dropout2d` (whole channels) after the downsampling; 0 disables it.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / 2), ceil(W / 2))``
    """

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.down = ConvBNELU(in_channels, out_channels, stride=2)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.res = ResidualBlock(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downsample by 2 and refine."""
        return self.res(self.dropout(self.down(x)))


class UpBlock(nn.Module):
    """Expansion block: 2x2 stride-2 transposed conv -> BN -> ELU, fit to the skip, concatenate, residual.

    Parameters
    ----------
    in_channels : int
        Channels of the coarse input.
    up_channels : int
        Channels after the transposed convolution.
    skip_channels : int
        Channels of the skip connection (0: no skip; the block then only upsamples and refines).

    Shape
    -----
    ``(B, in_channels, h, w), skip (B, skip_channels, H, W) -> (B, up_channels + skip_channels, H, W)``;
    without a skip, pass ``size=(H, W)`` instead.
    """

    def __init__(self, in_channels: int, up_channels: int, skip_channels: int = 0) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_channels, up_channels, kernel_size=2, stride=2, bias=False),
            nn.BatchNorm2d(up_channels),
            nn.ELU(inplace=True),
        )
        self.out_channels = up_channels + skip_channels
        self.res = ResidualBlock(self.out_channels)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Upsample ``x`` to the skip's size (or ``size``), concatenate the skip, refine."""
        target = tuple(skip.shape[-2:]) if skip is not None else size
        if target is None:
            raise ValueError("UpBlock: pass a skip tensor or a target size=(H, W)")
        up = fit_to(self.up(x), target)
        if skip is not None:
            up = torch.cat([up, skip], dim=1)  # (B, up + skip, H, W)
        return self.res(up)
