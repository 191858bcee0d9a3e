"""Sweeps end to end on the local executors: sampling, constraints, the store, resume, failures, reports."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from einloom.cli import main
from einloom.report.pareto import pareto_mask
from einloom.report.sweep import load_sweep_data, pareto_front, write_report
from einloom.sweep.errors import SweepError
from einloom.sweep.executors import WORKER_DIED, InProcessExecutor, ProcessExecutor
from einloom.sweep.runner import run_sweep
from einloom.sweep.space import enumerate_points, sample_designs
from einloom.sweep.spec import load_sweep
from einloom.sweep.status import sweep_status
from einloom.sweep.store import Store
from sweep_helpers import SMALL, write_sweep

FAULTY = "einloom.sweep.faults:faulty_point"


def stored(outdir) -> dict[str, dict]:
    with Store(outdir) as store:
        return {r["key"]: r for r in store.rows()}


def test_grid_points_and_keys(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    assert points.designs == 6 and len(points.points) == 12
    assert len({p["key"] for p in points.points}) == 12
    assert {p["arch_document"]["array_2d"]["rows"] for p in points.points} == {64, 128, 256}
    assert all(p["arch_document"]["array_1d"]["width"] == p["design"]["array"] for p in points.points)
    again = enumerate_points(load_sweep(write_sweep(tmp_path)))
    assert [p["key"] for p in again.points] == [p["key"] for p in points.points]
    # a changed cascade, arch field or workload gives a new key
    other = enumerate_points(load_sweep(write_sweep(tmp_path, SMALL.replace("1K", "2K"), "b.yaml")))
    assert len({p["key"] for p in other.points} & {p["key"] for p in points.points}) == 6


@pytest.mark.parametrize("method", ["random", "lhs"])
def test_sampling_is_seeded(tmp_path, method):
    text = SMALL.replace("values: [64, 128, 256]", "range: [32, 512]\n    log: true\n    integer: true")
    text += f"sampling: {{method: {method}, samples: 20}}\nseed: 3\n"
    first, _ = sample_designs(load_sweep(write_sweep(tmp_path, text)))
    second, _ = sample_designs(load_sweep(write_sweep(tmp_path, text, "again.yaml")))
    other, _ = sample_designs(load_sweep(write_sweep(tmp_path, text.replace("seed: 3", "seed: 4"), "other.yaml")))
    assert first == second and first != other
    arrays = [d["array"] for d in first]
    assert all(32 <= a <= 512 and isinstance(a, int) for a in arrays)
    if method == "lhs":   # one sample in each of the 20 equal strata of log(array)
        u = (np.log(arrays) - np.log(32)) / (np.log(512) - np.log(32))
        strata = np.clip(np.floor(u * 20), 0, 19)
        assert len(set(strata)) >= 18   # integer rounding may move a sample across a stratum edge


def test_constraints_prune_before_evaluation(tmp_path):
    text = SMALL + "constraints: {area_mm2: 200, working_set_fits: true}\n"
    sweep = load_sweep(write_sweep(tmp_path, text))
    points = enumerate_points(sweep)
    seen = []
    run_sweep(sweep, tmp_path / "out", progress=False, points=points, on_outcome=seen.append)
    rows = stored(tmp_path / "out")
    for p in points.points:
        row = rows[p["key"]]
        too_big = p["static"]["area_mm2"] > 200
        no_fit = p["static"]["working_set_bytes"] > p["static"]["buffer_bytes"]
        assert (row["status"] == "pruned") == (too_big or no_fit)
    evaluated = {o["key"] for o in seen}
    assert evaluated == {k for k, r in rows.items() if r["status"] != "pruned"}
    assert any(r["status"] == "pruned" for r in rows.values()) and evaluated
    assert any("area" in (r["error"] or "") for r in rows.values() if r["status"] == "pruned")


def test_peak_power_constraint(tmp_path):
    points = enumerate_points(load_sweep(write_sweep(tmp_path)))
    powers = sorted(p["static"]["peak_power_W"] for p in points.points)
    assert powers[0] < powers[-1]          # grows with the array
    limit = (powers[0] + powers[-1]) / 2
    text = SMALL + f"constraints: {{peak_power_W: {limit}}}\n"
    pruned = [p for p in enumerate_points(load_sweep(write_sweep(tmp_path, text, "p.yaml"))).points if p["pruned"]]
    assert pruned and all(p["static"]["peak_power_W"] > limit for p in pruned)


def test_failing_point_does_not_stop_the_sweep(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    points.points[3]["fault"] = "raise"
    summary = run_sweep(sweep, tmp_path / "out", progress=False, points=points, point_function=FAULTY)
    rows = stored(tmp_path / "out")
    assert summary.failed == 1 and summary.evaluated == 12
    assert rows[points.points[3]["key"]]["error"].startswith("RuntimeError: injected failure")
    assert sum(r["status"] == "done" for r in rows.values()) == 11
    # a real point that cannot be mapped (an op no unit runs) is a failed point with the mapper's message
    text = SMALL.replace("variants: [fusemax-1pass]", "variants: [fusemax-1pass, split-kv-decode]")
    sweep = load_sweep(write_sweep(tmp_path, text, "v.yaml"))
    run_sweep(sweep, tmp_path / "v", progress=False)
    failed = [r for r in stored(tmp_path / "v").values() if r["status"] == "failed"]
    assert len(failed) == 12 and all("log" in r["error"] for r in failed)


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_sweep_resumes_with_every_point_once(tmp_path, jobs):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    points.points[7]["fault"] = "interrupt"
    executor = InProcessExecutor() if jobs == 1 else ProcessExecutor(jobs)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(sweep, tmp_path / "out", executor, chunk=1, progress=False, points=points,
                      point_function=FAULTY)
    finally:
        executor.close()
    first = stored(tmp_path / "out")
    assert 0 < len(first) < 12 and points.points[7]["key"] not in first
    status = sweep_status(tmp_path / "out")
    assert status["state"] == "stopped" and status["remaining"] == 12 - len(first)
    # resume with the normal evaluator: only the missing points run, and each point is stored once
    seen = []
    summary = run_sweep(sweep, tmp_path / "out", progress=False, on_outcome=seen.append)
    assert summary.already_stored == len(first) and summary.evaluated == 12 - len(first)
    assert {o["key"] for o in seen}.isdisjoint(first)
    final = stored(tmp_path / "out")
    assert sorted(final) == sorted(p["key"] for p in points.points)
    assert all(final[k]["run"] == first[k]["run"] for k in first)        # earlier results kept, not redone
    with sqlite3.connect(tmp_path / "out" / "sweep.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone() == (12, 12)
    assert sweep_status(tmp_path / "out")["state"] == "complete"


def test_killed_worker_fails_only_its_point(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    points.points[5]["fault"] = "die"
    executor = ProcessExecutor(2)
    try:
        summary = run_sweep(sweep, tmp_path / "out", executor, chunk=2, progress=False, points=points,
                            point_function=FAULTY)
    finally:
        executor.close()
    rows = stored(tmp_path / "out")
    assert len(rows) == 12 and summary.failed == 1
    assert rows[points.points[5]["key"]]["error"] == WORKER_DIED
    assert all(r["status"] == "done" for k, r in rows.items() if k != points.points[5]["key"])


def test_timeout_fails_the_point(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, SMALL + "timeout_s: 0.5\n"))
    points = enumerate_points(sweep)
    points.points[0]["fault"] = "sleep"
    run_sweep(sweep, tmp_path / "out", progress=False, points=points, point_function=FAULTY)
    rows = stored(tmp_path / "out")
    assert rows[points.points[0]["key"]]["error"].startswith("timed out after 0.5 s")
    assert sum(r["status"] == "done" for r in rows.values()) == 11


def test_pareto_mask_matches_brute_force():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(200, 3)).astype(float)
    mask = pareto_mask(values)
    for i, v in enumerate(values):
        dominated = any(np.all(w <= v) and np.any(w < v) for w in values)
        assert mask[i] == (not dominated)
    up = pareto_mask(-values, maximize=[True, True, True])
    assert (up == mask).all()


def test_report_from_store(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    run_sweep(sweep, tmp_path / "out", progress=False)
    written = write_report(tmp_path / "out")
    names = {p.name for p in written}
    assert {"results.csv", "results.json", "report.html", "pareto_bert-1K.png", "sensitivity_array.png"} <= names
    data = load_sweep_data(tmp_path / "out")
    front = pareto_front(data, "bert 1K")
    done = [r for r in data.done if r["workload"] == "bert 1K"]
    for r in done:   # nothing evaluated beats a front design in latency, energy and area at once
        for f in front:
            assert not (r["latency_s"] < f["latency_s"] and r["energy_J"] < f["energy_J"]
                        and r["area_mm2"] < f["area_mm2"])
    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(payload["rows"]) == 12 and all(r["mapping"] for r in payload["rows"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "data:image/png;base64" in html and "Pareto front" in html and "latency (s)" in html
    assert [r["key"] for r in payload["rows"]] == sorted(r["key"] for r in payload["rows"])


def test_cli_sweep_status_and_report(tmp_path, capsys):
    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "bert 1K: Pareto front" in text and "TOPS/W" in text
    assert main(["sweep", "--status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "complete" and status["done"] == 12
    (out / "report.html").unlink()
    assert main(["report", "sweep", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert main(["sweep", "--status", str(tmp_path / "nothing")]) == 2
    assert "no sweep results" in capsys.readouterr().err


SYNTH = """\
name: synth
arch: fpga-small
variants: [fusemax-1pass]
workloads: [{model: bert, seq_len: 1K}, {model: t5, seq_len: 1K}]
mapping: auto
parameters:
  - {name: array, paths: [array_2d.rows, array_2d.cols, array_1d.width], values: [ARRAYS]}
  - {path: rtl.max_keys, values: [256]}          # the preset's rtl: section lacks these two
  - {path: rtl.max_queries, values: [64]}
