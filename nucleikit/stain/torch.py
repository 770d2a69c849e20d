"""The torch twin of :mod:`nucleikit.stain`: the same names for batches ``(B, 3, H, W)`` on any device.

Images are ``(B, 3, H, W)`` (or one ``(3, H, W)`` image) tensors: uint8, uint16, or float in [0, 1].
Results stay on the input's device and match the NumPy functions: the per-pixel work (OD, unmixing, the
normalization map, Lab conversions) runs in torch; the stain *estimation* of each image runs on its grid
subsample (at most ``max_pixels`` pixels, 65,536 by default) through the NumPy code, so fitted stain vectors
are bit-identical between the twins and only the per-pixel float arithmetic can differ, by at most one grey
level after rounding.

Example::

    norm = nk.stain.torch.MacenkoNormalizer().fit(target)          # target: (3, H, W) or (1, 3, H, W)
    out, infos = norm.transform(batch.cuda(), fallback="reference", return_info=True)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from .._checks import describe
from . import _core, macenko, reinhard
from ._core import RUIFROK_HDAB, RUIFROK_HE, RUIFROK_HED, check_io, check_stain_matrix
from .macenko import Fallback, StainEstimate, StainEstimationError, TransformInfo

__all__ = [
    "RUIFROK_HDAB",
    "RUIFROK_HE",
    "RUIFROK_HED",
    "MacenkoNormalizer",
    "ReinhardNormalizer",
    "deconvolve",
    "estimate_stains",
    "lab_to_rgb",
    "macenko_stain_matrix",
    "od_to_rgb",
    "recombine",
    "rgb_to_lab",
    "rgb_to_od",
]


# ------------------------------------------------------------------------------------------ validation
def check_batch(x: Any, name: str = "image") -> tuple[torch.Tensor, bool]:
    """Validate a ``(B, 3, H, W)`` or ``(3, H, W)`` image tensor; return it as 4-D and whether it was 3-D.

    Raises
    ------
    TypeError
        A NumPy array (convert with ``nk.data.to_tensor``) or non-numeric pixels.
    ValueError
        Wrong shape (channels last, RGBA, grey), NaN, or values out of range.
    """
    if isinstance(x, np.ndarray) or not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch tensor of shape (B, 3, H, W), got {describe(x)}; "
            "use nk.stain (NumPy) for arrays, or torch.from_numpy(image).permute(2, 0, 1)"
        )
    single = x.ndim == 3
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        hint = ""
        if x.ndim in (3, 4) and x.shape[-1] == 3:
            hint = " (channels last? use x.permute(0, 3, 1, 2))"
        elif x.ndim in (3, 4) and x.shape[-3] == 4:
            hint = " (RGBA? drop the alpha channel with x[:, :3])"
        elif x.ndim == 2:
            hint = " (a greyscale image? repeat it to 3 channels if you mean grey RGB)"
        raise ValueError(
            f"{name}: expected a tensor of shape (B, 3, H, W) or (3, H, W), got {describe(x)}{hint}"
        )
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name}: expected uint8, uint16 or float pixels, got {describe(x)}")
    if x.numel():
        if x.is_floating_point():
            if not torch.isfinite(x).all():
                raise ValueError(f"{name}: expected finite pixel values, got NaN or inf in {describe(x)}")
            lo, hi = float(x.min()), float(x.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{name}: expected float pixels in [0, 1], got values in [{lo:g}, {hi:g}] "
                    "(a 0..255 image stored as float? divide by 255)"
                )
        elif x.dtype not in (torch.uint8, torch.uint16):
            lo, hi = int(x.min()), int(x.max())
            if lo < 0 or hi > 255:
                raise ValueError(f"{name}: expected integer pixels in 0..255, got values in [{lo}, {hi}]")
    return (x.unsqueeze(0) if single else x), single


def _to_numpy_hwc(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor -> (H, W, 3) NumPy array of a dtype nk.stain accepts (a copy on the CPU)."""
    t = img.detach().to("cpu")
    if t.dtype == torch.uint16:
        return t.to(torch.int32).numpy().astype(np.uint16).transpose(1, 2, 0)
    if t.is_floating_point():
        return t.to(torch.float32).numpy().transpose(1, 2, 0)
    return t.numpy().transpose(1, 2, 0)


