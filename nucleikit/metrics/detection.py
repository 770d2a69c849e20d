"""detection metrics (see nucleikit.metrics)."""

__all__: list[str] = []
