"""Baseline mappings on the FuseMax/FLAT presets, and the search against them."""
from __future__ import annotations

import pytest

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import evaluate_linear_layers, flat_mapping, fusemax_mapping, unfused_mapping
from einloom.mapper.evaluate import evaluate, evaluate_end_to_end
from einloom.mapper.search import search

from mapper_helpers import qk_view, small_arch


@pytest.fixture(scope="module")
def setup():
    return (load_arch("fusemax-cloud"), load_arch("flat-cloud"), load_cascade("fusemax-1pass"),
            load_cascade("softmax-3pass"))


def test_fusemax_binding_balances_the_arrays(setup):
    fm, _, one_pass, _ = setup
    w = load_workload("bert").with_seq_len(1024)
    ev = evaluate(one_pass, fusemax_mapping(fm, w, one_pass), fm, w)
    E = F = 64
    M1 = 1024 // 256
    c = lambda op: fm.op_cost("1d", op).cycles                    # noqa: E731
    per_iter_1d = c("max") + c("exp") + c("mul") + c("add") + F * c("mul") + F * c("add")
    tile_1d = M1 * per_iter_1d + F * c("div")                     # RM PRM SPD RD SPNV RNV + final AV
    assert ev.util_1d == pytest.approx(1.0, rel=1e-3)          # (one epoch of fill)
    assert ev.per_einsum_activity_2d["QK"] == pytest.approx(M1 * E / tile_1d, rel=1e-3)
    # traffic: Q, K, V read once, AV written once
    assert ev.dram_bytes == 4 * 64 * 12 * 1024 * 64 * 2
    assert set(ev.per_einsum_activity_2d) == {"QK", "LM", "SLN", "SLD", "SLNV"}


def test_fusemax_long_sequence_keeps_2d_busy_and_buffer_constant(setup):
    fm, _, one_pass, _ = setup
    w = load_workload("bert").with_seq_len(1 << 16)
    m = fusemax_mapping(fm, w, one_pass)
    ev = evaluate(one_pass, m, fm, w)
    assert ev.util_2d > 0.98
    w2 = load_workload("bert").with_seq_len(1 << 20)
    m2 = fusemax_mapping(fm, w2, one_pass)
    assert m2.tiling["P"]["GLB"] == m.tiling["P"]["GLB"]          # P1 does not depend on the length
    assert evaluate(one_pass, m2, fm, w2).buffer["used_bytes"] == pytest.approx(ev.buffer["used_bytes"])


def test_flat_spatial_use_is_e_over_columns(setup):
    _, fl, _, three_pass = setup
    for model, util in (("bert", 0.125), ("xlm", 0.25)):
        w = load_workload(model).with_seq_len(4096)
        ev = evaluate(three_pass, flat_mapping(fl, w, three_pass), fl, w)
        assert ev.util_2d == pytest.approx(util, rel=1e-3)
        assert ev.util_1d == pytest.approx(1.0, rel=1e-3)


def test_flat_spills_at_long_sequences(setup):
    _, fl, _, three_pass = setup
    w = load_workload("bert").with_seq_len(1 << 20)
    m = flat_mapping(fl, w, three_pass)
    assert m.spill == ("QK", "SN")
    short = flat_mapping(fl, load_workload("bert").with_seq_len(1024), three_pass)
    assert short.spill == ()


def test_unfused_is_three_kernels_passing_qk_and_a_through_dram(setup):
    _, fl, _, three_pass = setup
    short = load_workload("bert").with_seq_len(1024)
    mapping = unfused_mapping(fl, short, three_pass)
    assert [g.einsums for g in mapping.groups] == [("QK",), ("GM", "SN", "SD", "A"), ("AV",)]
    ev = evaluate(three_pass, mapping, fl, short)
    av = 64 * 12 * 1024 * 64 * 2
    qk = 64 * 12 * 1024 * 1024 * 2
    assert ev.dram_write_bytes == av + 2 * qk                 # AV, and QK and A between the kernels
    assert ev.dram_read_bytes >= 3 * av + 3 * qk              # Q, K, V; QK by GM and SN, A by AV
    edge = evaluate(three_pass, unfused_mapping(fl, load_workload("bert").with_seq_len(1 << 16), three_pass), fl,
                    load_workload("bert").with_seq_len(1 << 16))
    assert edge.buffer["tensors"]["SN"] == 256 * (1 << 16) * 2 == edge.buffer["capacity_bytes"]   # just fits
    long = load_workload("bert").with_seq_len(1 << 18)          # 256 rows of SN: 128 MiB, spilled
    ev = evaluate(three_pass, unfused_mapping(fl, long, three_pass), fl, long)
    fused = evaluate(three_pass, flat_mapping(fl, long, three_pass), fl, long)
    qk = 64 * 12 * (1 << 36) * 2
    assert ev.dram_write_bytes >= 3 * qk                      # QK, SN, A written
    assert ev.latency_s > fused.latency_s