synth: {target: ecp5, max_pes: 16}
"""


def test_synth_skips_large_designs_and_archs_without_rtl(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, SYNTH.replace("ARRAYS", "8")))
    run_sweep(sweep, tmp_path / "out", progress=False)
    rows = stored(tmp_path / "out")
    assert {r["result"]["fpga_skipped"] for r in rows.values()} == {"64 2D PEs > synth.max_pes 16"}
    text = SMALL + "synth: {target: ecp5, max_pes: 100000}\n"
    run_sweep(load_sweep(write_sweep(tmp_path, text, "n.yaml")), tmp_path / "n", progress=False)
    assert {r["result"]["fpga_skipped"] for r in stored(tmp_path / "n").values()} == \
        {"the architecture has no rtl: section"}


SYNTH_CORE = f"""\
name: synth-core
arch: {Path(__file__).resolve().parents[2] / "examples" / "archs" / "rtl-4x4-int8.yaml"}
variants: [fusemax-1pass]
workloads: [{{model: {Path(__file__).resolve().parents[2] / "examples" / "workloads" / "rtl-small.yaml"}, seq_len: 64}},
            {{model: {Path(__file__).resolve().parents[2] / "examples" / "workloads" / "rtl-small.yaml"}, seq_len: 32}}]
mapping: auto
parameters:
  - {{path: clock_mhz, values: [60]}}        # the core derives from the whole file: vary what it does not fix
