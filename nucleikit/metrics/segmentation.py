"""segmentation metrics (see nucleikit.metrics)."""

__all__: list[str] = []
