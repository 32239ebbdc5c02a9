"""All of the course's plots. Each function returns a matplotlib Figure; saving is opt-in."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns


def _style() -> None:
    sns.set_theme(style="whitegrid", context="notebook")


def length_histogram(lengths: pd.DataFrame, column: str = "tokens", hue: str = "side", clip: int = 300):
    """Histogram of response lengths, one colour per side (chosen / rejected).

    lengths: one row per response with columns ``column`` (a length) and ``hue``.
    """
    _style()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    data = lengths.assign(**{column: lengths[column].clip(upper=clip)})
    sns.histplot(data=data, x=column, hue=hue, bins=40, element="step", stat="density", common_norm=False, ax=ax)
    ax.set_xlabel(f"{column} per response (clipped at {clip})")
    ax.set_title("How long are the responses?")
    fig.tight_layout()
    return fig


def ladder_accuracy(results: pd.DataFrame, baselines: dict[str, float] | None = None):
    """Test accuracy per rung with 95% intervals, rungs ordered by size.

    results: columns ``rung``, ``params_M``, ``acc``, ``low``, ``high``.
    baselines: horizontal reference lines, e.g. ``{"chance": 0.5}``.
    """
    _style()
    r = results.sort_values("params_M")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(r["params_M"], r["acc"], yerr=[r["acc"] - r["low"], r["high"] - r["acc"]],
                fmt="o-", capsize=4)
    for x, y, name in zip(r["params_M"], r["acc"], r["rung"]):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    for i, (label, y) in enumerate((baselines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{i + 1}", label=label)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(r["params_M"].tolist())
    ax.set_xlabel("parameters (millions, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Linear probe on frozen features: harmlessness")
    if baselines:
        ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def save(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (opt-in; notebooks display figures without writing files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
