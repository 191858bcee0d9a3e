"""Masked cascades under a hand-made FuseMax-style mapping (tests/mapper/test_lowering.py's
``one_pass_mapping``: M0 = 4 keys on the rows, P on the columns, P tiles of 4 at the DRAM level, M1
interleaved) on the 4x4 test array: the simulator issues a tile op exactly for the tiles the mask
leaves non-empty (counted here by hand from the mask predicate), and agrees with the evaluator."""
import sys
from pathlib import Path

import numpy as np
import pytest

from einloom.einsum import load_cascade
from einloom.mapper.evaluate import evaluate_schedule
from einloom.mapper.lower import lower
from einloom.sim.simulator import simulate

from einloom.cost_models.arch import arch_from_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mapper"))
from test_lowering import one_pass_mapping, tiny_workload  # noqa: E402


def arch(banks: int = 1):
    """tests/mapper's small_arch(exp_2d=True) with a 1 MB buffer of ``banks`` 64-bit banks: with one bank
    (4 values a cycle) the 2D array waits on buffer ports, which the evaluator does not model."""
    return arch_from_dict({
        "name": "tiny", "clock_mhz": 1000, "technology_nm": 45, "data": {"format": "fp16", "bits": 16},
        "array_2d": {"rows": 4, "cols": 4, "units": {"mac": 1, "add": 1, "max": 1, "exp": {"as_mac": 6, "add": 1}},
                     "register_file": {"entries": 12, "bits": 16}},
        "array_1d": {"width": 4, "units": {"mac": 1, "add": 1, "max": 1, "exp": 1, "div": 1},
                     "register_file": {"entries": 12, "bits": 16}},
        "global_buffer": {"capacity_bytes": 1 << 20, "row_bits": 64, "banks": banks},
        "dram": {"bandwidth_GBps": 10.0}})

T = 4      # key tile (M0, the rows) and query tile (P per DRAM iteration)


def visible(name, m, p, M, P, params):
    off = M - P
    if name == "causal-1pass":
        return m <= p + off
    if name == "sliding-window":
        return (m <= p + off) & (p + off - m < params["window"])
    return (m <= p + off) & ((m < params["sinks"]) | (p + off - m < params["window"]))


