"""Analytical model vs cycle-level simulator: the agreement the cross-validation report states.

Fast points (BERT 1K, batch 64, the issue's reference point) run in the default suite; the 1K-64K sweep
over BERT and XLM is marked slow.  Each simulated point uses 4 instances (extrapolation checked exact)
and, where a loop is long, 5 of its iterations (``slice_blocks=4``, also checked exact).
"""
import pytest

from einloom.cost_models import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import baseline_mapping
from einloom.mapper.evaluate import evaluate_schedule
from einloom.mapper.lower import lower
from einloom.sim.simulator import SimOptions, simulate

BASELINES = [("fusemax", "fusemax-1pass"), ("flat", "softmax-3pass"), ("unfused", "softmax-3pass")]
OPTIONS = SimOptions(max_instances=4, slice_blocks=4)

# Points where the simulator sees more than the model, with the measured excess and its cause
# (multi-pass groups whose spilled intermediates make passes 1 and 3 DRAM-bound while pass 2 is
# compute-bound: the model takes max(compute, DRAM) over the whole group, which assumes an even mix).
KNOWN_EXCESS = {("xlm", 65536, "flat"): 0.08, ("xlm", 65536, "unfused"): 0.10, ("bert", 65536, "unfused"): 0.11}


def _pair(workload, seq, name, cascade, batch=None):
    arch = load_arch("fusemax-cloud")
    wl = load_workload(workload).with_seq_len(seq)
    if batch is not None:
        wl = wl.with_batch(batch)
    c = load_cascade(cascade)
    s = lower(c, baseline_mapping(name, c, arch, wl), arch, wl)
    return evaluate_schedule(s), simulate(s, OPTIONS)


def _check(ana, sim, tol):
    assert "approximate" not in sim.extrapolation
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=tol)
    assert sim.latency_cycles >= ana.latency_cycles * (1 - 0.02)     # the model is the optimistic side
    assert sim.dram_bytes == pytest.approx(ana.dram_bytes, rel=1e-6)
    # the same work over a longer run: utilization lower by the latency ratio
    assert sim.utilization["2d"] == pytest.approx(ana.util_2d, rel=tol + 0.01)
    assert sim.utilization["1d"] == pytest.approx(ana.util_1d, rel=tol + 0.01)


@pytest.mark.parametrize("name,cascade", BASELINES)
def test_bert_1k_batch64_within_2_percent(name, cascade):
    """The issue's reference point; before the DRAM prefetch and streamed rows the gaps were
    +17.3% (FuseMax), +5.0% (FLAT), +12.0% (Unfused)."""
    ana, sim = _pair("bert", 1024, name, cascade, batch=64)
    _check(ana, sim, 0.02)


def test_fusemax_1k_is_exact_to_the_fill():
    ana, sim = _pair("bert", 1024, "fusemax", "fusemax-1pass", batch=64)
    assert abs(sim.latency_cycles - ana.latency_cycles) < 1000       # one instance's pipeline fill


def test_unfused_crossing_tensors_follow_the_schedule():
    """Which kernel-crossing intermediates stay in the buffer is a schedule fact both sides read."""
    arch = load_arch("fusemax-cloud")
    wl = load_workload("bert").with_seq_len(256).with_batch(1)
    c = load_cascade("softmax-3pass")
    s = lower(c, baseline_mapping("unfused", c, arch, wl), arch, wl)
    ana, sim = evaluate_schedule(s), simulate(s)
    assert sim.dram_bytes == pytest.approx(ana.dram_bytes, rel=1e-9)
    kept = [t.name for t in s.tensors.values() if t.kept_between_groups]
    if kept:      # a kept tensor moves no bytes through DRAM in the simulator
        assert all(op[1] not in kept for op in sim.trace if op[0] == "dram")


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["bert", "xlm"])
@pytest.mark.parametrize("seq", [1024, 4096, 16384, 65536])
@pytest.mark.parametrize("name,cascade", BASELINES)
def test_sweep_within_5_percent(workload, seq, name, cascade):
    ana, sim = _pair(workload, seq, name, cascade)
    _check(ana, sim, KNOWN_EXCESS.get((workload, seq, name), 0.05))


@pytest.mark.parametrize("name,cascade", BASELINES)
def test_batch1_dram_and_energy_equal_the_model(name, cascade):
    """FLAT at batch 1 bypasses the buffer for its output, whose M-split reduction sends every partial
    sum to DRAM and back (58.2 MB simulated vs 29.9 MB analytical before the simulator did so)."""
    arch = load_arch("fusemax-cloud")
    wl = load_workload("bert").with_seq_len(1024).with_batch(1)
    c = load_cascade(cascade)
    s = lower(c, baseline_mapping(name, c, arch, wl), arch, wl)
    ana, sim = evaluate_schedule(s), simulate(s)
    assert sim.dram_bytes == pytest.approx(ana.dram_bytes, rel=1e-9)
    assert sim.energy_pj == pytest.approx(ana.energy_pj, rel=1e-9)
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=0.05)
