"""The schedule IR: validation at the door, instances, masks (hand-counted tiles), JSON and printing."""
from __future__ import annotations

import json

import pytest

from einloom.cost_models.workload import Workload, load_workload
from einloom.einsum import CascadeBuilder, load_cascade
from einloom.einsum.errors import MappingError, WorkloadError
from einloom.mapper.evaluate import evaluate, evaluate_schedule
from einloom.mapper.lower import instances_for, lower
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.mapper.masks import TileCounts

from mapper_helpers import small_arch

ONE_PASS_2D = ("QK", "LM", "SLN", "SLD", "SLNV")
ONE_PASS_1D = ("RM", "PRM", "SPD", "SPNV", "RD", "RNV", "AV")


def one_pass_mapping(extra_2d: tuple[str, ...] = (), p_dram: int = 4, **changes) -> Mapping:
    """FuseMax-style mapping on the 4x4 + 4-lane test array: M0 = 4 keys on the rows, P on the columns."""
    m = Mapping(name="hand", params={"M0": 4},
                binding={**{e: "2d" for e in ONE_PASS_2D + extra_2d}, **{e: "1d" for e in ONE_PASS_1D}},
                spatial={"2d": {"rows": ("M0",), "cols": ("P",)}, "1d": {"lanes": ("P",)}},
                tiling={"M0": {"spatial": 4}, "P": {"DRAM": p_dram, "spatial": 4}},
                loop_order={"DRAM": ("P", "M1"), "PE": ("E", "F")},
                groups=(FusionGroup(("all",), "interleave", "M1"),))
    return m.replace(**changes) if changes else m


def tiny_workload(P: int = 16, M: int = 16, heads: int = 1, kv_heads: int | None = None, batch: int = 1) -> Workload:
    return Workload(name="tiny", batch=batch, heads=heads, kv_heads=kv_heads or heads, head_dim_e=4,
                    head_dim_f=4, model_dim=4 * heads, ffn_dim=16, seq_len_q=P, seq_len_kv=M)


def test_causal_tiles_counted_by_hand():
    """P = M = 16, 4 x 4 tiles: 6 tiles above the diagonal are empty (skipped), 4 on it partial, 6 full."""
    causal = load_cascade("causal-1pass")
    sched = lower(causal, one_pass_mapping(extra_2d=("BQK",)), small_arch(exp_2d=True, glb_bytes=1 << 20),
                  tiny_workload())
    qk = sched.einsums["QK"]
    assert qk.tiles == TileCounts((4, 4), 16, 6, 6, 4, 10 / 16)
    assert qk.valid_points == 16 * 17 // 2
    assert qk.executed_fraction == pytest.approx(10 / 16)
    # the whole fused group around the mask skips the same tiles: the score product feeding it, the
    # exponent and value product after it, and the 1D array's per-row bookkeeping of each key tile
    for name in ("BQK", "LM", "SLN", "SLD", "SLNV", "RM", "PRM", "RD", "RNV"):
        assert sched.einsums[name].masked_by == "QK", name
        assert sched.einsums[name].executed_fraction == pytest.approx(10 / 16), name
    assert sched.einsums["AV"].masked_by is None          # the final division runs once per query
    dense = evaluate(load_cascade("fusemax-1pass"), one_pass_mapping(), small_arch(exp_2d=True, glb_bytes=1 << 20),
                     tiny_workload())
    ev = evaluate_schedule(sched)
    assert ev.per_einsum_cycles["SLNV"] == pytest.approx(dense.per_einsum_cycles["SLNV"] * 10 / 16)
    assert ev.macs == pytest.approx(dense.macs * 10 / 16)
    assert ev.dense_macs == pytest.approx(dense.macs)


def test_decode_and_ragged_masks():
    causal = load_cascade("causal-1pass")
    arch = small_arch(exp_2d=True, glb_bytes=1 << 20)
    # decode (P = 1): bottom-right alignment, the one query sees all 16 keys: nothing to skip
    sched = lower(causal, one_pass_mapping(extra_2d=("BQK",), p_dram=1), arch, tiny_workload(P=1))
    assert sched.einsums["QK"].valid_points == 16
    assert sched.einsums["QK"].tiles.empty == 0
    # 6 queries, 18 keys (ragged: 5 key tiles of 4, 2 query tiles): query p sees keys m <= p + 12
    sched = lower(causal, one_pass_mapping(extra_2d=("BQK",), p_dram=2), arch, tiny_workload(P=6, M=18))
    assert sched.einsums["QK"].valid_points == sum(p + 13 for p in range(6))
    t = sched.einsums["QK"].tiles
    assert (t.tiles, t.empty) == (10, 1)      # key tile 16..19 is beyond query tile 0's reach (p + 12 <= 15)


