"""All of the course's plots. Each function returns a matplotlib Figure; saving is opt-in."""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns


def _style() -> None:
    sns.set_theme(style="whitegrid", context="notebook")


# One colour per role, the same in every chapter's figures (seaborn's "deep" palette). A label's
# role is the role word that comes first in it ("student of minilm-l6": student; "weak -> strong":
# weak); labels of no role take the palette's other colours.
ROLES = {
    "weak": "#4C72B0",                                               # blue
    "strong": "#C44E52",                                             # red
    "student": "#55A868",                                            # green: the no-conflict student
    "implicit": "#DD8452",                                           # orange
    "explicit": "#8172B3",                                           # purple
    "floor": "#8C8C8C",                                              # grey: the floor (twins)
    "placebo": "#CCB974",                                            # olive
}
_WORDS = {**{role: role for role in ROLES}, "no_conflict": "student", "no conflict": "student",
          "twin": "floor"}
_OTHERS = ["#64B5CD", "#DA8BC3", "#937860", "#2F4858", "#1B9E77", "#E7298A", "#66A61E", "#A6761D"]


def role_of(label: object) -> str | None:
    """The role a series label names (a key of :data:`ROLES`): its first role word; or None."""
    text = str(label).lower()
    found = [(text.find(word), role) for word, role in _WORDS.items() if word in text]
    return min(found)[1] if found else None


def palette(labels) -> dict:
    """{label: colour} for series labels: each label its role's colour; several labels of one role
    (implicit 10%, 25%, 47%) get shades of it, dark to light, in the order given; a label of no role
    gets a colour chosen by its text (the same in every figure unless two such labels collide)."""
    labels = list(dict.fromkeys(labels))
    by_role: dict[str | None, list] = {}
    for label in labels:
        by_role.setdefault(role_of(label), []).append(label)
    out = {}
    for role, group in by_role.items():
        if role is None:                   # by the label itself: a rung keeps its colour in every figure
            taken: set[int] = set()
            for label in group:
                k = zlib.crc32(str(label).encode()) % len(_OTHERS)
                while k in taken and len(taken) < len(_OTHERS):
                    k = (k + 1) % len(_OTHERS)
                taken.add(k)
                out[label] = _OTHERS[k]
        elif len(group) == 1:
            out[group[0]] = ROLES[role]
        else:
            base = ROLES[role]
            ends = [sns.set_hls_values(base, l=0.3), base, sns.set_hls_values(base, l=0.75)]
            shades = ends[1:] if len(group) == 2 else sns.blend_palette(ends, len(group))
            out |= dict(zip(group, map(matplotlib.colors.to_hex, shades)))
    return out


