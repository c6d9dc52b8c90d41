"""Small PNG charts embedded in markdown as data URIs, so they render in the Dagster UI."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence


def figure_markdown(figure, alt: str) -> str:
    """Encode a matplotlib figure as `![alt](data:image/png;base64,...)` and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')})"


def line_chart_markdown(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], *, title: str
) -> str:
    """One subplot per panel; each panel maps a series label to (x, y) points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {name: series for name, series in panels.items() if any(series.values())}
    if not panels:
        return "_nothing to plot_"
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False)
    for axis, (name, series) in zip(axes[0], panels.items()):
        for label, points in series.items():
            if points:
                xs, ys = zip(*points)
                axis.plot(xs, ys, marker="o" if len(points) < 20 else None, markersize=3, label=label)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    return figure_markdown(figure, title)
