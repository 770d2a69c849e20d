"""Smooth random fields and fast resampling used to lay out tissue (private)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def interp_matrix(n_out: int, n_in: int, cell: float, offset: float = 1.0) -> np.ndarray:
    """Return a linear-interpolation matrix (n_out, n_in): pixel y samples node ``y / cell + offset``."""
    x = np.clip(np.arange(n_out, dtype=np.float64) / cell + offset, 0, n_in - 1.000001)
    i0 = np.floor(x).astype(np.int64)
    w = x - i0
    m = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    m[rows, i0] = 1 - w
    m[rows, i0 + 1] += w
    return m


class CoarseGrid:
    """A coarse grid covering a tile with one node every ``cell`` pixels (plus a margin of one node)."""

    def __init__(self, shape: tuple[int, int], cell: float) -> None:
        self.shape = shape
        self.cell = float(cell)
        self.hc = int(np.ceil(shape[0] / cell)) + 3
        self.wc = int(np.ceil(shape[1] / cell)) + 3
        self._my = interp_matrix(shape[0], self.hc, cell)
        self._mx = interp_matrix(shape[1], self.wc, cell)

    def noise(self, sigma_cells: float, rng: np.random.Generator) -> np.ndarray:
        """Gaussian-smoothed white noise on the grid, normalised to mean 0 and standard deviation 1."""
        pad = int(np.ceil(2 * sigma_cells))
        raw = rng.standard_normal((self.hc + 2 * pad, self.wc + 2 * pad))
        f = ndi.gaussian_filter(raw, sigma_cells, mode="wrap")[pad : pad + self.hc, pad : pad + self.wc]
        return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)

    def upsample(self, coarse: np.ndarray) -> np.ndarray:
        """Bilinear upsampling of a grid field to the tile's (H, W) (two matrix products)."""
        return (self._my @ coarse.astype(np.float32)) @ self._mx.T

    def sample(self, coarse: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear value of a grid field at pixel positions (rows, cols)."""
        y = np.clip(np.asarray(rows, float) / self.cell + 1, 0, self.hc - 1.000001)
        x = np.clip(np.asarray(cols, float) / self.cell + 1, 0, self.wc - 1.000001)
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        wy, wx = y - y0, x - x0
        c = coarse
        return (1 - wy) * ((1 - wx) * c[y0, x0] + wx * c[y0, x0 + 1]) + wy * (
            (1 - wx) * c[y0 + 1, x0] + wx * c[y0 + 1, x0 + 1]
        )


def up2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Cheap x2 bilinear-like upsampling of a 2-D array, cropped to ``shape``."""
    h, w = a.shape
    out = np.empty((2 * h, w), dtype=a.dtype)
    out[0::2] = a
    out[1:-1:2] = 0.5 * (a[:-1] + a[1:])
    out[-1] = a[-1]
    out2 = np.empty((2 * h, 2 * w), dtype=a.dtype)
    out2[:, 0::2] = out
    out2[:, 1:-1:2] = 0.5 * (out[:, :-1] + out[:, 1:])
    out2[:, -1] = out[:, -1]
    return out2[: shape[0], : shape[1]]


#: Elements per block of the blocked full-tile passes (their temporaries then stay in the CPU cache).
BLOCK_PX = 1 << 15


def block_rows(width: int) -> int:
    """Rows per block of a blocked pass over an image ``width`` pixels wide."""
    return max(1, BLOCK_PX // max(width, 1))


def _blur3(a: np.ndarray, w: np.float32) -> np.ndarray:
    """Blur a 2-D array by [w, 1 - 2w, w] in row blocks, with the same arithmetic as the whole-array form.

    Each pixel is ``(a * (1 - 2w) + w * previous) + w * next`` along rows, then along columns, where a
    border pixel stands in for its missing neighbour (added last), exactly as in :func:`blur`'s
    reference sequence of whole-array operations.
    """
    H, W = a.shape
    c = 1 - 2 * w
    out = np.empty_like(a)
    rows = block_rows(W)
    v = np.empty((min(rows, H), W), a.dtype)
    t = np.empty(v.size, a.dtype)
    for r0 in range(0, H, rows):
        r1 = min(r0 + rows, H)
        n = r1 - r0
        vb = v[:n]
        tb = t[: n * W].reshape(n, W)
        np.multiply(a[r0:r1], c, out=vb)  # along rows
        s = max(r0, 1)
        np.multiply(a[s - 1 : r1 - 1], w, out=tb[: r1 - s])
        vb[s - r0 :] += tb[: r1 - s]
        e = min(r1, H - 1)
        np.multiply(a[r0 + 1 : e + 1], w, out=tb[: e - r0])
        vb[: e - r0] += tb[: e - r0]
        if r0 == 0:
            vb[0] += w * a[0]
        if r1 == H:
            vb[n - 1] += w * a[H - 1]
        ob = out[r0:r1]  # along columns, on the flattened block; the two border columns are redone below
        np.multiply(vb, c, out=ob)
        fo, fv, ft = ob.reshape(-1), vb.reshape(-1), t[: n * W]
        np.multiply(fv[:-1], w, out=ft[:-1])
        fo[1:] += ft[:-1]
        np.multiply(fv[1:], w, out=ft[:-1])
        fo[:-1] += ft[:-1]
        ob[:, 0] = (vb[:, 0] * c + w * vb[:, 1]) + w * vb[:, 0]
        ob[:, W - 1] = (vb[:, W - 1] * c + w * vb[:, W - 2]) + w * vb[:, W - 1]
    return out


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along the first two axes of a float array (edges repeat the border pixel).

    Small sigmas (<= 0.8 px) use a variance-matched 3-tap kernel, which is several times faster.
    """
    if sigma <= 0.05:
        return a
    if sigma <= 0.8:
        w = np.float32(0.5 * sigma * sigma)  # [w, 1 - 2w, w] has variance 2w = sigma^2
        if a.ndim == 2 and min(a.shape) >= 2 and a.flags.c_contiguous:
            return _blur3(a, w)
        out = a * (1 - 2 * w)
        out[1:] += w * a[:-1]
        out[:-1] += w * a[1:]
        out[0] += w * a[0]
        out[-1] += w * a[-1]
        res = out * (1 - 2 * w)
        res[:, 1:] += w * out[:, :-1]
        res[:, :-1] += w * out[:, 1:]
        res[:, 0] += w * out[:, 0]
        res[:, -1] += w * out[:, -1]
        return res
    radius = max(1, int(np.ceil(2.5 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).astype(a.dtype)
    return ndi.correlate1d(ndi.correlate1d(a, k, axis=0, mode="nearest"), k, axis=1, mode="nearest")


def soft_step(x: np.ndarray, width: float) -> np.ndarray:
    """Linear ramp from 0 to 1 over ``[-width, width]`` around x = 0, float32 (a cheap smooth step)."""
    out = x * np.float32(0.5 / max(width, 1e-6))
    out += np.float32(0.5)
    return np.clip(out, 0, 1, out=out).astype(np.float32, copy=False)