def test_instances_come_from_the_ranks_the_cascade_does_not_iterate():
    llama = load_workload("llama3-8b")             # B = 1, H = 32 = J 8 x G 4
    assert instances_for(load_cascade("fusemax-1pass"), llama)[0] == 32
    assert instances_for(load_cascade("gqa"), llama)[0] == 1          # J and G are the cascade's own ranks
    assert instances_for(load_cascade("mla-absorbed"), llama)[0] == 1  # H is the cascade's own rank
    bert = load_workload("bert")
    assert instances_for(load_cascade("fusemax-1pass"), bert)[0] == 64 * 12


def test_gqa_with_one_query_head_per_kv_head_costs_as_mha():
    arch = small_arch(exp_2d=True, glb_bytes=1 << 20)
    mha = evaluate(load_cascade("fusemax-1pass"), one_pass_mapping(), arch, tiny_workload(heads=4, batch=2))
    gqa_mapping = one_pass_mapping(loop_order={"DRAM": ("J", "G", "P", "M1"), "PE": ("E", "F")})
    gqa = evaluate(load_cascade("gqa"), gqa_mapping, arch, tiny_workload(heads=4, kv_heads=4, batch=2))
    assert gqa.instances == 2 and mha.instances == 8
    assert gqa.latency_cycles == pytest.approx(mha.latency_cycles)
    assert gqa.energy_pj == pytest.approx(mha.energy_pj)
    assert gqa.macs == pytest.approx(mha.macs)
    # 4 query heads sharing 1 KV head: the same MACs as 4 heads (not 4 x 4)
    # (with G inside the buffer, each key tile serves the group's 4 query heads: K, V read once per KV head)
    shared = one_pass_mapping(loop_order={"DRAM": ("J", "P", "M1"), "GLB": ("G",), "PE": ("E", "F")})
    grouped = evaluate(load_cascade("gqa"), shared, arch, tiny_workload(heads=4, kv_heads=1, batch=2))
    ungrouped = evaluate(load_cascade("gqa"), shared, arch, tiny_workload(heads=4, kv_heads=4, batch=2))
    assert grouped.macs == pytest.approx(mha.macs) == pytest.approx(ungrouped.macs)
    # 3 fewer KV heads x batch 2 x (K and V: 2 x 4 x 16 values) x 4 query tiles (P re-reads) x 2 B
    assert ungrouped.dram_read_bytes - grouped.dram_read_bytes == pytest.approx(3 * 2 * 128 * 4 * 2)


def gemm(m: int = 8, k: int = 8, n: int = 4):
    b = CascadeBuilder("gemm", source="test")
    b.input("X", "K", "M").input("W", "K", "N").output("Z", "M", "N")
    b.einsum("Z[m, n] = X[k, m] * W[k, n]")
    return b.build(), {"M": m, "K": k, "N": n}


def test_spatial_factor_without_a_user_is_an_error():
    """The accounting hole: K on the idle 1D lanes would make the GEMM's accumulation free."""
    cascade, sizes = gemm()
    hole = Mapping(name="hole", binding={"Z": "2d"},
                   spatial={"2d": {"rows": ("M",), "cols": ("N",)}, "1d": {"lanes": ("K",)}},
                   tiling={"K": {"spatial": 4}})
    with pytest.raises(MappingError, match=r"rank K is spread over 1d lanes, but no Einsum bound to the 1d array"):
        lower(cascade, hole, small_arch(), sizes=sizes)
    loose = Mapping(name="loose", binding={"Z": "2d"}, spatial={"2d": {"rows": ("M",), "cols": ("N",)}},
                    tiling={"K": {"spatial": 4}})
    with pytest.raises(MappingError, match="no array dimension carries K"):
        lower(cascade, loose, small_arch(), sizes=sizes)