def _od(x: torch.Tensor, io: float) -> torch.Tensor:
    """(B, 3, H, W) validated pixels -> float32 OD, a new tensor (uint8 through the same table as NumPy)."""
    if x.dtype == torch.uint8:
        lut = torch.from_numpy(_core.od_lut(io)).to(x.device)
        return lut[x.to(torch.int32)]
    if x.dtype == torch.uint16:
        v = x.to(torch.int32).to(torch.float32) * np.float32(255.0 / 65535.0)
    elif x.is_floating_point():
        v = x.to(torch.float32) * np.float32(255.0)
    else:
        v = x.to(torch.float32)
    return v.add_(1.0).mul_(np.float32(1.0 / io)).log_().neg_()


def _stains_tensor(m: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(m, dtype=np.float32), device=device)


def _intensity_to(o: torch.Tensor, io: float, like: torch.dtype) -> torch.Tensor:
    """OD (float32, overwritten) -> ``io exp(-OD) - 1`` in the dtype family of ``like``."""
    o.neg_().exp_().mul_(np.float32(io)).sub_(1.0).clamp_(0.0, 255.0)
    if like == torch.uint16:
        return o.mul_(np.float32(65535.0 / 255.0)).add_(0.5).to(torch.int32).to(torch.uint16)
    if like.is_floating_point:
        return o.mul_(np.float32(1.0 / 255.0))
    return o.add_(0.5).to(torch.uint8)


# ------------------------------------------------------------------------------------------- functions
def rgb_to_od(image: torch.Tensor, *, io: float = _core.DEFAULT_IO) -> torch.Tensor:
    """Convert images to optical density, ``OD = -ln((I + 1) / io)`` (see :func:`nucleikit.stain.rgb_to_od`).

    Parameters
    ----------
    image : Tensor of shape (B, 3, H, W) or (3, H, W)
        uint8, uint16 or float in [0, 1]. Never modified.
    io : float
        Glass intensity on the 0..255 scale (default 256: white has OD 0).

    Returns
    -------
    Tensor of the input's shape, float32, on the input's device
    """
    x, single = check_batch(image)
    od = _od(x, check_io(io))
    return od[0] if single else od


def od_to_rgb(od: torch.Tensor, *, io: float = _core.DEFAULT_IO) -> torch.Tensor:
    """Convert optical density back to uint8 images, ``I = io exp(-OD) - 1``, rounded and clipped.

    Parameters
    ----------
    od : Tensor of shape (B, 3, H, W) or (3, H, W)
        Optical density (NaN raises). Never modified.
    io : float
        Glass intensity, as given to :func:`rgb_to_od`.

    Returns
    -------
    Tensor of the input's shape, uint8, on the input's device
    """
    if not isinstance(od, torch.Tensor):
        raise TypeError(f"od: expected a torch tensor of shape (B, 3, H, W), got {describe(od)}")
    if od.ndim not in (3, 4) or od.shape[-3] != 3:
        raise ValueError(f"od: expected a tensor of shape (B, 3, H, W) or (3, H, W), got {describe(od)}")
    if torch.isnan(od).any():
        raise ValueError("od: expected optical densities without NaN")
    return _intensity_to(od.to(torch.float32, copy=True), check_io(io), torch.uint8)


def deconvolve(
    image: torch.Tensor, stain_matrix: Any = RUIFROK_HE, *, io: float = _core.DEFAULT_IO
) -> torch.Tensor:
    """Unmix images into stain concentrations (Ruifrok & Johnston; see :func:`nucleikit.stain.deconvolve`).

    Parameters
    ----------
    image : Tensor of shape (B, 3, H, W) or (3, H, W)
    stain_matrix : array_like of shape (n_stains, 3)
    io : float

    Returns
    -------
    Tensor of shape (B, n_stains, H, W) (or (n_stains, H, W)), float32
    """
    x, single = check_batch(image)
    m = check_stain_matrix(stain_matrix)
    od = _od(x, check_io(io))
    p = _stains_tensor(_core.unmixing_matrix(m), x.device)  # (3, n)
    c = torch.einsum("bchw,cn->bnhw", od, p)
    return c[0] if single else c


