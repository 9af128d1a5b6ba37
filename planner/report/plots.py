"""The report's figures: matplotlib drawings returned as SVG text (pure, deterministic).

Every function takes the stages' typed results and returns one SVG document. Text is
drawn as paths (matplotlib's default), so the page needs no fonts; the SVG carries no
date and its element ids come from a fixed salt, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.typing import RcKeyType

from planner.defaults import UNITS_PER_GPU
from planner.place import Placement
from planner.report.views import ProfileView
from planner.simulate.curves import LatencyCurve
from planner.study.types import SHAPES, WorkflowStudy
from planner.types.names import ModelName

# One fixed style for every figure (independent of the user's matplotlibrc).
_STYLE: dict[RcKeyType, Any] = {
    "svg.hashsalt": "planner-report",
    "svg.fonttype": "path",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100.0,
}
# Tableau 10, then the lighter tab20 companions: 20 distinct colours before any repeats
# (models on the cluster map, roles, shapes).
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#9edae5", "#dbdb8d", "#c49c94", "#f7b6d2", "#c7c7c7",
)  # fmt: skip
TIME_COLOURS = {"LLM": "#4e79a7", "tools": "#f28e2b", "orchestration": "#bab0ac"}
FREE_COLOUR = "#eeeeee"


def model_colours(models: Sequence[ModelName]) -> dict[ModelName, str]:
    """A colour per model, in sorted name order (the same model, the same colour)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(set(models)))}


@contextmanager
def _figure(width_in: float, height_in: float) -> Iterator[Figure]:
    # A bare Figure (no pyplot): no global figure registry, no backend switch, so a
    # notebook's own plotting is untouched.
    with matplotlib.rc_context(_STYLE):
        yield Figure(figsize=(width_in, height_in))


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _grid(n: int, columns: int) -> tuple[int, int]:
    cols = max(1, min(columns, n))
    return math.ceil(n / cols), cols


def calls_per_workflow(workflows: Sequence[WorkflowStudy]) -> str:
    """Histogram of LLM calls per workflow, one panel per workflow type."""
    rows, cols = _grid(len(workflows), 3)
    with _figure(3.4 * cols, 2.4 * rows) as fig:
        for i, w in enumerate(workflows):
            ax = fig.add_subplot(rows, cols, i + 1)
            h = w.calls_per_workflow_histogram
            widths = [b - a for a, b in zip(h.edges, h.edges[1:], strict=False)]
            ax.bar(h.edges[:-1], h.counts, width=widths, align="edge", color=PALETTE[0])
            ax.set_title(w.workflow_type)
            ax.set_xlabel("LLM calls per workflow")
            ax.set_ylabel("workflows")
        fig.tight_layout()
        return _svg(fig)


def time_split(workflows: Sequence[WorkflowStudy]) -> str:
    """Share of end-to-end time with an LLM call running, only tools, or neither."""
    timed = [w for w in workflows if w.time_split is not None]
    with _figure(7.0, 0.5 + 0.45 * max(len(timed), 1)) as fig:
        ax = fig.add_subplot(1, 1, 1)
        names = [w.workflow_type for w in timed]
        left = [0.0] * len(timed)
        for label, attr in (
            ("LLM", "llm_fraction"),
            ("tools", "tool_fraction"),
            ("orchestration", "orchestration_fraction"),
        ):
            values = [float(getattr(w.time_split, attr)) for w in timed]
            ax.barh(names, values, left=left, color=TIME_COLOURS[label], label=label)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of end-to-end time (critical path)")
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, frameon=False)
        return _svg(fig)


def shapes(workflows: Sequence[WorkflowStudy]) -> str:
    """Share of each workflow type's workflows per graph shape class."""
    with _figure(7.0, 0.5 + 0.45 * len(workflows)) as fig:
        ax = fig.add_subplot(1, 1, 1)
        names = [w.workflow_type for w in workflows]
        left = [0.0] * len(workflows)
        for i, shape in enumerate(SHAPES):
            values = [dict(w.shapes).get(shape, 0) / w.workflow_count for w in workflows]
            if not any(values):
                continue
            ax.barh(names, values, left=left, color=PALETTE[i], label=shape)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of workflows")
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=6, frameon=False)
        return _svg(fig)


def token_lengths(workflows: Sequence[WorkflowStudy]) -> str:
    """Input and output token histograms (power-of-two bins), one row per type."""
    n = len(workflows)
    with _figure(7.0, 2.0 * n) as fig:
        for i, w in enumerate(workflows):
            for j, (label, h) in enumerate(
                (("input", w.input_tokens_histogram), ("output", w.output_tokens_histogram))
            ):
                ax = fig.add_subplot(n, 2, 2 * i + j + 1)
                lows = [max(e, 0.5) for e in h.edges[:-1]]
                widths = [b - max(a, 0.5) for a, b in zip(h.edges, h.edges[1:], strict=False)]
                ax.bar(lows, h.counts, width=widths, align="edge", color=PALETTE[j])
                ax.set_xscale("log", base=2)
                ax.set_title(f"{w.workflow_type}: {label} tokens")
                ax.set_ylabel("calls")
        fig.tight_layout()
        return _svg(fig)


