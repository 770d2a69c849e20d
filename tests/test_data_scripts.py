"""Tests of data_scripts: the downloader against a local HTTP server, and the converters on fake archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

import nucleikit as nk
from data_scripts import _download
from data_scripts._download import DownloadError, download

ROOT = Path(__file__).resolve().parent.parent


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _fake_tnbc() -> bytes:
    """A TNBC-like zip: two slides with binary ground truth (three and two nuclei)."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, centres in enumerate([[(10, 10), (30, 40), (50, 15)], [(20, 20), (45, 45)]], start=1):
            img = rng.integers(150, 255, (64, 64, 4), dtype=np.uint8)
            gt = np.zeros((64, 64), np.uint8)
            yy, xx = np.mgrid[:64, :64]
            for r, c in centres:
                gt[(yy - r) ** 2 + (xx - c) ** 2 <= 25] = 255
            z.writestr(f"TNBC_NucleiSegmentation/Slide_0{k}/0{k}_1.png", _png(img))
            z.writestr(f"TNBC_NucleiSegmentation/GT_0{k}/0{k}_1.png", _png(gt))
    return buf.getvalue()


PAYLOAD = _fake_tnbc()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    drops_left = 0
    ranges: ClassVar[list[str]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/missing.zip":
            self.send_error(404, "Not Found")
            return
        body = PAYLOAD if path != "/bad.zip" else PAYLOAD[:-10] + b"0123456789"
        start = 0
        rng = self.headers.get("Range")
        type(self).ranges.append(rng or "")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if path == "/drop.zip" and type(self).drops_left > 0:
            type(self).drops_left -= 1
            self.wfile.write(body[start : start + 1000])  # half a file, then the connection dies
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    _Handler.drops_left = 0
    _Handler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success(server, tmp_path):
    out = download(f"{server}/ok.zip", tmp_path / "a.zip", sha256=SHA, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["a.zip"]
    again = download(f"{server}/ok.zip", tmp_path / "a.zip", sha256=SHA, progress=False)
    assert again == out
    assert len(_Handler.ranges) == 1  # the verified file is not fetched again


def test_download_404(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/missing.zip", tmp_path / "m.zip", sha256=SHA, progress=False)
    assert _leftovers(tmp_path) == []


def test_download_dropped_then_resumed_within_one_call(server, tmp_path):
    _Handler.drops_left = 1
    out = download(f"{server}/drop.zip", tmp_path / "d.zip", sha256=SHA, retries=2, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert _Handler.ranges == ["", "bytes=1000-"]


def test_download_dropped_error_then_resumed_by_next_run(server, tmp_path):
    _Handler.drops_left = 1
    with pytest.raises(DownloadError, match="run the same command again"):
        download(f"{server}/drop.zip", tmp_path / "d.zip", sha256=SHA, retries=0, progress=False)
    assert _leftovers(tmp_path) == ["d.zip.part"]  # kept only to resume; never used as the file
    assert not (tmp_path / "d.zip").exists()
    out = download(f"{server}/drop.zip", tmp_path / "d.zip", sha256=SHA, retries=0, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert _Handler.ranges[-1] == "bytes=1000-"
    assert _leftovers(tmp_path) == ["d.zip"]


def test_download_wrong_checksum_deletes_everything(server, tmp_path):
    with pytest.raises(DownloadError, match="does not match"):
        download(f"{server}/bad.zip", tmp_path / "b.zip", sha256=SHA, progress=False)
    assert _leftovers(tmp_path) == []


def test_download_destination_not_writable(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DownloadError, match="not writable"):
        download(f"{server}/ok.zip", blocker / "sub" / "x.zip", sha256=SHA, progress=False)
    assert _leftovers(tmp_path) == ["file"]


def test_download_offline(tmp_path):
    # nothing listens on this port: connection refused, as when offline
    with pytest.raises(DownloadError, match="offline"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", sha256=SHA, retries=0, progress=False)
    assert _leftovers(tmp_path) == []


def test_existing_file_with_wrong_checksum_is_not_trusted(server, tmp_path):
    (tmp_path / "a.zip").write_bytes(b"stale")
    out = download(f"{server}/ok.zip", tmp_path / "a.zip", sha256=SHA, progress=False)
    assert _download.sha256_file(out) == SHA


def _run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_tnbc_script_downloads_converts_and_reads(server, tmp_path):
    proc = _run_script(
        "data_scripts.tnbc",
        "--dest",
        str(tmp_path),
        "--url",
        f"{server}/ok.zip",
        "--sha256",
        SHA,
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    ds = nk.data.ConvertedDataset(tmp_path / "tnbc", as_tensors=False)
    assert len(ds) == 2
    item = ds[0]
    assert item["image"].shape == (64, 64, 3)
    assert item["labels"].max() == 3
    rc = np.round(item["points_rc"]).astype(int)
    np.testing.assert_array_equal(item["labels"][rc[:, 0], rc[:, 1]], [1, 2, 3])
    assert item["class_names"] == ("nucleus",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "tnbc"]


@pytest.mark.parametrize(
    ("path", "code", "message"), [("/missing.zip", 1, "HTTP 404"), ("/bad.zip", 1, "does not match")]
)
def test_script_failure_exit_code_and_nothing_left(server, tmp_path, path, code, message):
    proc = _run_script(
        "data_scripts.tnbc",
        "--dest",
        str(tmp_path),
        "--url",
        f"{server}{path}",
        "--sha256",
        SHA,
        "--no-progress",
    )
    assert proc.returncode == code
    assert message in proc.stderr
    assert not (tmp_path / "tnbc").exists()
    assert _leftovers(tmp_path / "downloads") == []


def test_gated_scripts_print_instructions_and_fail(tmp_path):
    for name in ("crchisto", "pannuke", "lizard"):
        proc = _run_script(f"data_scripts.{name}", "--dest", str(tmp_path))
        assert proc.returncode == 2, name
        assert "login" in proc.stderr.lower(), name


def test_bc_deepliif_strip_conversion(tmp_path):
    from data_scripts import bc_deepliif

    strip = np.zeros((32, 6 * 32, 3), np.uint8)
    strip[:, :32] = 200  # IHC panel
    mask = strip[:, 5 * 32 :]
    mask[4:10, 4:10] = (255, 0, 0)  # positive
    mask[20:26, 20:28] = (0, 0, 255)  # negative
    mask[2:30, 15] = (0, 255, 0)  # boundary colour is ignored
    ihc, labels, classes = bc_deepliif.split_strip(strip)
    assert ihc.shape == (32, 32, 3)
    assert labels.max() == 2
    np.testing.assert_array_equal(classes, [0, 1])
    assert labels[6, 6] == 1
    assert labels[22, 22] == 2


def test_monuseg_polygons_and_janowczyk_archive(tmp_path):
    from data_scripts import janowczyk, monuseg

    xml = (
        "<Annotations><Annotation><Regions>"
        '<Region><Vertices><Vertex X="2" Y="2"/><Vertex X="10" Y="2"/><Vertex X="10" Y="8"/>'
        "</Vertices></Region>"
        '<Region><Vertices><Vertex X="20" Y="20"/><Vertex X="28" Y="20"/><Vertex X="28" Y="28"/>'
        '<Vertex X="20" Y="28"/></Vertices></Region></Regions></Annotation></Annotations>'
    )
    lab = monuseg.polygons_to_labels(xml, (32, 32))
    assert lab.max() == 2
    assert lab[24, 24] == 2
    assert lab[0, 0] == 0
    # a janowczyk-like tgz with one image and its partial mask
    import tifffile

    img = np.full((40, 40, 3), 180, np.uint8)
    mask = np.zeros((40, 40), np.uint8)
    mask[5:12, 5:12] = 255
    tif = io.BytesIO()
    tifffile.imwrite(tif, img)
    archive = tmp_path / "nuclei.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (
            ("12345_00001_original.tif", tif.getvalue()),
            ("12345_00001_mask.png", _png(mask)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    janowczyk.convert(archive, tmp_path / "janowczyk")
    item = nk.data.ConvertedDataset(tmp_path / "janowczyk", as_tensors=False)[0]
    assert item["labels"].max() == 1
    assert nk.data.read_meta(tmp_path / "janowczyk")["partial"] is True
