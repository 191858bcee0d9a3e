"""The issue-15 library variants (alibi, prefix-lm, softcap, differential, relu-attention) in the simulator
and in number formats.

* the simulator runs each under its default mapping on fusemax-cloud (BERT, one batch) and agrees with
  the evaluator: the same executed points per Einsum (masked tiles skipped in both), the same energy,
  DRAM traffic, and latency within 3%;
* on the 4x4 test array with a hand-made FuseMax mapping the simulator issues a tile op exactly for the
  tiles prefix-lm's OR predicate (and alibi's causal one) leaves non-empty, counted by hand;
* the format interpreter runs each within the error bounds the library's other variants are held to
  (tests/sim/test_format_interpreter.py: fixed point's ``error_bound``, bf16 2**-7 of the output's
  range), with P = M, P < M and P > M; ``einloom sim --functional int8`` runs them end to end.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from einloom.cli import main
from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import default_mapping
from einloom.mapper.evaluate import evaluate_schedule
from einloom.mapper.lower import lower
from einloom.sim.simulator import simulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mapper"))
from test_format_interpreter import FORMATS, error_bound, format_error  # noqa: E402
from test_lowering import one_pass_mapping, tiny_workload  # noqa: E402
from test_masks import T, arch  # noqa: E402

NEW = ["alibi", "prefix-lm", "softcap", "differential", "relu-attention"]


def _sim_and_model(name: str, seq_len: int):
    cloud = load_arch("fusemax-cloud")
    workload = load_workload("bert").with_seq_len(seq_len).with_batch(1)
    mapping, _ = default_mapping(name, cloud, workload)
    schedule = lower(name, mapping, cloud, workload)
    return schedule, simulate(schedule), evaluate_schedule(schedule)


#: the library variant each new one extends (the same mask, or the same softmax)
BASE = {"alibi": "causal-1pass", "prefix-lm": "causal-1pass", "differential": "fusemax-1pass"}


#: measured simulator / model - 1 at 256 and 1K: differential -0.3%, +0.8%; softcap +0.4%, +0.2% (its
#: sigmoid runs on the 1D array: fusemax-cloud's 2D PEs have no divider, so it is 1D-bound);
#: relu-attention +1.7%, +3.5% (sigmoid, the library's other pointwise variant, is at +34%, +32%)
LATENCY_TOLERANCE = {"differential": 0.015, "softcap": 0.015, "relu-attention": 0.05}


@pytest.mark.parametrize("seq_len", [256, 1024])
@pytest.mark.parametrize("name", NEW)
def test_simulator_agrees_with_the_evaluator(name, seq_len):
    """Executed points, energy and DRAM bytes equal; latency as close as for the variant it extends
    (the masked 1-pass family differs by +10% at 1K in both, measured: the model's masked-tile
    overlap, helper crossval's subject) and within LATENCY_TOLERANCE for the others."""
    schedule, sim, ana = _sim_and_model(name, seq_len)
    for e, se in schedule.einsums.items():
        if se.cycles_per_point:
            assert sim.executed_points.get(e, 0.0) == pytest.approx(
                schedule.instances * se.points * se.executed_fraction), e
    assert sim.energy_pj == pytest.approx(ana.energy_pj, rel=1e-9)
    assert sim.dram_read_bytes + sim.dram_write_bytes == pytest.approx(ana.dram_bytes, rel=1e-9)
    ratio = sim.latency_cycles / ana.latency_cycles
    if name in BASE:
        _, base_sim, base_ana = _sim_and_model(BASE[name], seq_len)
        assert ratio == pytest.approx(base_sim.latency_cycles / base_ana.latency_cycles, abs=0.01)
    if name in LATENCY_TOLERANCE:
        assert ratio == pytest.approx(1.0, abs=LATENCY_TOLERANCE[name])


def _tiny_arch():
    """test_masks' 4x4 + 4-lane array with 16 banks, and a divider in the 2D PEs (softcap's sigmoid)."""
    tiny = arch(16)
    units = {**tiny.array_2d.units, "div": tiny.array_1d.units["div"]}
    return dataclasses.replace(tiny, array_2d=dataclasses.replace(tiny.array_2d, units=units))


def visible(name: str, m, p, M: int, P: int, prefix: int):
    pos = p + M - P
    return ((m < prefix) | (m <= pos)) if name == "prefix-lm" else (m <= pos)


@pytest.mark.parametrize("name,M,P,prefix", [("prefix-lm", 16, 16, 6), ("prefix-lm", 24, 12, 17),
                                             ("prefix-lm", 8, 16, 3), ("alibi", 24, 8, 0), ("softcap", 16, 16, 0)])
def test_sim_skips_exactly_the_empty_tiles(name, M, P, prefix):
    params = {"M0": T, "prefix": prefix} if name == "prefix-lm" else {"M0": T}
    mapping = one_pass_mapping(extra_2d=("BQK",), p_dram=P // T, params=params)
    sched = lower(load_cascade(name), mapping, _tiny_arch(), tiny_workload(P=P, M=M))
    m, p = np.meshgrid(np.arange(M), np.arange(P), indexing="ij")
    vis = visible(name, m, p, M, P, prefix)
    want = {(i, j) for i in range(-(-M // T)) for j in range(-(-P // T)) if vis[i * T:(i + 1) * T, j * T:(j + 1) * T].any()}
    assert sched.einsums["QK"].valid_points == int(vis.sum())
    sim = simulate(sched)
    for e in ("BQK", "QK", "SLN", "SLNV", "RM"):             # op tile index: (query tile, key tile)
        ran = [(t[3][1], t[3][0]) for t in sim.trace if t[1] == e]
        assert set(ran) == want and len(ran) == len(want), e
    ana = evaluate_schedule(sched)        # compute and register files equal (DRAM: the simulator's reuse)
    for key, v in ana.energy_breakdown_pj.items():
        if key.startswith(("2d.", "1d.", "rf_")):
            assert sim.energy_breakdown_pj[key] == pytest.approx(v, rel=1e-9), key


FORMAT_CASES = [("alibi", {"M0": 4}), ("alibi", {"M0": 4, "P": 24, "head": 3}), ("alibi", {"M0": 4, "P": 5}),
                ("prefix-lm", {"M0": 4, "prefix": 14}), ("prefix-lm", {"M0": 4, "P": 24, "prefix": 6}),
                ("softcap", {"M0": 4}), ("softcap", {"M0": 4, "cap": 1.5, "P": 20}),
                ("differential", {"M0": 4}), ("differential", {"M0": 4, "P": 3, "M": 17}),
                ("relu-attention", {}), ("relu-attention", {"P": 5, "M": 33})]


@pytest.mark.parametrize("fmt_name", list(FORMATS))
@pytest.mark.parametrize("name,extra", FORMAT_CASES,
                         ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in e.items())}" for n, e in FORMAT_CASES])
def test_within_the_format_error_of_float64(fmt_name, name, extra):
    fmt = FORMATS[fmt_name]()
    err, ref_max = format_error(name, extra, fmt)
    assert ref_max > 0.1
    bound = error_bound(fmt, ref_max) + _softcap_allowance(fmt, name, extra, ref_max)
    assert 0 < err <= bound, (err, bound)


def _softcap_allowance(fmt, name: str, extra: dict, vmax: float) -> float:
    """softcap's scores pass cap * tanh(s / cap) = cap * (2 sigmoid(2 s / cap) - 1): in fixed point the
    sigmoid is the format's own exp/add/reciprocal composition (error <= SIGMOID_MAX_ERR, the rtl lanes'
    unit), so a score moves by up to d = 2 cap SIGMOID_MAX_ERR and a softmax weight by a factor up to
    exp(2 d): the output by (exp(2 d) - 1) vmax more than the softmax family's bound."""
    if name != "softcap" or not hasattr(fmt, "p"):
        return 0.0
    from einloom.sim.formats.arith.fixed_fn import SIGMOID_MAX_ERR
    cap = float(extra["cap"]) if "cap" in extra else float(load_cascade("softcap").params["cap"].value)
    return (np.exp(2 * 2 * cap * SIGMOID_MAX_ERR) - 1) * vmax


@pytest.mark.parametrize("name", NEW)
def test_cli_sim_functional_int8(name, capsys):
    code = main(["sim", name, "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "256", "--batch", "1",
                 "--functional", "int8", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    # softcap: its fixed-point sigmoid (the lanes' composition, <= 7e-4) moves a score by up to
    # 2 * cap * 7e-4 = 0.07 at cap 50 (measured 0.025 here; the others < 0.02)
    limit = 0.04 if name == "softcap" else 0.02
    assert out["functional"]["outputs"] == 64 * 256 and out["functional"]["max_abs_error"] < limit
    assert out["simulation"]["latency_cycles"] == pytest.approx(out["analytical"]["latency_cycles"], rel=0.03)


@pytest.mark.parametrize("name", ["causal-1pass", "alibi", "prefix-lm", "sinks-window", "differential"])
def test_cli_sim_functional_fp64_tiles_masked_cascades(name, capsys):
    """The query tiles of the schedule keep their positions: a bottom-right mask gives, tile by tile,
    the whole run (it gave errors of 2.2 for causal-1pass and 4.0 for alibi when each query tile ran as
    a problem of its own, its diagonal moved)."""
    code = main(["sim", name, "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "1024", "--batch", "1",
                 "--functional", "fp64", "--json"])
    assert code == 0
    functional = json.loads(capsys.readouterr().out)["functional"]
    assert functional["tiles"] > 1 and "note" not in functional
    assert functional["max_abs_error"] < 1e-12


@pytest.mark.parametrize("name,seq,why", [("linear-causal", "256", "Einsum KV reduces or iterates over it"),
                                          ("lightning", "512", "M0, M1, P0 partition it")])
def test_cli_sim_functional_fp64_runs_a_recurrence_whole(name, seq, why, capsys):
    """The tiled rank M carries a recurrence: run whole, and the output says why (linear-causal reported
    an error of 4.6 when its token tiles ran as problems of their own; lightning stopped with an error
    about inconsistent rank sizes)."""
    code = main(["sim", name, "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", seq,
                 "--batch", "1", "--functional", "fp64"])
    out = capsys.readouterr().out
    assert code == 0 and "max |out - float64 interpreter| = 0 " in out
    assert f"(one whole run: rank M cannot be sliced: {why})" in out
