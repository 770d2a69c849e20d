"""The U-Net of Sayin Mercadier et al. (ISBI 2019), segmentation from partial annotations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import DoubleConv, crop_to, pad_to_multiple

__all__ = ["UNet"]


class UNet(nn.Module):
    """U-Net with "same" convolutions and batch norm after each non-linearity.

    A *level* is one resolution of the network. ``widths`` has one entry per level; with the default five
    widths the levels are at scales 1, 1/2, 1/4, 1/8 and 1/16. The contracting path visits the five levels
    going down (five encoding levels, each a :class:`~nucleikit.models.blocks.DoubleConv`, separated by
    four 2x2 max-poolings), the expanding path visits them going back up (five decoding levels). The
    deepest level (the bottleneck, 1/16) is where the two paths meet, so it is counted once in each and
    its double convolution is shared; each of the four other decoding levels is a 2x2 stride-2
    up-convolution, a concatenation with the encoding level's output (skip connection) and a
    :class:`~nucleikit.models.blocks.DoubleConv`. This is the layout of Ronneberger et al.'s U-Net
    (widths 64-1024, 4 poolings) that the paper's "5-level U-Net" follows: 9 double convolutions, 18
    3x3 convolutions, 4 poolings, 4 up-convolutions, a final 1x1 convolution.

    Parameters
    ----------
    in_channels : int
        Input channels (3 for RGB).
    out_channels : int
        Output channels: 2 for the paper's two-class softmax. **Channel 0 is background and channel 1
        is foreground (nucleus)**, so ``logits.argmax(1)`` is the binary nucleus mask and
        ``logits.softmax(1)[:, 1]`` the nucleus probability.
    widths : sequence of int
        Channels of each level, finest first. The paper's default is (32, 64, 128, 256, 512) (our
        reading; the paper gives no widths); quick profiles scale them down, e.g. (8, 16, 32, 64, 128).
        Fewer entries give a shallower network (at least 2).
    pad_mode : {"reflect", "replicate", "constant"}
        How the input is padded to a multiple of ``2 ** (len(widths) - 1)`` before the forward pass (the
        output is cropped back, so any input size works, odd ones too). Inside the network every 3x3
        convolution is zero-padded ("same"), as in the paper.

    Shape
    -----
    ``(B, in_channels, H, W) -> (B, out_channels, H, W)`` logits (no softmax).

    Notes
    -----
    Each convolution is followed by ReLU and then batch norm ("BN after each non-linearity", the paper's
    choice, in contrast with the usual conv -> BN -> ReLU). The up-convolutions are plain transposed
    convolutions (no activation), as in Ronneberger et al.

    The loss of the paper (Eq. 5) is :func:`nucleikit.losses.weighted_background_loss` with the weights of
    :func:`nucleikit.losses.background_weight_map` and :func:`nucleikit.losses.l2_penalty`.

    References
    ----------
    .. [1] Sayin Mercadier, D., Besbinar, B., Frossard, P. "Automatic segmentation of nuclei in
       histopathology images using encoding-decoding convolutional neural networks", ISBI 2019.
    .. [2] Ronneberger, O., Fischer, P., Brox, T. "U-Net: convolutional networks for biomedical image
       segmentation", MICCAI 2015.

    Examples
    --------
    >>> import torch
    >>> from nucleikit.models import UNet
    >>> net = UNet(widths=(8, 16, 32, 64, 128)).eval()
    >>> net(torch.rand(2, 3, 100, 75)).shape
    torch.Size([2, 2, 100, 75])
    """

    BACKGROUND = 0
    FOREGROUND = 1

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 2,
        *,
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths: expected at least 2 positive channel counts, got {widths!r}")
        if pad_mode not in ("reflect", "replicate", "constant"):
            raise ValueError(f"pad_mode: expected 'reflect', 'replicate' or 'constant', got {pad_mode!r}")
        self.widths = widths
        self.pad_mode = pad_mode
        self.encoders = nn.ModuleList()
        prev = in_channels
        for w in widths:
            self.encoders.append(DoubleConv(prev, w))
            prev = w
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w_fine, w_coarse in zip(reversed(widths[:-1]), reversed(widths[1:]), strict=True):
            self.ups.append(nn.ConvTranspose2d(w_coarse, w_fine, kernel_size=2, stride=2))
            self.decoders.append(DoubleConv(2 * w_fine, w_fine))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    @property
    def depth(self) -> int:
        """Number of levels (resolutions)."""
        return len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return per-pixel logits of shape ``(B, out_channels, H, W)``."""
        if x.ndim != 4:
            raise ValueError(f"x: expected a tensor of shape (B, C, H, W), got shape {tuple(x.shape)}")
        x, size = pad_to_multiple(x, 2 ** (self.depth - 1), mode=self.pad_mode)
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.ups, self.decoders, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))  # (B, 2 * w_fine, h, w)
        return crop_to(self.head(x), size)
