"""A careful downloader: stream with a progress bar, resume with HTTP Range, verify sha256, move atomically.

What a failed run leaves behind is never trusted by a later one:

- the bytes received so far stay in ``<dest>.part``, which a later run only *resumes* (and then verifies);
- a checksum mismatch deletes the ``.part`` file;
- the final file appears (by ``os.replace``) only after its sha256 matched.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DownloadError", "download", "sha256_file"]

_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do."""


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".nucleikit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DownloadError(
            f"destination {folder} is not writable ({exc.strerror or exc}); choose another --dest"
        ) from exc


def _progress(total: int | None, initial: int, name: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=not enabled,
        leave=False,
    )


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (starting from its current size)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "nucleikit-data-scripts"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is complete
            return
        raise
    with resp:
        status = getattr(resp, "status", 200)
        if have and status != 206:  # the server ignored the Range header: start again
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as fh, _progress(total, have, part.name.removesuffix(".part"), progress) as bar:
            got = 0
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                fh.write(block)
                got += len(block)
                bar.update(len(block))
        if length is not None and got < int(length):
            raise http.client.IncompleteRead(b"", int(length) - got)


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download and verifying the checksum.

    Parameters
    ----------
    url : str
        HTTP(S) address.
    dest : str or Path
        Final path of the file. Nothing is written there until the checksum matched.
    sha256 : str or None
        Expected hex digest; None skips the check (only for sources that publish none; say so).
    retries : int
        How many times a dropped connection is resumed within this call.
    timeout : float
        Socket timeout in seconds.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``dest``, complete and verified.

    Raises
    ------
    DownloadError
        On HTTP errors (404...), an unreachable host (offline), a connection that keeps dropping (the
        ``.part`` file is kept for the next run to resume), a checksum mismatch (the ``.part`` file is
        deleted) or a destination that is not writable.
    """
    dest = Path(dest)
    _check_writable(dest.parent)
    if dest.exists():
        if sha256 is None or sha256_file(dest) == sha256:
            return dest
        dest.unlink()  # a file that fails its checksum is not trusted
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: HTTP {exc.code} {exc.reason}; the file may have moved: check the "
                "dataset's page (see the script's docstring)"
            ) from exc
        except urllib.error.URLError as exc:
            if (
                isinstance(exc.reason, (ConnectionResetError, socket.timeout, TimeoutError))
                and attempt < retries
            ):
                attempt += 1
                continue
            raise DownloadError(
                f"{url}: cannot reach the server ({exc.reason}); are you offline? "
                "Nothing was saved; run again when connected"
            ) from exc
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
            if attempt < retries:
                attempt += 1
                continue
            size = part.stat().st_size if part.exists() else 0
            raise DownloadError(
                f"{url}: the connection dropped after {size} bytes ({type(exc).__name__}); "
                f"run the same command again to resume from {part}"
            ) from exc
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: sha256 {got} does not match the expected {sha256}; the partial file "
                "was deleted. The source may have changed: check the dataset's page"
            )
    os.replace(part, dest)
    return dest