def test_gemm_register_file_accesses_by_hand():
    """Z[m,n] = X[k,m] W[k,n], M = K = 8, N = 4 on 4x4: output-stationary vs K spread over the rows."""
    cascade, sizes = gemm()
    arch = small_arch(dram_gbps=1000)
    # output stationary: M on the rows, N on the columns, K temporal in each PE: every MAC reads and
    # writes its accumulator in the register file (256 MACs)
    os_ = Mapping(name="os", binding={"Z": "2d"}, spatial={"2d": {"rows": ("M",), "cols": ("N",)}},
                  tiling={"M": {"DRAM": 2, "spatial": 4}, "K": {"PE": 8}}, loop_order={"DRAM": ("M",), "PE": ("K",)})
    ev = evaluate(cascade, os_, arch, sizes=sizes)
    assert ev.macs == 8 * 8 * 4
    assert ev.actions["2d.register_file.read"] == 256
    assert ev.actions["2d.register_file.write"] == 256
    # K spread over the rows (a spatial reduction), M temporal: no accumulator in the register file,
    # but each PE keeps its weight W[k, n] over the 8 values of M: written 32 times, read 256 times
    ws = Mapping(name="ws", binding={"Z": "2d"}, spatial={"2d": {"rows": ("K",), "cols": ("N",)}},
                 tiling={"K": {"GLB": 2, "spatial": 4}, "M": {"PE": 8}}, loop_order={"GLB": ("K",), "PE": ("M",)})
    ev = evaluate(cascade, ws, arch, sizes=sizes)
    assert ev.actions["2d.register_file.read"] == 256
    assert ev.actions["2d.register_file.write"] == 32


def test_mapping_names_checked_against_the_cascade():
    causal = load_cascade("causal-1pass")
    arch = small_arch(exp_2d=True, glb_bytes=1 << 20)
    with pytest.raises(MappingError, match=r"unknown param 'MO'") as err:
        lower(causal, one_pass_mapping(extra_2d=("BQK",), params={"MO": 4}), arch, tiny_workload())
    assert "did you mean 'M0'" in err.value.hint
    over = one_pass_mapping(extra_2d=("BQK",), tiling={"M0": {"spatial": 4}, "P": {"DRAM": 4, "GLB": 2, "spatial": 4}})
    with pytest.raises(MappingError, match="tiling of P over-covers it"):
        lower(causal, over, arch, tiny_workload())


def test_a_rank_nobody_gave_is_an_error_not_the_spec_default():
    with pytest.raises(WorkloadError, match=r"needs ranks (R, C|C, R), which the workload bert does not give"):
        lower(load_cascade("mla-absorbed"), one_pass_mapping(), small_arch(), load_workload("bert"))


def test_schedule_prints_and_serializes():
    sched = lower(load_cascade("causal-1pass"), one_pass_mapping(extra_2d=("BQK",)),
                  small_arch(exp_2d=True, glb_bytes=1 << 20), tiny_workload(batch=3))
    data = json.loads(sched.to_json())
    assert data["instances"] == 3
    assert data["einsums"]["QK"]["tiles"]["empty"] == 6
    assert data["tensors"]["Q"]["role"] == "input" and data["tensors"]["Q"]["level"] == "DRAM"
    assert data["tensors"]["Q"]["tile_elements"] == 4 * 4                # E = 4 in each PE x P over 4 columns
    assert data["tensors"]["RM"]["level"] in ("RF", "GLB")
    assert data["groups"][0]["pipeline"] == "interleave"
    assert any(lp["kind"] == "spatial" and lp["spatial_dim"] == "2d.rows" for lp in data["groups"][0]["loops"])
    text = sched.loop_nest()
    assert "mask of QK: 16 tiles of 4x4: 6 empty (skipped), 4 partial, 6 full" in text
    assert "skipped by BQK, QK, LM" in text
    assert "instances: 3" in text


def test_tensors_passed_between_interleaved_arrays_are_double_buffered():
    """FuseMax's interleave runs the 2D array one iteration of M1 ahead of the 1D array: a tensor the
    one array produces and the other reads has two iterations' tiles in the buffer at once (the
    capacity check must see both, or a search could pick a working set the hardware cannot hold)."""
    cascade, arch = load_cascade("fusemax-1pass"), small_arch(exp_2d=True, glb_bytes=1 << 20)
    inter = lower(cascade, one_pass_mapping(), arch, tiny_workload())
    seq = lower(cascade, one_pass_mapping(groups=(FusionGroup(("all",), "sequential"),)), arch, tiny_workload())
    binding = one_pass_mapping().binding
    crossing = []
    for name, t in inter.tensors.items():
        if t.level != "GLB" or name not in binding:
            continue
        readers = {e for e in inter.einsums if name in inter.resolved.view.einsum(e).inputs}
        if any(binding[r] != binding[name] for r in readers):
            crossing.append(name)
            assert t.tile_elements == 2 * seq.tensors[name].tile_elements, name
        else:
            assert t.tile_elements == seq.tensors[name].tile_elements, name
    assert crossing, "the FuseMax mapping passes tiles between its arrays"
