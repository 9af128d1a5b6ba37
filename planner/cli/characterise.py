"""`planner characterise`: the workload study of a trace, as tables or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli import app
from planner.cli.options import MappingOpt

if TYPE_CHECKING:
    from planner.study.types import WorkloadStudy


@app.command()
def characterise(
    path: Annotated[
        Path,
        typer.Argument(
            help="A trace file or a directory of them (any format `planner ingest` reads).",
            show_default=False,
        ),
    ],
    mapping: MappingOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the study as JSON (a public contract: docs/characterise.md)."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Also write the JSON to this file (atomically)."),
    ] = None,
) -> None:
    """Study how the traced workflows use their LLMs: calls, fan-out, depth, graph shapes,
    where the time goes, failures, prefix reuse, token lengths, burstiness, share stability
    and, where agents are named, per-role figures and role path patterns."""
    from planner.io.atomic import write_text_atomic
    from planner.io.study_json import dumps_study
    from planner.io.traces import load_mapping, read_calls
    from planner.study import characterise_workload

    calls = read_calls(path, load_mapping(mapping) if mapping is not None else None)
    study = characterise_workload(calls)
    text = dumps_study(study)
    if output is not None:
        write_text_atomic(output, text)
    if as_json:
        typer.echo(text, nl=False)
    else:
        _print(study)


def _print(study: WorkloadStudy) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    typer.echo(f"{study.calls} calls from {len(study.sources)} file(s)")
    for w in study.workflows:
        c = w.calls_per_workflow
        typer.echo(
            f"\n{w.workflow_type}: {w.workflow_count} workflows, LLM calls/workflow "
            f"p50 {c.p50:g} (p10-p90 {c.p10:g}-{c.p90:g}), {w.tool_calls} tool calls"
        )
        shapes = ", ".join(f"{s} {n}" for s, n in w.shapes) or "n/a"
        typer.echo(f"  shapes: {shapes}")
        if w.depth is not None:
            fan = f", LLM calls in flight max {w.max_concurrency.max:g}" if w.max_concurrency else ""
            typer.echo(f"  depth p50 {w.depth.p50:g} max {w.depth.max:g} ({w.depth_source}){fan}")
        if w.time_split is not None:
            s = w.time_split
            typer.echo(
                f"  time: LLM {pct(s.llm_fraction)}, tools {pct(s.tool_fraction)}, "
                f"orchestration {pct(s.orchestration_fraction)}"
            )
        f = w.failures
        typer.echo(
            f"  errors {f.error_calls}, retries {f.retry_calls} "
            f"({pct(f.workflows_with_failures_fraction)} of workflows)"
        )
        r = w.prefix_reuse
        typer.echo(
            f"  prefix reuse: cached {pct(r.cached_input_fraction)}, repeated prefixes "
            f"{pct(r.repeated_prefix_fraction)}, context carry-over bound "
            f"{pct(r.context_carryover_fraction)}"
        )
        typer.echo(
            f"  tokens: input p50 {w.input_tokens.p50:g} p90 {w.input_tokens.p90:g}, "
            f"output p50 {w.output_tokens.p50:g} p90 {w.output_tokens.p90:g}"
        )
        bursts = ", ".join(f"{b.window_s:g}s x{b.peak_to_mean:.2f}" for b in w.burstiness)
        typer.echo(f"  arrivals peak/mean: {bursts or 'n/a'}")
        cv = "n/a" if w.latency_cv is None else f"{w.latency_cv:.2f}"
        shares = ", ".join(
            f"{m.model} {m.execution_share:.0%} (cv {m.execution_share_cv:.2f})"
            for m in w.stability
        )
        typer.echo(f"  latency cv {cv}; execution shares: {shares}")
        for role in w.roles:
            latency = pct(role.latency_share)
            typer.echo(
                f"  role {role.role}: {role.calls_per_workflow:.3g} calls/wf, "
                f"{pct(role.output_token_share)} of output tokens, {latency} of LLM time, "
                f"output p10-p90 {role.output_tokens_p10:g}-{role.output_tokens_p90:g}"
            )
        for p in w.patterns:
            typer.echo(f"  path ({p.coverage:.0%}): {p.pattern}")
    for note in study.notes:
        typer.echo(f"note: {note}")