synth: {{target: ecp5, max_pes: 16}}
"""


@pytest.mark.slow
def test_synth_small_design_once_per_design(tmp_path):
    """A generated core's architecture file (complete: the cost model and the RTL read the same file),
    two workloads, one design: synthesized once."""
    sweep = load_sweep(write_sweep(tmp_path, SYNTH_CORE))
    run_sweep(sweep, tmp_path / "out", progress=False)
    rows = list(stored(tmp_path / "out").values())
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    fpga = [r["result"]["fpga"] for r in rows]
    assert fpga[0] == fpga[1]                       # one design, two workloads: the same synthesis
    assert fpga[0]["fits"] and fpga[0]["luts"] > 0 and fpga[0]["dsps"] > 0


def test_status_of_a_running_sweep(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    partial = enumerate_points(sweep)
    partial.points = points.points[:4]
    run_sweep(sweep, tmp_path / "out", progress=False, points=partial)
    with Store(tmp_path / "out") as store:       # a run that has started and not ended, in this process
        from einloom.sweep.runner import store_plan
        store_plan(store, sweep, points)
        run = store.begin_run("local", 8)
        status = sweep_status(tmp_path / "out")
        assert status["state"] == "running" and status["stored"] == 4 and status["remaining"] == 8
        with pytest.raises(SweepError, match="already running"):     # a second run on the same store
            run_sweep(sweep, tmp_path / "out", progress=False)
        store.end_run(run, "interrupted")
    assert sweep_status(tmp_path / "out")["state"] == "stopped"


def test_parquet_when_pyarrow_is_installed(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    sweep = load_sweep(write_sweep(tmp_path))
    run_sweep(sweep, tmp_path / "out", progress=False)
    from einloom.report.sweep import write_tables
    written = write_tables(load_sweep_data(tmp_path / "out"), tmp_path / "out")
    assert tmp_path / "out" / "results.parquet" in written
    table = pq.read_table(tmp_path / "out" / "results.parquet").to_pydict()
    rows = load_sweep_data(tmp_path / "out").rows
    assert table["key"] == [r["key"] for r in rows]
    assert table["latency_s"] == [r["latency_s"] for r in rows]


def test_shipped_array_buffer_sweep_runs_with_one_command(tmp_path, capsys):
    out = tmp_path / "ab"
    assert main(["sweep", "examples/sweeps/array-buffer.yaml", "-o", str(out), "--no-progress"]) == 0
    assert (out / "report.html").is_file() and (out / "figures" / "pareto_bert-4K.png").is_file()
    status = sweep_status(out)
    assert (status["planned"], status["pruned"], status["failed"], status["state"]) == (48, 10, 0, "complete")
    data = load_sweep_data(out)
    assert len(pareto_front(data, "bert 4K")) >= 5 and len(pareto_front(data, "llama3-8b 32K")) >= 5


@pytest.mark.slow
def test_shipped_variant_sweep_records_failures_and_goes_on(tmp_path):
    out = tmp_path / "vw"
    assert main(["sweep", "examples/sweeps/variants-workloads.yaml", "-o", str(out), "--jobs", "2",
                 "--no-progress"]) == 0
    data = load_sweep_data(out)
    assert len(data.rows) == 44
    by_variant = {}
    for r in data.rows:
        by_variant.setdefault(r["variant"], set()).add(r["status"])
    assert by_variant["fusemax-1pass"] == {"done"} and by_variant["split-kv-decode"] == {"failed"}
    assert (out / "figures" / "variant_workload.png").is_file()


def test_fusemax_area_sweep_matches_the_experiment(tmp_path):
    """examples/sweeps/fusemax-area.yaml evaluates the FuseMax experiment's area sweep as a sweep: the
    same latency and energy at each (configuration, array size), and the configurations' own archs."""
    from einloom.experiment import experiment_points, load_experiment, mapper_evaluate_point
    experiment = load_experiment("examples/experiments/fusemax-paper.yaml")
    expected = {(p.configuration.name, p.array_size): mapper_evaluate_point(p)
                for p in experiment_points(experiment)[1]}
    run_sweep(load_sweep("examples/sweeps/fusemax-area.yaml"), tmp_path / "out", progress=False)
    rows = {(r["variant"], r["PE_dim"]): r for r in load_sweep_data(tmp_path / "out").rows}
    assert set(rows) == set(expected) and len(rows) == 12
    for key, result in expected.items():
        assert rows[key]["latency_s"] == result["latency_s"]
        assert rows[key]["energy_J"] == pytest.approx(result["energy_pj"] * 1e-12, rel=1e-12)
    assert {r["design"].split("[")[0] for r in rows.values()} == {"flat-cloud", "fusemax-cloud"}


