"""The cycle-level simulator against the schedule and the analytical evaluator."""
import json

import numpy as np
import pytest

from einloom.cost_models import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import baseline_mapping
from einloom.mapper.evaluate import evaluate_schedule
from einloom.mapper.lower import lower
from einloom.sim.simulator import SimOptions, simulate


def _schedule(name, cascade, seq, batch=1):
    arch = load_arch("fusemax-cloud")
    wl = load_workload("bert").with_seq_len(seq).with_batch(batch)
    c = load_cascade(cascade)
    return lower(c, baseline_mapping(name, c, arch, wl), arch, wl)


@pytest.mark.parametrize("name,cascade", [("fusemax", "fusemax-1pass"), ("flat", "softmax-3pass"),
                                          ("unfused", "softmax-3pass")])
def test_energy_and_compute_match_evaluator(name, cascade):
    s = _schedule(name, cascade, 1024)
    ana = evaluate_schedule(s)
    sim = simulate(s, SimOptions(max_instances=4))
    # compute actions are counted per executed tile; they equal the evaluator's exactly
    for key, v in ana.energy_breakdown_pj.items():
        if key.startswith(("2d.", "1d.")):
            assert sim.energy_breakdown_pj[key] == pytest.approx(v, rel=1e-9), key
    if name == "fusemax":      # flat/unfused: bypassed and crossing tensors are counted differently (see report)
        assert sim.dram_bytes == pytest.approx(ana.dram_bytes, rel=1e-9)
        assert sim.energy_pj == pytest.approx(ana.energy_pj, rel=1e-9)
    assert sim.latency_cycles >= 0.9 * ana.latency_cycles


def test_instance_extrapolation_is_exact_when_periods_repeat():
    s = _schedule("flat", "softmax-3pass", 512, batch=1)
    full = simulate(s)
    part = simulate(s, SimOptions(max_instances=8))
    assert "exact: the steady periods repeat" in part.extrapolation    # first and last two are not steady
    assert part.latency_cycles == pytest.approx(full.latency_cycles, rel=1e-9)
    assert part.dram_bytes == pytest.approx(full.dram_bytes, rel=1e-9)


def test_trace_and_plot(tmp_path):
    from einloom.sim.output import chrome_trace, plot_utilization
    s = _schedule("fusemax", "fusemax-1pass", 512)
    r = simulate(s)
    trace = chrome_trace(r)
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert {"QK", "SLNV", "RNV"} <= names
    json.dumps(trace)
    png = plot_utilization(r, tmp_path / "u.png")
    assert png.stat().st_size > 1000


def test_cli_sim_json(capsys):
    from einloom.cli import main
    rc = main(["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "512",
               "--batch", "1", "--json", "--functional", "fp64"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["simulation"]["latency_cycles"] > 0
    assert out["functional"]["max_abs_error"] < 1e-9


@pytest.mark.parametrize("flags,needle", [
    (["--seq-len", "0"], "--seq-len"), (["--window", "-1"], "--window"), (["--instances", "0"], "--instances"),
    (["--slice", "0"], "--slice"), (["--batch", "0"], "--batch"), (["--dram-latency", "-5"], "--dram-latency"),
    (["--dram-latency", "inf"], "--dram-latency"), (["--functional", "int99"], "--functional"),
    (["--mapping", "no-such-mapping.yaml"], "no-such-mapping.yaml"), (["--serial-folds"], "--serial-folds")])
def test_cli_sim_bad_flags_one_line_exit_2(flags, needle, capsys):
    from einloom.cli import main
    try:
        rc = main(["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", *flags])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_steady_period_exact_on_a_settled_tail_or_an_alternation():
    """The instance period is exact when the steady periods end in a constant run of three (a
    pipeline that took a few instances to settle) or alternate between two values; otherwise it is
    approximate."""
    import numpy as np
    from einloom.sim.simulator import _steady_period
    settled = np.array([21476.0, 19810.8, 19736.3, 19808.0, 19808.0, 19808.0, 19808.0, 19773.5])
    assert _steady_period(settled) == (19808.0, True)
    alternating = np.array([500.0, 90.0, 110.0, 90.0, 110.0, 90.0, 110.0, 80.0])
    period, exact = _steady_period(alternating)
    assert exact and period == 100.0
    drifting = np.array([500.0, 100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 80.0])
    assert _steady_period(drifting)[1] is False
    assert _steady_period(np.array([500.0, 100.0, 100.0, 80.0]))[1] is False