def recombine(
    concentrations: torch.Tensor, stain_matrix: Any, *, io: float = _core.DEFAULT_IO
) -> torch.Tensor:
    """Mix stain concentrations back into uint8 images, ``I = io exp(-C S) - 1``.

    Parameters
    ----------
    concentrations : Tensor of shape (B, n_stains, H, W) or (n_stains, H, W)
    stain_matrix : array_like of shape (n_stains, 3)
    io : float

    Returns
    -------
    Tensor of shape (B, 3, H, W) (or (3, H, W)), uint8
    """
    m = check_stain_matrix(stain_matrix)
    if not isinstance(concentrations, torch.Tensor):
        raise TypeError(f"concentrations: expected a torch tensor, got {describe(concentrations)}")
    c = concentrations
    single = c.ndim == 3
    if single:
        c = c.unsqueeze(0)
    if c.ndim != 4 or c.shape[1] != m.shape[0]:
        raise ValueError(
            f"concentrations: expected shape (B, {m.shape[0]}, H, W) to match a stain matrix of shape "
            f"{m.shape}, got {describe(concentrations)}"
        )
    if torch.isnan(c).any():
        raise ValueError("concentrations: expected values without NaN")
    od = torch.einsum("bnhw,nc->bchw", c.to(torch.float32), _stains_tensor(m, c.device))
    out = _intensity_to(od, check_io(io), torch.uint8)
    return out[0] if single else out


def estimate_stains(image: torch.Tensor, **kwargs: Any) -> list[StainEstimate]:
    """Estimate each image's stains (keywords of :func:`nucleikit.stain.estimate_stains`).

    Returns
    -------
    list of StainEstimate
        One per image of the batch.

    Raises
    ------
    StainEstimationError
        For the first image whose stains cannot be estimated.
    """
    x, _ = check_batch(image)
    max_pixels = kwargs.get("max_pixels", 2**16)
    return [
        macenko.estimate_stains(_to_numpy_hwc(macenko._sample_chw(img, max_pixels)), **kwargs) for img in x
    ]