def _log_ticks(ax, ticks) -> None:
    """Log-scaled x axis with plain-number ticks exactly at ``ticks``."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(list(ticks))


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
    _log_ticks(ax, r["params_M"].tolist())
    ax.set_xlabel("parameters (millions, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Linear probe on frozen features: harmlessness")
    if baselines:
        ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def toy_dials(runs: pd.DataFrame):
    """Toy world: accuracies and PGR against each dial (one panel per dial).

    runs: one row per (dial, value, seed) with columns ``dial``, ``value``, ``weak``,
    ``student``, ``strong``, ``pgr``. Bands are +-1 sd over seeds.
    """
    _style()
    dials = list(dict.fromkeys(runs["dial"]))
    fig, axes = plt.subplots(2, len(dials), figsize=(5 * len(dials), 6), sharey="row", squeeze=False)
    for j, dial in enumerate(dials):
        d = runs[runs["dial"] == dial]
        long = d.melt(id_vars=["value", "seed"], value_vars=["weak", "student", "strong"],
                      var_name="model", value_name="accuracy")
        sns.lineplot(data=long, x="value", y="accuracy", hue="model", marker="o", errorbar="sd", ax=axes[0, j],
                     palette=palette(long["model"]))
        sns.lineplot(data=d, x="value", y="pgr", marker="o", errorbar="sd", ax=axes[1, j], color="0.25")
        axes[1, j].axhline(0, color="grey", lw=1)
        axes[0, j].set_title(dial)
        axes[0, j].set_xlabel("")
        axes[1, j].set_xlabel(dial.split("(")[-1].rstrip(")"))
        axes[1, j].set_ylabel("PGR")
        if "dims" in dial:
            axes[0, j].invert_xaxis()
            axes[1, j].invert_xaxis()
    fig.suptitle("Toy world: the gap grows left to right")
    fig.tight_layout()
    return fig


def accuracy_vs_strong(runs: pd.DataFrame, params_m: dict[str, float]):
    """The paper's figure: student accuracy against strong-model size, one line per weak model.

    runs: one row per (weak, strong, seed) with columns ``weak``, ``strong`` (rung names),
    ``student_acc``, ``weak_acc`` and ``strong_acc`` (accuracies). Each weak model's own accuracy
    is drawn dashed in a shade of the weak colour; the strong ceilings in the strong colour.
    """
    _style()
    d = runs.assign(size=runs["strong"].map(params_m))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ceil = d.groupby("strong").agg(size=("size", "first"), acc=("strong_acc", "mean")).sort_values("size")
    ax.plot(ceil["size"], ceil["acc"], "s-", color=ROLES["strong"], label="strong ceiling")
    weaks = list(dict.fromkeys(d["weak"]))
    students = palette([f"student of {w}" for w in weaks])
    weak_lines = palette([f"weak {w}" for w in weaks])
    for weak, g in d.groupby("weak", sort=False):
        m = g.groupby("size")["student_acc"].agg(["mean", "std"]).reset_index()
        ax.errorbar(m["size"], m["mean"], yerr=m["std"].fillna(0), fmt="o-", capsize=3,
                    color=students[f"student of {weak}"], label=f"student of {weak}")
        ax.axhline(g["weak_acc"].mean(), color=weak_lines[f"weak {weak}"], ls="--", lw=1)
    _log_ticks(ax, sorted(set(d["size"])))
    ax.set_xlabel("strong model parameters (millions, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Students by strong-model size (dashed: each weak model)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def pgr_vs_dial(runs: pd.DataFrame):
    """PGR against the weak-training-size dial, one line per (weak, strong) pair (+-1 sd)."""
    _style()
    d = runs.assign(pair=runs["weak"] + " -> " + runs["strong"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=d, x="weak_n", y="gap", hue="pair", marker="o", errorbar="sd", ax=axes[0])
    sns.lineplot(data=d, x="weak_n", y="pgr", hue="pair", marker="o", errorbar="sd", ax=axes[1], legend=False)
    for ax, label in zip(axes, ("gap: strong - weak accuracy", "PGR")):
        _log_ticks(ax, sorted(set(d["weak_n"])))
        ax.axhline(0, color="grey", lw=1)
        ax.set_xlabel("GT pairs the weak ceiling trained on")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("The weak-training-size dial")
    fig.tight_layout()
    return fig


def region_bars(table: pd.DataFrame, title: str = "Student accuracy per knowledge cell", ylabel: str = "accuracy"):
    """Grouped bars: one group per knowledge cell (rows), one bar per student or setting (columns)."""
    _style()
    table = table.rename_axis("cell").rename_axis(columns=None)
    long = table.reset_index().melt(id_vars="cell", var_name="student", value_name=ylabel)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    sns.barplot(data=long, x="cell", y=ylabel, hue="student", ax=ax, palette=palette(long["student"]))
    ax.set_xlabel("knowledge cell (W: weak ceiling, S: strong ceiling; k = right, uk = wrong)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def conflict_settings(runs: pd.DataFrame):
    """Student accuracy against alpha (explicit) and helpful share (implicit), one line per pair.

    runs: columns ``weak``, ``strong``, ``setting``, ``alpha``, ``helpful_share``,
    ``student_acc``, ``seed``. Bands are +-1 sd over seeds.
    """
    _style()
    d = runs.assign(pair=runs["weak"] + " -> " + runs["strong"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    sns.lineplot(data=d[d.setting == "explicit"], x="alpha", y="student_acc", hue="pair", marker="o",
                 errorbar="sd", ax=axes[0])
    base = d[(d.setting == "explicit") & (d.alpha == 0)].assign(helpful_share=0.0)
    sns.lineplot(data=pd.concat([base, d[d.setting == "implicit"]]), x="helpful_share", y="student_acc",
                 hue="pair", marker="o", errorbar="sd", ax=axes[1], legend=False)
    axes[0].set_xlabel("alpha (explicit conflict)")
    axes[1].set_xlabel("share of helpful pairs in the student's data (implicit conflict)")
    axes[0].set_ylabel("student test accuracy")
    axes[0].legend(fontsize=8)
    fig.suptitle("What each conflict setting costs")
    fig.tight_layout()
    return fig


def save(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (opt-in; notebooks display figures without writing files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def interval_points(table: pd.DataFrame, x: str, hue: str, title: str, ylabel: str,
                    floor: pd.DataFrame | None = None, floor_label: str = "floor (twin)"):
    """Points with error bars: columns ``x``, ``hue``, ``est``, ``low``, ``high``.

    ``floor`` (columns ``x``, ``est``, ``low``, ``high``) draws a grey band per x: the same
    score between two no-conflict students (the floor: retrained on other data or with another
    seed), below which nothing is evidence.
    """
    _style()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = list(dict.fromkeys(table[x]))
    hues = list(dict.fromkeys(table[hue]))
    colours = palette(hues)
    width = 0.7 / max(1, len(hues))
    for j, h in enumerate(hues):
        sub = table[table[hue] == h].set_index(x).reindex(xs)
        pos = np.arange(len(xs)) - 0.35 + width * (j + 0.5)
        ax.errorbar(pos, sub["est"], yerr=[sub["est"] - sub["low"], sub["high"] - sub["est"]],
                    fmt="o", capsize=3, label=str(h), color=colours[h])
    if floor is not None:
        f = floor.set_index(x).reindex(xs)
        for i, (_, r) in enumerate(f.iterrows()):
            if np.isfinite(r["high"]):
                ax.fill_between([i - 0.4, i + 0.4], r["low"], r["high"], color="0.85", zorder=0,
                                label=floor_label if i == 0 else None)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(range(len(xs)), xs, rotation=25, ha="right", rotation_mode="anchor")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def heatmap(pivot: pd.DataFrame, title: str, fmt: str = ".2f", cmap: str = "rocket_r", annot=None):
    """An annotated heatmap of a pivot table (rows x columns), NaN cells left blank."""
    _style()
    fig, ax = plt.subplots(figsize=(2.4 + 2.0 * pivot.shape[1], 1.4 + 0.9 * pivot.shape[0]))
    sns.heatmap(pivot, annot=annot if annot is not None else True, fmt=fmt if annot is None else "",
                cmap=cmap, ax=ax, cbar=True, annot_kws={"fontsize": 9})
    ax.grid(False)
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def score_vs_gap(runs: pd.DataFrame, score: str, title: str):
    """One line per weak model: ``score`` against the measured gap (strong - weak accuracy),
    one point per (strong model, weak_n) averaged over seeds, horizontal bars = seed spread."""
    _style()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    g = runs.groupby(["weak", "strong", "weak_n"]).agg(gap=("gap", "mean"), gap_sd=("gap", "std"),
                                                       y=(score, "mean"), y_sd=(score, "std")).reset_index()
    for weak, sub in g.groupby("weak"):
        sub = sub.sort_values("gap")
        ax.errorbar(sub["gap"], sub["y"], xerr=sub["gap_sd"], yerr=sub["y_sd"], fmt="o-", capsize=2,
                    label=f"weak: {weak}", alpha=0.85)
    ax.set_xlabel("capability gap: strong ceiling − weak ceiling accuracy")
    ax.set_ylabel(score)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def threshold_sweep(sweep: pd.DataFrame, threshold: float | None = None):
    """Chapter 5's filter sweep: one panel per quantity (columns of ``sweep`` besides
    ``threshold`` and ``variant``; means over seeds), one line per filter variant, the paper's
    threshold marked."""
    _style()
    quantities = [c for c in sweep.columns if c not in ("threshold", "variant")]
    fig, axes = plt.subplots(1, len(quantities), figsize=(3.2 * len(quantities), 3.2), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, q in zip(axes, quantities):
        sns.lineplot(sweep, x="threshold", y=q, hue="variant", marker="o", ax=ax, errorbar=None,
                     legend=ax is axes[0], palette=palette(sweep["variant"]))
        if threshold is not None:
            ax.axvline(threshold, color="0.6", ls="--", lw=0.8)
        ax.set_title(q, fontsize=9)
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def audit_curves(curves: pd.DataFrame, title: str):
    """Share of a target found against the audit budget: columns ``budget`` (share of the test
    pairs audited), ``found`` (mean), ``low``, ``high`` and ``rule``; one line per rule. Bands are
    clipped to [0, 1], the range a share can take."""
    _style()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours = palette(curves["rule"])
    for rule, sub in curves.groupby("rule", sort=False):
        ax.plot(sub["budget"], sub["found"], marker="o", label=rule, color=colours[rule])
        ax.fill_between(sub["budget"], sub["low"].clip(0, 1), sub["high"].clip(0, 1), alpha=0.15,
                        color=colours[rule])
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8, label="random, expected")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("audit budget: share of the test pairs given a ground-truth label")
    ax.set_ylabel("share of the deceptive errors found")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories, title: str, smooth: int = 5):
    """How runs trained: one row of three panels per group (for example DPO and SimPO).

    histories: {group: {run name: history}}, a history as :attr:`w2s_helpers.policies.lab.Run.history`
    ({"po.loss", "po.margin": [steps], optionally "po.watch_step", "po.watch_accuracy"}). Panels:
    the preference loss and the implied reward margin per step (running mean over ``smooth``
    steps, for runs of at least 4 * smooth steps) and the held-out accuracy where the run was watched.
    """
    _style()
    groups = list(histories)
    fig, axes = plt.subplots(len(groups), 3, figsize=(11, 3.1 * len(groups)), squeeze=False)
    run_mean = lambda v: np.convolve(np.asarray(v, float), np.ones(smooth) / smooth, mode="valid") \
        if len(v) >= 4 * smooth else np.asarray(v, float)          # short runs: every step as it is
    for row, group in zip(axes, groups):
        colours = palette(histories[group])
        for name, h in histories[group].items():
            for ax, key in zip(row[:2], ("po.loss", "po.margin")):
                if key in h and len(h[key]):
                    y = run_mean(h[key])
                    ax.plot(np.arange(len(y)) + (len(h[key]) - len(y)), y, color=colours[name], label=name)
            if "po.watch_accuracy" in h:
                row[2].plot(np.asarray(h["po.watch_step"]), np.asarray(h["po.watch_accuracy"]), "o-",
                            color=colours[name], label=name, ms=3)
        for ax, what in zip(row, ("preference loss", "implied reward margin", "held-out accuracy")):
            ax.set_title(f"{group}: {what}", fontsize=10)
            ax.set_xlabel("step")
        row[1].axhline(0, color="0.5", lw=0.8)
        row[2].axhline(0.5, color="0.5", lw=0.8, ls="--")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def training_watch(histories, title: str):
    """Training records of a few runs side by side, one panel per recorded quantity.

    histories: {run name: {"step": [k], "loss": [k], "accuracy <name>": [k], ...}}, as
    :func:`w2s_helpers.rewards.heads.trace_adam` returns them."""
    _style()
    keys = [k for k in next(iter(histories.values())) if k != "step"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.7 * len(keys), 3.3), squeeze=False)
    colours = palette(histories)
    for name, h in histories.items():
        for ax, key in zip(axes[0], keys):
            ax.plot(h["step"], h[key], color=colours[name], label=name)
    for ax, key in zip(axes[0], keys):
        ax.set_title(key if key != "loss" else "training loss", fontsize=10)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
