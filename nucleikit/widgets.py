"""ipywidgets front-ends over :mod:`nucleikit.viz` and library calls; no algorithm logic lives here.

Widgets in an executed notebook are saved as static snapshots (their state renders in the book, but Python
callbacks cannot run there), so every chapter follows its widget with a static figure of the same idea.
"""

from __future__ import annotations

__all__: list[str] = []
