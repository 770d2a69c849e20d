"""Stage the book for a build from executed notebooks (no third execution).

Copies ``book/``, ``_toc.yml`` and ``_vendor/`` into ``_build/stage``, copies the executed chapter notebooks
into ``_build/stage/notebooks``, hides papermill's injected-parameters cell, and writes a ``_config.yml``
with execution turned off. Usage: ``python book/stage.py [EXECUTED_DIR] [STAGE_DIR]``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(executed: Path, dest: Path) -> Path:
    """Build the staging folder and return it."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    wanted = re.findall(r"file:\s*notebooks/(\S+)", toc)
    missing = [n for n in wanted if not (executed / f"{n}.ipynb").is_file()]
    if missing:
        sys.exit(f"error: no executed notebook for {', '.join(missing)} in {executed} (run `make notebooks`)")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copy2(ROOT / "_toc.yml", dest / "_toc.yml")
    if (ROOT / "_vendor").is_dir():
        shutil.copytree(ROOT / "_vendor", dest / "_vendor")
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    config, n = re.subn(r"execute_notebooks:\s*\w+", 'execute_notebooks: "off"', config)
    if n != 1:
        sys.exit("error: _config.yml has no execute_notebooks setting to turn off")
    (dest / "_config.yml").write_text(config, encoding="utf-8")
    for name in wanted:
        nb = json.loads((executed / f"{name}.ipynb").read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "injected-parameters" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
        (dest / "notebooks" / f"{name}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return dest


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "runs" / "quick" / "executed"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "_build" / "stage"
    print(stage(src, out))
