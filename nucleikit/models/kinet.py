"""KiNet (Xing et al. 2019): a residual U-Net regressing per-class proximity maps and a region branch."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .blocks import ConvBNELU, DownBlock, ResidualBlock, UpBlock, fit_to

__all__ = ["KiNet", "KiNetOutput"]


class KiNetOutput(NamedTuple):
    """What :class:`KiNet` returns.

    Attributes
    ----------
    proximity : Tensor of shape (B, n_classes, H, W)
        One proximity map per class (linear output; the targets are in [0, 1]).
    roi : Tensor of shape (B, 2, H, W) or None
        Region logits, channel 0 = non-tumour, channel 1 = tumour (softmax over dim 1 gives the
        probabilities); None when the model has no ROI branch.
    """

    proximity: torch.Tensor
    roi: torch.Tensor | None


class KiNet(nn.Module):
    """KiNet: single-stage Ki67 nucleus detection and classification with a weakly supervised ROI branch.

    The shared encoder is an input block (3x3 conv -> BN -> ELU, then a residual block) followed by four
    contraction blocks (:class:`~nucleikit.models.blocks.DownBlock`: 3x3 stride-2 conv doubling the
    channels, then a residual block of two conv -> BN -> ELU with an identity shortcut). Channel dropout
    ``dropout`` follows the downsampling in the last two contraction blocks. The detection decoder has
    four expansion blocks (:class:`~nucleikit.models.blocks.UpBlock`: 2x2 stride-2 transposed conv, the
    encoder's skip concatenated, a residual block). Multi-context aggregation: the outputs of the first two
    expansion blocks (scales 1/8 and 1/4) are brought to full resolution by transposed convolutions with
    stride 8 and 4 and concatenated with the last expansion block's output. The output block is one 3x3
    convolution per class working in parallel on that map (stored as one ``Conv2d`` with ``n_classes``
    outputs: output channel ``s`` has its own filters ``head.weight[s]``).

    The ROI branch, a sibling of the detection decoder on the same encoder: an extra contraction block
    after the shared encoder (scale 1/32), an expansion path of five upsampling residual blocks back to
    full resolution, two 3x3 convolutions and two output channels (softmax over tumour / non-tumour).

    Parameters
    ----------
    in_channels : int
        Input channels (3 for RGB, z-scored per image in the paper).
    n_classes : int
        Proximity maps, one per class (3 in the paper: Ki67+ tumour, Ki67- tumour, non-tumour).
    base_width : int
        Channels of the input block; level ``k`` has ``base_width * 2**k`` (k = 0..4). The paper's code uses
        32; quick profiles use 8.
    roi_branch : bool
        Build the ROI branch; when False, ``forward(...).roi`` is None and the branch has no parameters.
    dropout : float
        Channel-dropout probability in the last two contraction blocks (0.5 in the paper).
    target_scale : float
        Scale of the regression targets: :func:`nucleikit.ki67.train_kinet` fits ``proximity`` to
        ``target_scale * y`` and :func:`nucleikit.ki67.predict` divides by it, so predicted maps are
        on the targets' [0, 1] scale. 1 in the paper; the authors' code multiplies its targets by 5.

    Shape
    -----
    ``(B, in_channels, H, W) ->`` :class:`KiNetOutput` with ``proximity (B, n_classes, H, W)`` and
    ``roi (B, 2, H, W)`` or None. Any ``H, W >= 1``: the stride-2 convolutions round up (``ceil(H/2)``)
    and every upsampled map is fitted to its skip's size by :func:`~nucleikit.models.blocks.fit_to`.

    Notes
    -----
    Deliberate choices and differences from the paper and from its public code (github.com/exhh/KiNet):

    - Output block: the paper's parallel per-class convolutions (a single 3x3 layer each, linear); the
      code uses one *shared* two-layer head (5x5 conv 192 -> 32, then 1x1 -> 3).
    - Widths: the multi-context maps have ``base_width`` channels each, so the output block sees
      ``4 * base_width`` channels (the code: 64 + 64 + 64 with its base width 32).
    - Multi-context upsampling: transposed convolutions with kernel = stride (8 and 4), which tile the
      output exactly; the code's kernel-3 convolutions with stride 8 or 4 leave gaps between the taps.
    - Skips: the paper zero-pads to match sizes; here the stride-2 convolutions round *up*, so the
      upsampled map is at most one pixel larger than the skip and is cropped, and
      :func:`~nucleikit.models.blocks.fit_to` zero-pads in the opposite case.
    - Batch norm: standard :class:`torch.nn.BatchNorm2d` (running statistics in ``eval()``); the code's
      ``ContBatchNorm2d`` uses batch statistics even in ``eval()``, so its predictions depend on the batch.
    - ROI branch: our reading of the paper's text (extra contraction block, five upsampling residual
      blocks without skips, two 3x3 convs). The code instead duplicates the detection decoder (with skips
      and multi-context) for the ROI output.
    - Residual blocks: ``x + [conv-BN-ELU] x 2`` with no activation after the sum; the code applies an ELU
      after the sum.
    - The proximity maps are linear (no sigmoid), regressed with the weighted MSE of
      :func:`nucleikit.losses.proximity_mse`.
    - ``target_scale``: the paper regresses targets in [0, 1]; the code regresses 5 times the targets,
      which multiplies the nucleus term by 125 against the ROI term and speeds up learning the bumps
      (short CPU runs use it; see :class:`nucleikit.profiles.KiNetSettings`).

    References
    ----------
    .. [1] Xing, F., Cornish, T. C., Bennett, T., Ghosh, D., Yang, L. "Pixel-to-pixel learning with weak
       supervision for single-stage nucleus recognition in Ki67 images", IEEE Trans. Biomed. Eng., 2019.

    Examples
    --------
    >>> import torch
    >>> from nucleikit.models import KiNet
    >>> out = KiNet(base_width=4).eval()(torch.rand(1, 3, 45, 61))
    >>> out.proximity.shape, out.roi.shape
    (torch.Size([1, 3, 45, 61]), torch.Size([1, 2, 45, 61]))
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 3,
        *,
        base_width: int = 32,
        roi_branch: bool = True,
        dropout: float = 0.5,
        target_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if base_width < 1 or n_classes < 1 or in_channels < 1:
            raise ValueError(
                f"KiNet: expected positive in_channels, n_classes and base_width, got {in_channels}, "
                f"{n_classes}, {base_width}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if not target_scale > 0:
            raise ValueError(f"target_scale: expected a positive number, got {target_scale!r}")
        w = int(base_width)
        self.target_scale = float(target_scale)
        self.n_classes = int(n_classes)
        self.base_width = w
        self.has_roi = bool(roi_branch)
        ch = [w * 2**k for k in range(5)]  # channels at scales 1, 1/2, 1/4, 1/8, 1/16

        # shared encoder
        self.inp = nn.Sequential(ConvBNELU(in_channels, ch[0]), ResidualBlock(ch[0]))
        self.down = nn.ModuleList(
            DownBlock(ch[k], ch[k + 1], dropout=dropout if k >= 2 else 0.0) for k in range(4)
        )
        # detection decoder: 1/16 -> 1/8 -> 1/4 -> 1/2 -> 1
        self.up = nn.ModuleList()
        c = ch[4]
        for k in (3, 2, 1, 0):
            block = UpBlock(c, ch[k], ch[k])
            self.up.append(block)
            c = block.out_channels  # 2 * ch[k]
        # multi-context aggregation from the 1/8 and 1/4 decoder levels
        ctx = w
        self.context = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(2 * ch[k], ctx, kernel_size=s, stride=s, bias=False),
                nn.BatchNorm2d(ctx),
                nn.ELU(inplace=True),
            )
            for k, s in ((3, 8), (2, 4))
        )
        # the parallel per-class 3x3 convolutions, as one Conv2d: output channel s has its own filters
        # weight[s] and bias[s] (one call is ~5x faster on CPU than n_classes single-channel convolutions)
        self.head = nn.Conv2d(2 * ch[0] + 2 * ctx, self.n_classes, kernel_size=3, padding=1)

        if self.has_roi:
            self.roi_down = DownBlock(ch[4], ch[4])  # extra block, scale 1/32
            chans = [ch[4], ch[3], ch[2], ch[1], ch[0], ch[0]]  # 1/32 -> 1/16 -> ... -> 1
            self.roi_up = nn.ModuleList(UpBlock(chans[i], chans[i + 1]) for i in range(5))
            self.roi_head = nn.Sequential(ConvBNELU(ch[0], ch[0]), nn.Conv2d(ch[0], 2, 3, padding=1))

    def extra_repr(self) -> str:
        """Show ``target_scale`` in the module's repr (and so in checkpoint keys)."""
        return f"target_scale={self.target_scale:g}"

    def forward(self, x: torch.Tensor) -> KiNetOutput:
        """Return the proximity maps and the ROI logits (see :class:`KiNetOutput`)."""
        if x.ndim != 4:
            raise ValueError(f"x: expected a tensor of shape (B, C, H, W), got shape {tuple(x.shape)}")
        size = tuple(x.shape[-2:])
        feats = [self.inp(x)]
        for block in self.down:
            feats.append(block(feats[-1]))  # scales 1, 1/2, 1/4, 1/8, 1/16
        y = feats[4]
        decoded = []
        for block, skip in zip(self.up, (feats[3], feats[2], feats[1], feats[0]), strict=True):
            y = block(y, skip)
            decoded.append(y)  # scales 1/8, 1/4, 1/2, 1
        context = [fit_to(up(d), size) for up, d in zip(self.context, decoded[:2], strict=True)]
        agg = torch.cat([decoded[3], *context], dim=1)  # (B, 2w + 2 * w, H, W)
        proximity = self.head(agg)  # (B, n_classes, H, W)

        roi = None
        if self.has_roi:
            r = self.roi_down(feats[4])
            for block, ref in zip(self.roi_up, feats[::-1], strict=True):  # to scales 1/16 ... 1
                r = block(r, size=tuple(ref.shape[-2:]))
            roi = self.roi_head(r)
        return KiNetOutput(proximity, roi)
