"""`planner report`: the page is complete, self-contained and deterministic, and it
renders in a real browser (headless Chromium) with every image loaded and no console
errors."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.jobs.reporting import Report, ReportRequest, report_job

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "manifests" / "h100x8" / "plan.yaml"
CALLS = 3000  # per simulation: enough for curves, short enough for a test
IMAGE = re.compile(r'<img alt="([^"]*)" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("report")
    return report_job(ReportRequest(REPO / "traces", PLAN, out, calls=CALLS))


def test_page_has_every_section_and_valid_images(report: Report) -> None:
    html = report.html
    assert report.path.read_text(encoding="utf-8") == html
    for anchor in ("workload", "plan", "evidence", "profiles"):
        assert f'id="{anchor}"' in html
    images = IMAGE.findall(html)
    alts = {alt for alt, _ in images}
    assert {"cluster map", "latency vs rate", "predicted vs simulated", "profiles"} <= alts
    assert {"graph shape classes", "critical-path time split", "per-role shares"} <= alts
    for _, data in images:
        root = ET.fromstring(base64.b64decode(data))
        assert root.tag.endswith("svg")
    # Every model of the plan is in the allocation table and on the map's legend.
    for model in ("Llama-3.1-70B-Instruct", "Qwen3-32B", "Qwen3-Reranker-0.6B"):
        assert f'<td class="l">{model}</td>' in html
    assert "-&gt; explorer{" in html  # a role path pattern


def test_page_needs_no_network(report: Report) -> None:
    # The only URLs are XML namespaces inside the SVGs; nothing is fetched.
    outside = re.findall(r'(?:src|href)="(?!data:|#)([^"]*)"', report.html)
    assert outside == []
    assert "<script" not in report.html


@pytest.mark.slow
def test_page_is_deterministic(report: Report, tmp_path: Path) -> None:
    again = report_job(ReportRequest(REPO / "traces", PLAN, tmp_path, calls=CALLS))
    assert again.html == report.html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Captures load errors (capture phase sees failed images) and console errors, and records
# every image's state once the page has loaded.
_PROBE = """<script>
window.__errors = [];
window.addEventListener("error",
  e => window.__errors.push(String(e.message || e.target.src || e)), true);
