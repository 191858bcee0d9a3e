"""Analytical model vs cycle-level simulator: the agreement the cross-validation report states.

Every point lowers its cascade once and hands the same schedule to the evaluator and to the simulator
(``einloom.report.crossval.simulate_exact``: 8 instances and a slice of 5 iterations of the longest loop,
or the whole loop where that slice does not extrapolate exactly; the tests require exact extrapolation).

Default suite: BERT 1K at batch 64 (the issue's reference point) for Unfused, FLAT and FuseMax, and a fast
subset of the library variants at 4K, one per effect the model had to learn to price or the simulator to
stop inventing (masked tiles, buffer ports, DMA prefetch across instances, an Einsum placed before the
loop its consumer iterates).  Slow: Unfused, FLAT and FuseMax on BERT and XLM at 1K-64K, and every library
variant at 4K under its default mapping (parametrized over ``einsum/library``, so a new spec is checked
without editing this file).
"""
import pytest

from einloom.cost_models import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.einsum.loader import library_names
from einloom.mapper.baselines import baseline_mapping
from einloom.mapper.evaluate import evaluate_schedule
from einloom.mapper.lower import lower
from einloom.report.crossval import BASELINES, crossval_point, simulate_exact
from einloom.sim.simulator import simulate

TOL = 0.05
#: the model may be the pessimistic side by this much (its stated fill / first load / last drain)
PESSIMISM = 0.02
#: one variant per effect, fast enough for the default suite
FAST_VARIANTS = ("causal-1pass", "sliding-window", "softmax-2pass", "linear", "sigmoid")


def _pair(workload, seq, name, cascade, batch=None):
    arch = load_arch("fusemax-cloud")
    wl = load_workload(workload).with_seq_len(seq)
    if batch is not None:
        wl = wl.with_batch(batch)
    c = load_cascade(cascade)
    s = lower(c, baseline_mapping(name, c, arch, wl), arch, wl)
    return evaluate_schedule(s), simulate_exact(s)


def _check(ana, sim, tol):
    assert "approximate" not in sim.extrapolation
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=tol)
    assert sim.latency_cycles >= ana.latency_cycles * (1 - PESSIMISM)     # the model is never optimistic
    assert sim.dram_bytes == pytest.approx(ana.dram_bytes, rel=1e-6)
    # the same work over a longer run: utilization lower by the latency ratio
    assert sim.utilization["2d"] == pytest.approx(ana.util_2d, rel=tol + 0.01)
    assert sim.utilization["1d"] == pytest.approx(ana.util_1d, rel=tol + 0.01)


@pytest.mark.parametrize("name,cascade", BASELINES)
def test_bert_1k_batch64_within_half_a_percent(name, cascade):
    """The issue's reference point; before the DRAM prefetch and streamed rows the gaps were
    +17.3% (FuseMax), +5.0% (FLAT), +12.0% (Unfused)."""
    ana, sim = _pair("bert", 1024, name, cascade, batch=64)
    _check(ana, sim, 0.005)


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
    _check(ana, sim, TOL)


def _check_variant(cascade):
    row = crossval_point("bert", 4096, "default", cascade)
    assert row.simulated_cycles is not None, row.explanation           # every library variant maps
    assert row.extrapolation_exact, cascade
    assert abs(row.difference) <= TOL, (cascade, row.difference, row.explanation)
    assert row.difference >= -PESSIMISM, (cascade, row.difference)
    for ana, sim in (row.util_2d, row.util_1d):
        assert sim == pytest.approx(ana, rel=TOL + 0.01, abs=1e-3), (cascade, row.util_2d, row.util_1d)
    ana_bytes, sim_bytes = row.dram_bytes
    if row.masked:     # the simulator loads a K/V tile only for the tiles the mask leaves running
        assert sim_bytes <= ana_bytes * (1 + 1e-9)
    else:
        assert sim_bytes == pytest.approx(ana_bytes, rel=1e-6)
    assert row.explanation


@pytest.mark.parametrize("cascade", FAST_VARIANTS)
def test_variant_at_4k_within_5_percent(cascade):
    _check_variant(cascade)


@pytest.mark.slow
@pytest.mark.parametrize("cascade", [n for n in library_names() if n not in FAST_VARIANTS])
def test_every_library_variant_at_4k_within_5_percent(cascade):
    _check_variant(cascade)


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