def burstiness(workflows: Sequence[WorkflowStudy]) -> str:
    """Peak-to-mean of workflow arrivals against the window length."""
    with _figure(5.0, 3.0) as fig:
        ax = fig.add_subplot(1, 1, 1)
        for i, w in enumerate(workflows):
            if w.burstiness:
                xs = [b.window_s for b in w.burstiness]
                ys = [b.peak_to_mean for b in w.burstiness]
                ax.plot(xs, ys, marker="o", color=PALETTE[i % len(PALETTE)], label=w.workflow_type)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1.0, color="#999999", linewidth=0.8)
        ax.set_xlabel("window (s)")
        ax.set_ylabel("peak / mean arrivals")
        ax.legend(frameon=False)
        return _svg(fig)


def stability(workflows: Sequence[WorkflowStudy]) -> str:
    """Per type: the spread of end-to-end latency (cv) next to each model's execution
    share cv. Shares far steadier than latency are what the APL rests on."""
    rows, cols = _grid(len(workflows), 3)
    with _figure(3.4 * cols, 2.6 * rows) as fig:
        for i, w in enumerate(workflows):
            ax = fig.add_subplot(rows, cols, i + 1)
            # Unknown values (no end times) are labelled, not drawn as zero.
            bars = [("e2e latency", w.latency_cv, "#999999")] + [
                (_short(m.model), m.execution_share_cv, PALETTE[0]) for m in w.stability
            ]
            labels = [
                name if value is not None and math.isfinite(value) else f"{name} (n/a)"
                for name, value, _ in bars
            ]
            values = [
                value if value is not None and math.isfinite(value) else 0.0 for _, value, _ in bars
            ]
            ax.barh(labels, values, color=[colour for _, _, colour in bars])
            ax.invert_yaxis()
            ax.set_title(w.workflow_type)
            ax.set_xlabel("coefficient of variation")
        fig.tight_layout()
        return _svg(fig)


def roles(workflows: Sequence[WorkflowStudy]) -> str:
    """Per type with named agents: each role's share of calls, tokens and LLM time."""
    typed = [w for w in workflows if w.roles]
    rows, cols = _grid(len(typed), 2)
    with _figure(4.6 * cols, 2.8 * rows) as fig:
        for i, w in enumerate(typed):
            ax = fig.add_subplot(rows, cols, i + 1)
            measures = ["calls", "input tokens", "output tokens", "LLM time"]
            left = [0.0] * len(measures)
            for j, r in enumerate(w.roles):
                values = [
                    r.call_share,
                    r.input_token_share,
                    r.output_token_share,
                    r.latency_share or 0.0,
                ]
                ax.barh(measures, values, left=left, color=PALETTE[j % len(PALETTE)], label=r.role)
                left = [a + b for a, b in zip(left, values, strict=True)]
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_title(w.workflow_type)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
        fig.tight_layout()
        return _svg(fig)


