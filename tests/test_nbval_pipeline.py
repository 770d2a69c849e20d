"""The nbval step of CI really compares the checked cells: a tampered output makes it fail."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._notebooks import make_notebook

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def _nbval(path: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(SANITIZE),
        str(path),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent, timeout=300)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb")
    src = make_notebook(
        folder / "src.ipynb",
        [
            ("code", 'profile = "quick"', ["parameters"]),
            (
                "code",
                "# NBVAL_CHECK_OUTPUT\nimport numpy as np\nprint('f1', round(float(np.sqrt(0.81)), 3))",
                [],
            ),
            (
                "code",
                "# NBVAL_CHECK_OUTPUT\nimport time\nt = time.perf_counter()\nprint(f'trained in {t:.1f} s')",
                [],
            ),
            ("code", "print('unchecked', __import__('time').time())", []),
        ],
    )
    out = folder / "executed.ipynb"
    subprocess.run(
        [sys.executable, "-m", "papermill", str(src), str(out), "-k", "python3", "--no-progress-bar"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.mark.slow
def test_untouched_notebook_passes(executed):
    result = _nbval(executed)
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.slow
def test_tampered_check_output_fails(executed, tmp_path):
    nb = json.loads(executed.read_text())
    cell = next(c for c in nb["cells"] if "f1" in "".join(c["source"]))
    assert cell["outputs"][0]["text"] == ["f1 0.9\n"]
    cell["outputs"][0]["text"] = ["f1 0.95\n"]
    tampered = tmp_path / "tampered.ipynb"
    tampered.write_text(json.dumps(nb))
    result = _nbval(tampered)
    assert result.returncode == 1
    assert "Cell outputs differ" in result.stdout or "1 failed" in result.stdout