def test_linear_layers_are_compute_bound(setup):
    fm, _, one_pass, _ = setup
    w = load_workload("bert").with_seq_len(1024)
    lin = evaluate_linear_layers(fm, w)
    macs = 64 * 1024 * (4 * 768 * 768 + 2 * 768 * 3072)
    # compute-bound: MACs / PEs, plus the first tile's load and the last tile's drain, which nothing
    # overlaps (each layer is its own kernel)
    exposed = sum(e.exposed_io_cycles for e in lin.values()) / 940e6
    assert all(e.exposed_io_cycles > 0 for e in lin.values())
    assert sum(e.latency_s for e in lin.values()) == pytest.approx(macs / 65536 / 940e6 + exposed, rel=1e-3)
    e2e = evaluate_end_to_end(one_pass, fusemax_mapping(fm, w, one_pass), fm, w)
    assert e2e.latency_s == pytest.approx(e2e.attention.latency_s + sum(e.latency_s for e in lin.values()))
    assert set(e2e.to_dict()) >= {"latency_s", "energy_pj", "energy_breakdown_pj"}


def test_api_keys(setup):
    fm, _, one_pass, _ = setup
    w = load_workload("t5").with_seq_len(1024)
    d = evaluate(one_pass, fusemax_mapping(fm, w, one_pass), fm, w).to_dict()
    for key in ("latency_s", "energy_pj", "util_2d", "util_1d", "dram_bytes", "energy_breakdown_pj", "actions",
                "per_einsum_activity_2d", "area_um2"):
        assert key in d
    assert d["area_um2"] == pytest.approx(fm.area_report().total_um2)


@pytest.mark.parametrize("model,n", [("bert", 1024), ("xlm", 2048)])
def test_search_at_least_as_good_as_fusemax(setup, model, n):
    fm, _, one_pass, _ = setup
    w = load_workload(model).with_seq_len(n)
    base = evaluate(one_pass, fusemax_mapping(fm, w, one_pass), fm, w)
    result = search(one_pass, fm, w, objective="latency")
    assert result.best.latency_s <= base.latency_s * (1 + 1e-9)
    assert result.evaluated > 0 and result.families > 0
    again = evaluate(one_pass, result.best_mapping, fm, w)       # the found mapping stands on its own
    assert again.latency_s == pytest.approx(result.best.latency_s)


def test_search_on_small_stand_in():
    from einloom.mapper.mapping import FusionGroup, Mapping
    view = qk_view(P=16, M=16, E=4, with_max=True)
    arch = small_arch(glb_bytes=1 << 16, dram_gbps=1000)
    hand = Mapping(name="hand", binding={"QK": "2d", "LM": "1d"},
                   spatial={"2d": {"rows": ("E",), "cols": ("P",)}, "1d": {"lanes": ("M",)}},
                   groups=(FusionGroup(("all",), "interleave"),))
    base = evaluate(view, hand, arch)
    result = search(view, arch, None, objective="latency")
    assert result.best.latency_cycles <= base.latency_cycles
    edp = search(view, arch, None, objective="edp")
    assert edp.best.latency_cycles * edp.best.energy_pj <= result.best.latency_cycles * result.best.energy_pj * (1 + 1e-9)


@pytest.mark.parametrize("objective", ["energy", "edp"])
def test_energy_and_edp_search_at_least_as_good_as_fusemax(setup, objective):
    fm, _, one_pass, _ = setup
    w = load_workload("bert").with_seq_len(1024)
    base = evaluate(one_pass, fusemax_mapping(fm, w, one_pass), fm, w)
    result = search(one_pass, fm, w, objective=objective)

    def metric(e):
        return e.energy_pj if objective == "energy" else e.energy_pj * e.latency_s
    assert metric(result.best) <= metric(base) * (1 + 1e-9)