def test_simulation_per_point(tmp_path):
    """simulate: runs the cycle-level simulator on each point's schedule, next to the model; a sweep
    with and without it stores points under different keys."""
    text = SMALL.replace("values: [64, 128, 256]", "values: [128]").replace("values: [1MiB, 4MiB]", "values: [4MiB]")
    plain = enumerate_points(load_sweep(write_sweep(tmp_path, text, "plain.yaml")))
    sweep = load_sweep(write_sweep(tmp_path, text + "simulate: {instances: 2, slice: 3}\n"))
    assert sweep.simulate == {"instances": 2, "slice": 3}
    points = enumerate_points(sweep)
    assert not {p["key"] for p in points.points} & {p["key"] for p in plain.points}
    run_sweep(sweep, tmp_path / "out", progress=False, points=points)
    rows = [r for r in stored(tmp_path / "out").values() if r["status"] == "done"]
    assert len(rows) == 2
    for row in rows:
        result = row["result"] if isinstance(row["result"], dict) else json.loads(row["result"])
        sim = result["sim"]
        assert 0.95 <= sim["vs_model"] <= 1.1, sim
        assert sim["latency_s"] == pytest.approx(sim["vs_model"] * result["latency_s"])


def test_simulate_setting_is_checked(tmp_path):
    with pytest.raises(SweepError, match=r"simulate\.instances"):
        load_sweep(write_sweep(tmp_path, SMALL + "simulate: {instances: 0}\n"))