const original = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); original(...args); };
window.addEventListener("load", () => {
  const images = [...document.images].map(
    i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}));
  const result = {images, errors: window.__errors, height: document.body.scrollHeight,
                  sections: [...document.querySelectorAll("h2")].map(h => h.textContent)};
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium (make test-deps installs it)"
)
def test_page_renders_in_headless_chromium(report: Report, tmp_path: Path) -> None:
    page = tmp_path / "probe.html"
    page.write_text(report.html.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [
            str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, "the page did not finish loading:\n" + done.stdout[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    broken = [i["alt"] for i in result["images"] if not i["ok"]]
    assert broken == [] and len(result["images"]) >= 10
    assert result["sections"] == ["Workload", "Plan", "Evidence", "Profiles"]
    assert result["height"] > 3000  # laid out, not an empty page
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def _replay_document(plan_path: Path) -> dict[str, object]:
    """A `planner replay --json` document made by the replay code's own measurement and
    serializer (`summarise_replay`, `replay_document`), from a log constructed for the
    plan: per workflow type two finished workflows of known latency, per model two calls
    and one server whose prefix-cache counters say 3 hits in 8 queried tokens."""
    from planner.io.plan_file import read_plan
    from planner.replay.measure import (
        CALL_OK,
        WORKFLOW_OK,
        CallRecord,
        ReplayLog,
        WorkflowRecord,
        summarise_replay,
    )
    from planner.replay.metrics import ServerMeasure
    from planner.replay.report import replay_document

    plan = read_plan(plan_path)
    calls, workflows = [], []
    for i, m in enumerate(plan.models):
        for j in range(2):
            sent = 1.0 + i + j
            calls.append(
                CallRecord(2 * i + j, m.model, f"http://{i}", sent, sent + 0.1, sent + 0.5,
                           100, 11, CALL_OK)
            )  # fmt: skip
    for i, w in enumerate(plan.workflows):
        for j, latency in enumerate((1.0 + i, 3.0 + i)):  # mean 2 + i
            start = 1.0 + i + j
            workflows.append(
                WorkflowRecord(2 * i + j, w.workflow_type, start, start + latency, WORKFLOW_OK)
            )
    target = sum(w.target_rate_per_s for w in plan.workflows)
    measure = summarise_replay(ReplayLog(target, 1.0, 21.0, 22.0, tuple(calls), tuple(workflows)))
    servers = [
        ServerMeasure(m.model, f"http://{i}", 5, 800.0, 88.0, 0.0, 8.0, 3.0,
                      1.0, 2.0, 0.0, 0.0, 0.1, 0.2)
        for i, m in enumerate(plan.models)
    ]  # fmt: skip
    doc = replay_document(measure, servers, {"endpoints": "endpoints.yaml"}, plan)
    # Through JSON exactly as `planner replay --json -o FILE` writes it.
    return json.loads(json.dumps(doc, indent=2) + "\n")  # type: ignore[no-any-return]


@pytest.mark.slow
def test_cli_with_evaluation_and_a_real_replay_document(tmp_path: Path) -> None:
    from planner.jobs.evaluating import EvaluateRequest, evaluate_job
    from planner.simulate.report import evaluation_document

    doc = evaluation_document(evaluate_job(EvaluateRequest(REPO / "traces", PLAN, calls=2000)))
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps(doc))
    replay_doc = _replay_document(PLAN)
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(replay_doc, indent=2) + "\n")
    out = tmp_path / "page"
    result = CliRunner().invoke(
        app,
        [
            "report", str(REPO / "traces"), "--plan", str(PLAN), "-o", str(out),
            "--evaluation", str(evaluation), "--replay", str(replay), "--calls", "2000",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "<h3>Evaluation</h3>" in html and "<h3>Replay</h3>" in html
    assert "was made for other allocations" not in html  # the same plan
    for name in ("uniform", "independent", "greedy"):
        assert f'<td class="l">{name}</td>' in html
    # The replayed mean latency per type (2 + i s) is in its column, with its error.
    per_type = html[html.index("replayed s") : html.index("error = (predicted")]
    from planner.io.plan_file import read_plan

    for i, w in enumerate(read_plan(PLAN).workflows):
        row = re.search(rf'<td class="l">{re.escape(w.workflow_type)}</td>(.*?)</tr>', per_type)
        assert row is not None
        cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
        assert cells[3] == f"{2.0 + i:.4g}"
        assert cells[4] == f"{(w.mean_latency_s - (2 + i)) / (2 + i):.1%}"
    # Evaluate's predicted vs simulated hit rates, and the servers' counted 3/8.
    assert "Prefix-cache hit rate, predicted against simulated" in html
    hits = html[html.index("predicted against replayed servers") :]
    assert hits.count("<td>37.5%</td>") == len(read_plan(PLAN).models)
    # The replay's own comparison with the plan (it was run with --compare).
    measured = replay_doc["plan"]
    assert isinstance(measured, dict)
    assert f"<td>{measured['mean_latency_s']:.4g}</td>" in html


def test_replay_and_evaluation_documents_are_not_interchangeable(tmp_path: Path) -> None:
    from planner.errors import InputError
    from planner.io.report_file import read_evaluation_document

    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(_replay_document(PLAN)))
    assert read_evaluation_document(replay, "--replay", measured=True)["criterion"] == "measured"
    with pytest.raises(InputError, match="pass it to --replay"):
        read_evaluation_document(replay, "--evaluation")
    simulated = tmp_path / "evaluation.json"
    simulated.write_text(json.dumps({"schema_version": 1, "criterion": "queue", "plan": {}}))
    with pytest.raises(InputError, match="planner replay --json"):
        read_evaluation_document(simulated, "--replay", measured=True)


def test_a_replay_without_compare_is_shown_unchecked() -> None:
    from planner.io.plan_file import read_plan
    from planner.report.html import _mismatch

    note = _mismatch(read_plan(PLAN), {"plan": {"allocations": []}}, "--replay")
    assert "records no allocations" in note and "other allocations" not in note


def test_allocation_table_shows_cost_power_and_prefix_hits(tmp_path: Path) -> None:
    import yaml

    from planner.io.plan_file import read_plan
    from planner.report.html import _allocation_table
    from planner.report.views import allocation_costs

    doc = yaml.safe_load(PLAN.read_text())
    doc["cost_per_hour"] = 2.5 * doc["gpus_used"]  # $2.50 per GPU-hour
    priced = tmp_path / "plan.yaml"
    priced.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = read_plan(priced)
    assert plan.power_kw is not None and plan.cost_per_1000_workflows is not None
    costs = allocation_costs(plan)
    assert costs is not None
    for a, c in zip(plan.allocations, costs, strict=True):
        assert c.cost_per_hour == pytest.approx(2.5 * a.gpus)
        assert c.power_kw == pytest.approx(plan.power_kw * a.gpus / plan.gpus_used)
    assert sum(c.cost_per_1000_workflows or 0 for c in costs) == pytest.approx(
        plan.cost_per_1000_workflows
    )
    html = _allocation_table(plan, costs)
    assert "<th>$/hour</th>" in html and "<th>$ per 1,000 workflows</th>" in html
    assert f"<td>{plan.cost_per_1000_workflows:.4g}</td>" in html
    assert '<td class="l">total</td>' in html
    # No prices: no cost columns; power alone (the example plan's catalog board power).
    plain = read_plan(PLAN)
    html = _allocation_table(plain, allocation_costs(plain))
    assert "$/hour" not in html and "<th>power kW</th>" in html
    # Several GPU types: the cluster's per-type prices and power.
    mixed = read_plan(REPO / "manifests" / "cluster" / "plan.yaml")
    types = sorted({a.gpu_type for a in mixed.allocations})
    assert len(types) > 1
    prices = {t: 1.0 + i for i, t in enumerate(types)}
    from dataclasses import replace

    mixed = replace(
        mixed, cost_per_hour=sum(a.gpus * prices[a.gpu_type] for a in mixed.allocations)
    )
    costs = allocation_costs(mixed, prices, None)
    assert costs is not None
    assert sum(c.cost_per_hour or 0 for c in costs) == pytest.approx(mixed.cost_per_hour)
    assert all(c.power_kw is None for c in costs)  # power per type unknown here


def test_model_table_shows_prefix_hit_rate_and_routing(report: Report) -> None:
    from planner.io.plan_file import read_plan

    assert "<th>prefix-cache hit rate</th>" in report.html
    for m in read_plan(PLAN).models:
        assert f"<td>{m.prefix_hit_rate:.1%}</td><td>{m.routing}</td>" in report.html


def test_cli_rejects_a_bad_evaluation_file(tmp_path: Path) -> None:
    bad = tmp_path / "evaluation.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(
        app,
        ["report", str(REPO / "traces"), "--plan", str(PLAN), "-o", str(tmp_path / "o"),
         "--evaluation", str(bad)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--evaluation" in str(result.exception) or "--evaluation" in result.output


def test_cluster_map_shows_free_gpus_shares_and_tp_groups(tmp_path: Path) -> None:
    # matplotlib writes each text of an SVG as a comment beside its glyphs.
    from planner.io.cluster_file import load_cluster
    from planner.io.plan_file import read_plan
    from planner.place import place
    from planner.report import plots

    plan = read_plan(REPO / "manifests" / "cluster" / "plan.yaml")
    placement = place(plan, load_cluster(REPO / "configs" / "cluster.yaml"))
    colours = plots.model_colours([a.model for a in plan.allocations])
    svg = plots.cluster_map(placement, colours)
    legend = 1
    assert svg.count("<!-- free -->") == placement.fragmentation.free_gpus + legend
    tp_groups = sum(1 for r in placement.replicas if r.tp > 1)
    assert svg.count("<!-- TP8 -->") == tp_groups > 0
    # A reranker on an eighth of a GPU: its share is labelled, the GPU is not free.
    import yaml

    doc = yaml.safe_load(PLAN.read_text())
    reranker = doc["allocations"][-1]
    assert (reranker["tensor_parallel"], reranker["replicas"]) == (1, 1)
    reranker.update(gpu_fraction=0.125, gpus=0.125)
    shared = tmp_path / "plan.yaml"
    shared.write_text(yaml.safe_dump(doc, sort_keys=False))
    from planner.types.cluster import uniform_cluster

    small = read_plan(shared)
    placed = place(small, uniform_cluster(8, "H100-SXM-80GB", 8, 8))
    svg = plots.cluster_map(placed, plots.model_colours([a.model for a in small.allocations]))
    assert svg.count("<!-- 1/8 -->") == 1
    assert svg.count("<!-- free -->") == legend  # the shared GPU is partly used, not free


def test_write_report_refuses_a_file_as_folder(tmp_path: Path) -> None:
    from planner.io.outputs import OutputError
    from planner.io.report_file import write_report

    target = tmp_path / "page"
    target.write_text("not a folder")
    with pytest.raises(OutputError, match="is a file"):
        write_report(target, "<html></html>")
    assert write_report(tmp_path / "new", "<p>x</p>").read_text() == "<p>x</p>"


def test_every_table_row_matches_its_header(report: Report) -> None:
    for table in re.findall(r"<table>(.*?)</table>", report.html, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in rows}
        assert len(widths) == 1, table[:300]


def test_an_evaluation_of_another_plan_is_flagged() -> None:
    from planner.io.plan_file import read_plan
    from planner.report.html import _mismatch

    plan = read_plan(PLAN)
    same = [
        {"model": a.model, "gpu_type": a.gpu_type, "tensor_parallel": a.tp,
         "gpu_fraction": a.gpu_fraction, "replicas": a.replicas}
        for a in plan.allocations
    ]  # fmt: skip
    assert _mismatch(plan, {"plan": {"allocations": same}}, "--evaluation") == ""
    other = [dict(same[0], replicas=same[0]["replicas"] + 1), *same[1:]]
    assert "other allocations" in _mismatch(plan, {"plan": {"allocations": other}}, "--replay")