def test_cross_array_floor_is_a_lower_bound(setup):
    """The screening's energy floor (ops + intermediates crossing arrays through the buffer) never
    exceeds what the evaluator charges a mapping of that binding."""
    import itertools
    import numpy as np
    from einloom.mapper.evaluate import _hardware, _view_for
    from einloom.mapper.search import _cross_array_floor
    fm, _, one_pass, _ = setup
    w = load_workload("bert").with_seq_len(4096)
    mapping = fusemax_mapping(fm, w, one_pass)
    view = _view_for(one_pass, mapping, w, None)
    hw = _hardware(fm)
    names = [e.name for e in view.compute_einsums if e.name != "AV"]      # AV (divide) only runs on 1D
    masks = np.array([[1.0 if mapping.binding[n] == "2d" else 0.0 for n in names]])
    both = [view.einsum(n) for n in names]
    cross = float(_cross_array_floor(hw, view, both, {"AV": "1d"}, masks)[0]) * 64 * 12
    ev = evaluate(one_pass, mapping, fm, w)
    assert 0 < cross <= ev.energy_breakdown_pj["global_buffer"]
    none_cross = _cross_array_floor(hw, view, both, {"AV": "1d"}, np.zeros((1, len(names))))
    assert none_cross[0] == pytest.approx(0.0)          # all on 1D: nothing crosses (AV reads 1D results)


def _renamed(library_name: str):
    """The library cascade with every tensor renamed T0, T1, ... (roles must come from structure)."""
    import re
    from einloom.einsum import parse_cascade_text
    from einloom.einsum.loader import LIBRARY_DIR
    cascade = load_cascade(library_name)
    names = dict.fromkeys([e.name for e in cascade.einsums] + list(cascade.inputs) + list(cascade.outputs))
    new = {n: f"T{i}" for i, n in enumerate(names)}
    text = (LIBRARY_DIR / f"{library_name}.yaml").read_text()
    text = re.sub(r"\b(" + "|".join(sorted(new, key=len, reverse=True)) + r")\b(?=\s*[\[:,\]])",
                  lambda m: new[m.group(1)], text)
    return parse_cascade_text(text.replace(f"name: {library_name}", "name: renamed"))


@pytest.mark.parametrize("builder,name", [(fusemax_mapping, "fusemax-1pass"), (flat_mapping, "softmax-3pass"),
                                          (unfused_mapping, "softmax-3pass")])
def test_baselines_found_by_role_not_by_name(setup, builder, name):
    """Renaming every tensor changes nothing: the baselines find the score product, row max, exponent
    and value product from the cascade's structure."""
    fm = setup[0]
    w = load_workload("bert").with_seq_len(4096)
    original, renamed = load_cascade(name), _renamed(name)
    a, b = builder(fm, w, original), builder(fm, w, renamed)
    assert "QK" not in b.binding and len(b.binding) == len(a.binding)
    ea, eb = evaluate(original, a, fm, w), evaluate(renamed, b, fm, w)
    assert eb.latency_s == pytest.approx(ea.latency_s, rel=1e-12)
    assert eb.energy_pj == pytest.approx(ea.energy_pj, rel=1e-12)
    assert eb.dram_bytes == ea.dram_bytes


def test_fusemax_is_the_artifacts_mapping_for_the_library_cascade(setup):
    """The role-based builder reproduces FuseMax's binding and spatial mapping of fusemax-1pass."""
    fm, _, one_pass, _ = setup
    m = fusemax_mapping(fm, load_workload("bert").with_seq_len(4096), one_pass)
    assert {e for e, a in m.binding.items() if a == "2d"} == {"QK", "LM", "SLN", "SLD", "SLNV"}
    assert {e for e, a in m.binding.items() if a == "1d"} == {"RM", "PRM", "SPD", "SPNV", "RD", "RNV", "AV"}
    assert m.spatial == {"2d": {"rows": ("M0",), "cols": ("P",)}, "1d": {"lanes": ("P",)}}
    assert not m.spatial_overrides and m.loop_order["PE"] == ("E", "F") and m.params == {"M0": 256}