def nonempty_tiles(name, M, P, params):
    """(key tile, query tile) pairs holding a visible pair, from the mask predicate."""
    m, p = np.meshgrid(np.arange(M), np.arange(P), indexing="ij")
    vis = visible(name, m, p, M, P, params)
    return {(i, j) for i in range(-(-M // T)) for j in range(-(-P // T))
            if vis[i * T:(i + 1) * T, j * T:(j + 1) * T].any()}


CASES = [("causal-1pass", 16, 16, {}), ("causal-1pass", 24, 8, {}), ("causal-1pass", 8, 16, {}),
         ("sliding-window", 16, 16, {"window": 6}), ("sliding-window", 24, 12, {"window": 5}),
         ("sinks-window", 16, 16, {"window": 5, "sinks": 2}), ("sinks-window", 32, 16, {"window": 6, "sinks": 4})]


@pytest.mark.parametrize("name,M,P,params", CASES, ids=[f"{c[0]}-M{c[1]}-P{c[2]}" for c in CASES])
def test_sim_skips_exactly_the_empty_tiles_and_agrees(name, M, P, params):
    cascade = load_cascade(name)
    mapping = one_pass_mapping(extra_2d=("BQK",), p_dram=P // T, params={"M0": T, **params})
    sched = lower(cascade, mapping, arch(16), tiny_workload(P=P, M=M))
    want = nonempty_tiles(name, M, P, params)
    tiles = sched.einsums["QK"].tiles
    assert tiles.tiles - tiles.empty == len(want)          # the schedule's count is the hand count
    sim = simulate(sched)
    # the loop nest is P (DRAM) then M1: an op's tile index is (query tile, key tile)
    ran = {(t[3][1], t[3][0]) for t in sim.trace if t[1] == "QK"}
    assert ran == want
    assert sum(1 for t in sim.trace if t[1] == "QK") == len(want)
    for e in ("BQK", "SLN", "SLNV", "RM"):                  # the whole masked group skips the same tiles
        assert {(t[3][1], t[3][0]) for t in sim.trace if t[1] == e} == want, e
    ana = evaluate_schedule(sched)
    for e, se in sched.einsums.items():
        if se.cycles_per_point:
            assert sim.executed_points.get(e, 0.0) == pytest.approx(se.points * se.executed_fraction), e
    # DRAM: the simulator loads a K/V tile only for a non-empty tile whose key index changed (Timeloop's
    # reuse rule over the tiles that run), Q only for a query tile with a non-empty tile; the evaluator
    # moves K and V once per non-empty (key, query) DRAM tile and Q once per query tile, so it can only
    # miss the simulator's reuse of the same key tile across two query tiles
    assert sim.dram_read_bytes == pytest.approx(TILE_BYTES * _hand_loads(want, M, P))
    assert sim.dram_write_bytes == pytest.approx(ana.to_dict()["dram_write_bytes"])
    assert ana.to_dict()["dram_read_bytes"] == pytest.approx(TILE_BYTES * (P // T + 2 * len(want)))
    assert sim.dram_read_bytes <= ana.to_dict()["dram_read_bytes"]
    # everything but the DRAM fills equals the evaluator's: compute, register files, buffer reads
    fills = (ana.to_dict()["dram_read_bytes"] - sim.dram_read_bytes) / 2        # values (fp16)
    assert sim.actions["global_buffer.write_values"] == pytest.approx(ana.actions["global_buffer.write_values"] - fills)
    for key in ("global_buffer.read_values", "2d.register_file.read", "2d.register_file.write",
                "1d.register_file.read", "1d.register_file.write"):
        assert sim.actions[key] == pytest.approx(ana.actions[key], rel=1e-9), key
    for key, v in ana.energy_breakdown_pj.items():
        if key.startswith(("2d.", "1d.", "rf_")):
            assert sim.energy_breakdown_pj[key] == pytest.approx(v, rel=1e-9), key


TILE_BYTES = T * 4 * 2          # a 4-wide (E or F) x 4-key (or query) tile of fp16


def _hand_loads(nonempty, M, P):
    """Q, K and V tile loads in the loop order P (outer) then M1 over the non-empty tiles."""
    loads, last_key = 0, None
    for j in range(-(-P // T)):
        run = [i for i in range(-(-M // T)) if (i, j) in nonempty]
        loads += 1 if run else 0                       # Q tile of this query tile
        for i in run:
            if i != last_key:
                loads += 2                             # K and V tiles
                last_key = i
    return loads


def _pair(name, M, P, params):
    mapping = one_pass_mapping(extra_2d=("BQK",), p_dram=P // T, params={"M0": T, **params})
    sched = lower(load_cascade(name), mapping, arch(16), tiny_workload(P=P, M=M))
    return simulate(sched), evaluate_schedule(sched)


@pytest.mark.parametrize("name,M,P,params", [
    ("causal-1pass", 64, 64, {}), ("causal-1pass", 128, 32, {}), ("sliding-window", 64, 64, {"window": 20}),
    ("sinks-window", 64, 64, {"window": 20, "sinks": 4})])
def test_latency_within_5_percent(name, M, P, params):
    """Measured: +1.46%, +0.44%, +1.50%, +1.25% (the first tiles' loads and the 1D array's wait for the
    running max of so few tiles; at 16 x 16 the fill makes it +3.9..+5.9%)."""
    sim, ana = _pair(name, M, P, params)
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=0.05)
    assert sim.stalls["2d"]["ports"] == 0


@pytest.mark.parametrize("name,params", [("causal-1pass", {}), ("sinks-window", {"window": 20, "sinks": 4})])
def test_one_bank_buffer_ports_priced_on_both_sides(name, params):
    """With one 64-bit bank the buffer delivers 4 values a cycle: the 2D array waits on its ports in the
    simulator, and the evaluator prices the same limit (max(compute, deliveries / port width)); before it
    did, the simulator ran +19..27% over it.  Measured: +1.21%, +1.06%."""
    mapping = one_pass_mapping(extra_2d=("BQK",), p_dram=64 // T, params={"M0": T, **params})
    sched = lower(load_cascade(name), mapping, arch(1), tiny_workload(P=64, M=64))
    sim, ana = simulate(sched), evaluate_schedule(sched)
    assert sim.stalls["2d"]["ports"] > 0.1 * sim.latency_cycles
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=0.05)
    assert sim.latency_cycles >= ana.latency_cycles


@pytest.mark.parametrize("name,params", [("sliding-window", {"window": 20}),
                                         ("sinks-window", {"window": 20, "sinks": 4})])
def test_window_dram_follows_the_tiles_that_run(name, params):
    """At 128 x 128 a window leaves most tiles empty: the simulator and the evaluator both move only
    the tiles that run (the evaluator: K and V once per non-empty tile), within the simulator's reuse
    of a key tile across consecutive query tiles (measured: 12,288 vs 12,352 B; 13,952 vs 14,016 B),
    and agree on latency (measured: simulator +1.17% and +0.97%; +7.2% and +1.6% before empty tiles
    stopped taking issue-window slots)."""
    sim, ana = _pair(name, 128, 128, params)
    dense = TILE_BYTES * (128 // T) * (1 + 2 * (128 // T))
    assert ana.dram_read_bytes < 0.6 * dense
    assert sim.dram_read_bytes <= ana.dram_read_bytes <= 1.05 * sim.dram_read_bytes
    assert sim.latency_cycles == pytest.approx(ana.latency_cycles, rel=0.1)