def cluster_map(placement: Placement, colours: dict[ModelName, str]) -> str:
    """Nodes as rows of GPUs; each GPU filled by the models on it in proportion to their
    shares (k/8), TP groups outlined, free GPUs light grey."""
    nodes = placement.nodes
    width = max((len(n.used_eighths) for n in nodes), default=1)
    with _figure(1.0 + 0.9 * width, 0.6 + 0.75 * len(nodes)) as fig:
        ax = fig.add_subplot(1, 1, 1)
        row = {n.node: i for i, n in enumerate(nodes)}
        filled: dict[tuple[str, int], int] = {}
        for n in nodes:
            for g in range(len(n.used_eighths)):
                y = row[n.node]
                ax.add_patch(
                    Rectangle((g, y), 0.9, 0.8, facecolor=FREE_COLOUR, edgecolor="#999999")
                )
                if n.used_eighths[g] == 0:
                    ax.text(g + 0.45, y + 0.4, "free", ha="center", va="center", color="#777777")
        for r in placement.replicas:
            y = row[r.node]
            for g in r.gpu_indices:
                below = filled.get((r.node, g), 0)
                height = 0.8 * r.share_eighths / UNITS_PER_GPU
                ax.add_patch(
                    Rectangle(
                        # Shares stack from the cell's bottom (rows grow downwards).
                        (g, y + 0.8 - 0.8 * (below + r.share_eighths) / UNITS_PER_GPU),
                        0.9,
                        height,
                        facecolor=colours[r.model],
                        edgecolor="white",
                        linewidth=0.6,
                    )
                )
                if r.share_eighths < UNITS_PER_GPU:
                    ax.text(
                        g + 0.45,
                        y + 0.8 - 0.8 * (below + r.share_eighths / 2) / UNITS_PER_GPU,
                        f"{r.share_eighths}/8",
                        ha="center",
                        va="center",
                        color="white",
                        fontsize=7,
                    )
                filled[(r.node, g)] = below + r.share_eighths
            if r.group_gpus > 1:
                lo, hi = min(r.gpu_indices), max(r.gpu_indices)
                ax.add_patch(
                    Rectangle(
                        (lo - 0.04, y - 0.04),
                        hi - lo + 0.98,
                        0.88,
                        fill=False,
                        edgecolor="#222222",
                        linewidth=1.6,
                    )
                )
                label = f"TP{r.tp}" + (f"xDP{r.dp}" if r.dp > 1 else "")
                ax.text(
                    (lo + hi + 0.9) / 2, y + 0.4, label, ha="center", va="center",
                    color="black", fontweight="bold",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
                )  # fmt: skip
        ax.set_xlim(-0.1, width)
        ax.set_ylim(len(nodes), -0.1)
        ax.set_yticks([i + 0.4 for i in range(len(nodes))])
        ax.set_yticklabels([f"{n.node} ({n.gpu_type})" for n in nodes])
        ax.set_xticks([g + 0.45 for g in range(width)])
        ax.set_xticklabels([str(g) for g in range(width)])
        ax.set_xlabel("GPU index")
        ax.spines[["left", "bottom"]].set_visible(False)
        ax.tick_params(length=0)
        handles = [Rectangle((0, 0), 1, 1, facecolor=c) for c in colours.values()]
        handles.append(Rectangle((0, 0), 1, 1, facecolor=FREE_COLOUR, edgecolor="#999999"))
        ax.legend(
            handles,
            [*colours, "free"],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12 if len(nodes) > 2 else -0.3),
            ncol=3,
            frameon=False,
        )
        return _svg(fig)


def latency_vs_rate(curves: Sequence[LatencyCurve], target_rate_per_s: float) -> str:
    """Simulated mean workflow latency against the offered workflow rate, per candidate;
    hollow markers where the rate is not sustainable."""
    with _figure(6.0, 3.6) as fig:
        ax = fig.add_subplot(1, 1, 1)
        for i, c in enumerate(curves):
            if not c.points:
                continue
            colour = PALETTE[i % len(PALETTE)]
            xs = [p.offered_rate_per_s for p in c.points]
            ys = [p.latency_s.mean for p in c.points]
            ax.plot(xs, ys, color=colour, label=f"{c.name} ({c.gpus:g} GPUs)")
            for x, y, p in zip(xs, ys, c.points, strict=True):
                ax.plot(
                    [x], [y], marker="o", color=colour,
                    markerfacecolor=colour if p.sustainable else "white",
                )  # fmt: skip
        ax.axvline(target_rate_per_s, color="#999999", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("workflow rate (per s, all types)")
        ax.set_ylabel("mean end-to-end latency (s)")
        ax.legend(frameon=False, fontsize=8)
        return _svg(fig)


def predicted_vs_measured(
    types: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> str:
    """Mean latency per workflow type: the APL's prediction next to the simulation (and
    the replay when given); a missing value leaves its bar out."""
    with _figure(1.5 + 1.6 * len(types), 3.2) as fig:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / max(len(series), 1)
        for j, (label, values) in enumerate(series):
            xs = [i + j * width for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.bar(xs, ys, width=width, color=PALETTE[j], label=label, align="edge")
        ax.set_xticks([i + 0.4 for i in range(len(types))])
        ax.set_xticklabels(list(types))
        ax.set_yscale("log")
        ax.set_ylabel("mean latency at the target rate (s)")
        ax.legend(frameon=False, fontsize=8)
        return _svg(fig)


def profiles(views: Sequence[ProfileView]) -> str:
    """Per model: latency against per-replica request rate for each shape, the plan's
    operating points starred."""
    rows, cols = _grid(len(views), 2)
    with _figure(4.6 * cols, 3.2 * rows) as fig:
        for i, v in enumerate(views):
            ax = fig.add_subplot(rows, cols, i + 1)
            for j, s in enumerate(v.series):
                colour = PALETTE[j % len(PALETTE)]
                ax.plot(
                    [p[0] for p in s.points], [p[1] for p in s.points],
                    color=colour, label=s.label,
                )  # fmt: skip
                if s.used_point is not None:
                    ax.plot(
                        [s.used_point[0]], [s.used_point[1]], marker="*", markersize=13,
                        color=colour, markeredgecolor="black",
                    )  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{_short(v.model)} on {v.gpu_type}", fontsize=9)
            ax.set_xlabel("requests/s per replica")
            ax.set_ylabel("mean call latency (s)")
            ax.legend(frameon=False, fontsize=7)
        fig.tight_layout()
        return _svg(fig)


def _short(model: str) -> str:
    return model.rsplit("/", 1)[-1]
