"""Dask executors: a LocalCluster on loopback gives the local executor's results bit for bit; without
dask installed the dask executors say what to install."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from einloom.cli import main
from einloom.sweep.errors import SweepError
from einloom.sweep.executors import DaskExecutor, ProcessExecutor, make_executor
from einloom.sweep.runner import run_sweep
from einloom.sweep.space import enumerate_points
from einloom.sweep.spec import load_sweep
from einloom.sweep.store import Store
from sweep_helpers import SMALL, write_sweep

HAVE_DASK = importlib.util.find_spec("distributed") is not None
FAULTY = "einloom.sweep.faults:faulty_point"
# one searched variant as well, so the search is checked for determinism across executors too
MIXED = SMALL.replace("variants: [fusemax-1pass]", "variants: [fusemax-1pass, causal-1pass]") \
    .replace("mapping: auto", "mapping: {auto: {objective: edp, max_families: 4}}") \
    .replace("values: [64, 128, 256]", "values: [64, 256]").replace("  - {model: t5, seq_len: 2K}\n", "")


def results(outdir) -> dict[str, tuple]:
    with Store(outdir) as store:
        return {r["key"]: (r["status"], r["result"], r["error"]) for r in store.rows()}


@pytest.fixture(scope="module")
def cluster_executor():
    if not HAVE_DASK:
        pytest.skip("dask[distributed] is not installed (pip install 'einloom[dask]')")
    executor = DaskExecutor(workers=2)
    yield executor
    executor.close()


def test_local_cluster_matches_local_executor(tmp_path, cluster_executor):
    sweep = load_sweep(write_sweep(tmp_path, MIXED))
    run_sweep(sweep, tmp_path / "inproc", progress=False)
    pool = ProcessExecutor(2)
    try:
        run_sweep(sweep, tmp_path / "pool", pool, progress=False)
    finally:
        pool.close()
    run_sweep(sweep, tmp_path / "dask", cluster_executor, chunk=1, progress=False)
    reference = results(tmp_path / "inproc")
    assert len(reference) == 8 and all(v[0] == "done" for v in reference.values())
    assert results(tmp_path / "pool") == reference
    assert results(tmp_path / "dask") == reference       # every float identical, every mapping identical
    from einloom.report.sweep import load_sweep_data, write_tables
    for d in ("inproc", "dask"):
        write_tables(load_sweep_data(tmp_path / d), tmp_path / d)
    assert (tmp_path / "inproc" / "results.csv").read_text() == (tmp_path / "dask" / "results.csv").read_text()


def test_local_cluster_failing_and_resumed_points(tmp_path, cluster_executor):
    sweep = load_sweep(write_sweep(tmp_path))
    points = enumerate_points(sweep)
    points.points[2]["fault"] = "raise"
    first = {p["key"] for p in points.points[:5]}
    partial = enumerate_points(sweep)
    partial.points = [p for p in points.points if p["key"] in first]     # a sweep stopped after 5 points
    run_sweep(sweep, tmp_path / "out", cluster_executor, progress=False, points=partial, point_function=FAULTY)
    assert len(results(tmp_path / "out")) == 5
    summary = run_sweep(sweep, tmp_path / "out", cluster_executor, progress=False, points=points,
                        point_function=FAULTY)
    assert summary.already_stored == 5 and summary.evaluated == 7
    final = results(tmp_path / "out")
    assert len(final) == 12
    assert [k for k, v in final.items() if v[0] == "failed"] == [points.points[2]["key"]]


def test_without_dask_the_executors_say_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)      # "import distributed" now raises ImportError
    with pytest.raises(SweepError, match=r"pip install 'einloom\[dask\]'"):
        make_executor("dask-local", workers=1)
    path = write_sweep(tmp_path)
    for argv in (["--executor", "dask-local", "--workers", "1"], ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"]):
        assert main(["sweep", str(path), *argv]) == 2
        err = capsys.readouterr().err
        assert "einloom[dask]" in err and len(err.strip().splitlines()) == 1


def test_cli_on_a_running_scheduler(tmp_path, cluster_executor, capsys):
    """--executor dask --scheduler ADDRESS: the CLI connects to an existing cluster (here the fixture's)."""
    address = cluster_executor._cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    path = write_sweep(tmp_path)
    assert main(["sweep", str(path), "-o", str(tmp_path / "d"), "--executor", "dask", "--scheduler", address,
                 "--no-report", "--no-progress", "--json"]) == 0
    assert '"executor": "dask"' in capsys.readouterr().out
    run_sweep(load_sweep(path), tmp_path / "local", progress=False)
    assert results(tmp_path / "d") == results(tmp_path / "local")
