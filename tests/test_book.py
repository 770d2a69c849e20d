"""The book: table of contents, chapter notebooks' structure, the chapter map, and a headless-browser check.

The browser check serves the built book (``make book`` -> ``_build/html``) on 127.0.0.1 and loads every
page in Debian's chromium with every non-local host unresolvable, so a page that needs the network shows
it. It fails on an execution error, a missing image, math left as raw TeX or a widget that did not render,
and saves a screenshot of each chapter under ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest

from nucleikit.profiles import CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IN_CI = bool(os.environ.get("CI"))


def _toc_files() -> list[str]:
    return re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text(encoding="utf-8"))


def test_toc_lists_every_page_and_chapter_and_nothing_else():
    listed = set(_toc_files())
    pages = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")} - {"book/intro"}
    chapters = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert listed == pages | chapters


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_notebook_follows_the_template(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert path.stem in CHAPTERS, f"{path.name} is not a registered chapter key"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged 'parameters'"
    assert re.search(r'^profile = "quick"$', "".join(code[0]["source"]), re.M)
    assert f'nk.profiles.resolve("{path.stem}", profile, globals())' in "".join(code[1]["source"])
    for cell in code:
        assert cell.get("outputs") == [], "store notebooks without outputs"
        assert cell.get("execution_count") is None, "store notebooks without outputs"
    sources = ["".join(c["source"]) for c in code]
    assert any(s.startswith("# NBVAL_CHECK_OUTPUT") for s in sources), "no checked cell"
    assert any("nk.report.Report(" in s for s in sources), "no results recorded through nk.report"
    assert any("exercise" in c["metadata"].get("tags", []) for c in code), "no exercise"


def test_chapter_map_is_up_to_date(tmp_path):
    sys.path.insert(0, str(ROOT / "book"))
    try:
        import chapter_map
    finally:
        sys.path.pop(0)
    out = chapter_map.draw(tmp_path / "map.svg")
    assert out.read_bytes() == (ROOT / "book" / "images" / "chapter_map.svg").read_bytes(), (
        "book/images/chapter_map.svg is stale: run `make figures`"
    )


# ------------------------------------------------------------------------------------------ browser check
def _need(condition: bool, why: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=False,
            env=env,
            capture_output=True,
            timeout=900,
        )
        exe = shutil.which("chromium")
    _need(
        exe is not None, "Debian's chromium is not installed and could not be installed (needs root and apt)"
    )
    return exe


@pytest.fixture(scope="module")
def server():
    _need((HTML / "index.html").is_file(), "the book is not built: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
]


def _chromium(exe: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [exe, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _pages() -> list[str]:
    if not HTML.is_dir():
        return []
    skip = {"genindex.html", "search.html"}
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if p.name not in skip and not p.relative_to(HTML).parts[0].startswith("_")
    )


@pytest.mark.browser
@pytest.mark.parametrize("page", _pages() or ["index.html"])
def test_page_renders_offline(page, chromium, server):
    url = urljoin(server, page)
    static = (HTML / page).read_text(encoding="utf-8")
    dom = _chromium(chromium, "--dump-dom", url)
    assert "</html>" in dom, f"{page}: chromium returned no document"

    # 1. no execution error in any output
    assert 'class="output traceback' not in dom, f"{page} shows an execution error"
    assert "Traceback (most recent call last)" not in dom, f"{page} shows an execution error"
    # 2. every image is served
    for src in sorted(set(re.findall(r'<img[^>]+src="([^"]+)"', dom))):
        if src.startswith(("data:", "blob:")):  # inline, or drawn in the page from saved widget state
            continue
        with urllib.request.urlopen(urljoin(url, src), timeout=30) as resp:
            assert resp.status == 200, f"{page}: image {src} is missing"
            assert len(resp.read()) > 0, f"{page}: image {src} is empty"
    # 3. math typeset by the vendored MathJax, not left as raw TeX
    n_math = len(re.findall(r'class="math notranslate nohighlight"', static))
    if n_math:
        after = re.findall(r'class="math notranslate nohighlight">(.{0,16})', dom, flags=re.S)
        raw = [a for a in after if not a.lstrip().startswith("<mjx-container")]
        assert not raw, f"{page}: {len(raw)} of {n_math} formulas left as raw TeX, e.g. {raw[0]!r}"
    # 4. saved widget state rendered by the vendored widget manager
    if "application/vnd.jupyter.widget-view+json" in static:
        assert re.search(r'class="[^"]*jupyter-widgets', dom), f"{page}: widget state did not render"
    # 5. a screenshot of every chapter, to look at
    if page.startswith("notebooks/") or page == "index.html":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / (Path(page).stem + ".png")
        _chromium(chromium, "--window-size=1280,2200", f"--screenshot={shot}", url)
        assert shot.is_file()
        assert shot.stat().st_size > 10_000