def macenko_stain_matrix(image: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """Estimate each image's (2, 3) stain matrix (keywords of :func:`nucleikit.stain.macenko_stain_matrix`).

    Returns
    -------
    Tensor of shape (B, 2, 3) (or (2, 3) for one image), float64, on the input's device
    """
    x, single = check_batch(image)
    mats = [e.stain_matrix for e in estimate_stains(x, **kwargs)]
    out = torch.as_tensor(np.stack(mats), dtype=torch.float64, device=x.device)
    return out[0] if single else out


_CHUNK_PIXELS = 1 << 20  # rows per block: bounded working memory on the CPU, few launches on a GPU


def _apply_od_map(x: torch.Tensor, m: np.ndarray, io: float) -> torch.Tensor:
    """(1, 3, H, W) validated image -> normalized image, same dtype family, same device.

    The same arithmetic as :func:`nucleikit.stain.macenko.apply_od_map`: ``L = ln(I + 1)``, a 1x1
    convolution with ``m.T``, ``exp``, a per-channel gain ``io^(1 - Σ_c m_ck)``, ``- 1``, rounding.
    """
    h, w = x.shape[-2:]
    if x.dtype == torch.uint16:
        in_scale, out_scale, like = 255.0 / 65535.0, 65535.0 / 255.0, torch.uint16
    elif x.is_floating_point():
        in_scale, out_scale, like = 255.0, 1.0 / 255.0, torch.float32
    else:
        in_scale, out_scale, like = 1.0, 1.0, torch.uint8
    m64 = np.asarray(m, dtype=np.float64)
    weight = torch.as_tensor(np.ascontiguousarray(m64.T), dtype=torch.float32, device=x.device).view(
        3, 3, 1, 1
    )
    gain = torch.as_tensor(
        (io ** (1.0 - m64.sum(axis=0)) * out_scale).astype(np.float32), device=x.device
    ).view(1, 3, 1, 1)
    one = np.float32(out_scale) if like == torch.float32 else np.float32(out_scale) - np.float32(0.5)
    top = np.float32(255.0 * out_scale)
    out = torch.empty((1, 3, h, w), dtype=like, device=x.device)
    rows = max(1, _CHUNK_PIXELS // max(w, 1))
    for r0 in range(0, h, rows):
        block = x[:, :, r0 : r0 + rows]
        v = (
            block.to(torch.int32).to(torch.float32)
            if block.dtype == torch.uint16
            else block.to(torch.float32)
        )
        if in_scale != 1.0:
            v = v * np.float32(in_scale)
        lv = v.add(1.0).log_()  # a new tensor: the input is never written
        y = torch.nn.functional.conv2d(lv, weight)  # (1, 3, rows, W)
        y.exp_().mul_(gain).sub_(one).clamp_(0.0, top)
        if like == torch.float32:
            out[:, :, r0 : r0 + rows] = y
        elif like == torch.uint16:
            out[:, :, r0 : r0 + rows] = y.to(torch.int32).to(torch.uint16)
        else:
            out[:, :, r0 : r0 + rows] = y.to(torch.uint8)
    return out


class MacenkoNormalizer(macenko.MacenkoNormalizer):
    """Macenko normalization of batches ``(B, 3, H, W)``; settings, ``save`` and ``load`` as in NumPy.

    ``fit`` takes one image, ``(3, H, W)`` or ``(1, 3, H, W)``; ``transform`` a batch, each image with its
    own estimated stains (or the given ``source``), returning the input's shape and dtype family on the
    input's device. See :class:`nucleikit.stain.MacenkoNormalizer` for the parameters.
    """

    def estimate(self, image: Any, *, name: str = "image") -> StainEstimate:
        """Estimate one image's stains; ``image`` is a (3, H, W) / (1, 3, H, W) tensor or an HWC array."""
        if isinstance(image, torch.Tensor):
            x, _ = check_batch(image, name)
            if x.shape[0] != 1:
                raise ValueError(f"{name}: expected one image, got a batch of {x.shape[0]}")
            image = _to_numpy_hwc(macenko._sample_chw(x[0], self.max_pixels))
        return super().estimate(image, name=name)

    def transform(  # type: ignore[override]
        self,
        image: torch.Tensor,
        *,
        source: StainEstimate | None = None,
        fallback: Fallback | Literal["default"] | None = "default",
        return_info: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[TransformInfo]]:
        """Normalize a batch to the target's stains.

        Returns
        -------
        Tensor of the input's shape
            uint8 / uint16 / float32 like the input, on its device.
        list of TransformInfo
            Only with ``return_info=True``: one per image, saying which took a fallback.
        """
        target = self._target()
        x, single = check_batch(image)
        fb = self.fallback if fallback == "default" else fallback
        macenko._check_fallback(fb)
        outs, infos = [], []
        for i in range(x.shape[0]):
            img = x[i : i + 1]
            src, info = source, TransformInfo(None, "", source)
            if src is None:
                try:
                    src = self.estimate(img, name=f"image {i}")
                    info = TransformInfo(None, "", src)
                except StainEstimationError as exc:
                    if fb is None:
                        raise
                    if fb == "passthrough":
                        outs.append(
                            img.to(torch.float32, copy=True) if img.is_floating_point() else img.clone()
                        )
                        infos.append(TransformInfo("passthrough", str(exc), None))
                        continue
                    src, info = target, TransformInfo("reference", str(exc), target)
            m = macenko.od_map(src, target.stain_matrix, target.max_concentrations)
            outs.append(_apply_od_map(img, m, self.io))
            infos.append(info)
        out = torch.cat(outs) if outs else x.clone()
        out = out[0] if single else out
        return (out, infos) if return_info else out


# ------------------------------------------------------------------------------------------------ Lab
_LIN_TO_XYZW = torch.from_numpy(reinhard._LIN_TO_XYZW)
_XYZW_TO_LIN = torch.from_numpy(reinhard._XYZW_TO_LIN)
_U8_LINEAR = torch.from_numpy(reinhard._U8_LINEAR)


def _lab(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) validated pixels -> float32 Lab (B, 3, H, W)."""
    if x.dtype == torch.uint8:
        lin = _U8_LINEAR.to(x.device)[x.to(torch.int32)]
    else:
        if x.dtype == torch.uint16:
            v = x.to(torch.int32).to(torch.float32) * np.float32(1.0 / 65535.0)
        elif x.is_floating_point():
            v = x.to(torch.float32)
        else:
            v = x.to(torch.float32) * np.float32(1.0 / 255.0)
        lin = torch.where(
            v <= 0.04045,
            v / np.float32(12.92),
            torch.pow((v + np.float32(0.055)) / np.float32(1.055), np.float32(2.4)),
        )
    t = torch.einsum("bchw,ck->bkhw", lin, _LIN_TO_XYZW.to(x.device))
    f = torch.where(
        t <= 0.008856, np.float32(7.787) * t + np.float32(16.0 / 116.0), torch.pow(t.clamp_min(0), 1 / 3)
    )
    lab = torch.empty_like(f)
    lab[:, 0] = np.float32(116.0) * f[:, 1] - np.float32(16.0)
    lab[:, 1] = np.float32(500.0) * (f[:, 0] - f[:, 1])
    lab[:, 2] = np.float32(200.0) * (f[:, 1] - f[:, 2])
    return lab


def _rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> float32 sRGB in [0, 1]."""
    fy = (lab[:, 0] + np.float32(16.0)) / np.float32(116.0)
    f = torch.stack(
        [fy + lab[:, 1] / np.float32(500.0), fy, (fy - lab[:, 2] / np.float32(200.0)).clamp_min(0)], 1
    )
    t = torch.where(f > 0.2068966, f * f * f, (f - np.float32(16.0 / 116.0)) / np.float32(7.787))
    lin = torch.einsum("bchw,ck->bkhw", t, _XYZW_TO_LIN.to(lab.device))
    rgb = torch.where(
        lin <= 0.0031308,
        lin * np.float32(12.92),
        np.float32(1.055) * torch.pow(lin.clamp_min(0), np.float32(1.0 / 2.4)) - np.float32(0.055),
    )
    return rgb.clamp_(0.0, 1.0)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """Convert images to CIELAB (D65), float32, like :func:`nucleikit.stain.rgb_to_lab`."""
    x, single = check_batch(image)
    lab = _lab(x)
    return lab[0] if single else lab


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Convert CIELAB (D65) to float32 sRGB in [0, 1], like :func:`nucleikit.stain.lab_to_rgb`."""
    if not isinstance(lab, torch.Tensor) or lab.ndim not in (3, 4) or lab.shape[-3] != 3:
        raise ValueError(f"lab: expected a tensor of shape (B, 3, H, W) or (3, H, W), got {describe(lab)}")
    single = lab.ndim == 3
    out = _rgb((lab.unsqueeze(0) if single else lab).to(torch.float32))
    return out[0] if single else out


class ReinhardNormalizer(reinhard.ReinhardNormalizer):
    """Reinhard colour transfer of batches ``(B, 3, H, W)``; settings, ``save`` and ``load`` as in NumPy.

    Statistics of each image are measured on its grid subsample through the NumPy code; the Lab mapping
    runs in torch on the input's device.
    """

    def fit(self, target: Any) -> ReinhardNormalizer:
        """Measure the target's Lab statistics (a (3, H, W) / (1, 3, H, W) tensor or an HWC array)."""
        if isinstance(target, torch.Tensor):
            x, _ = check_batch(target, "target")
            if x.shape[0] != 1:
                raise ValueError(f"target: expected one image, got a batch of {x.shape[0]}")
            target = _to_numpy_hwc(macenko._sample_chw(x[0], self.max_pixels))
        return super().fit(target)

    def transform(  # type: ignore[override]
        self,
        image: torch.Tensor,
        *,
        fallback: Fallback | Literal["default"] | None = "default",
        return_info: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[TransformInfo]]:
        """Map each image's Lab statistics onto the target's; see the NumPy class."""
        mu_t, sd_t = self._target()
        x, single = check_batch(image)
        fb = self.fallback if fallback == "default" else fallback
        macenko._check_fallback(fb)
        outs, infos = [], []
        for i in range(x.shape[0]):
            img = x[i : i + 1]
            sample = _to_numpy_hwc(macenko._sample_chw(img[0], self.max_pixels))
            info = TransformInfo(None)
            try:
                mu_s, sd_s = self._stats(sample, f"image {i}")
            except StainEstimationError as exc:
                if fb is None:
                    raise
                if fb == "passthrough":
                    outs.append(img.to(torch.float32, copy=True) if img.is_floating_point() else img.clone())
                    infos.append(TransformInfo("passthrough", str(exc)))
                    continue
                mu_s, sd_s = mu_t, sd_t
                info = TransformInfo("reference", str(exc))
            scale = torch.as_tensor((sd_t / np.where(sd_s > 1e-6, sd_s, sd_t)), dtype=torch.float32)
            shift = torch.as_tensor(mu_t - mu_s * scale.numpy(), dtype=torch.float32)
            lab = _lab(img)
            lab.mul_(scale.to(img.device).view(1, 3, 1, 1)).add_(shift.to(img.device).view(1, 3, 1, 1))
            rgb = _rgb(lab)
            if img.is_floating_point():
                outs.append(rgb)
            elif img.dtype == torch.uint16:
                outs.append(rgb.mul_(65535.0).add_(0.5).to(torch.int32).to(torch.uint16))
            else:
                outs.append(rgb.mul_(255.0).add_(0.5).to(torch.uint8))
            infos.append(info)
        out = torch.cat(outs)
        out = out[0] if single else out
        return (out, infos) if return_info else out
