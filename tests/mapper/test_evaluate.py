"""The evaluator against hand-computed counts on a 4x4 array with P = M = 8, E = 4.

QK[m,p] = Q[e,p] K[e,m] with M on the rows, P on the columns, E inside each PE, DRAM loops [P, M]
(two tiles each); DRAM moves 10 bytes per cycle, the buffer row holds 4 values.
"""
from __future__ import annotations

import pytest

from einloom.einsum.errors import ArchError, MappingError
from einloom.mapper.evaluate import evaluate
from einloom.mapper.mapping import FusionGroup, Mapping

from mapper_helpers import qk_view, small_arch


def qk_mapping(pipeline: str = "none", **extra) -> Mapping:
    binding = {"QK": "2d", **extra.pop("binding", {})}
    spatial = {"2d": {"rows": ("M",), "cols": ("P",)}}
    if "1d" in binding.values():
        spatial["1d"] = {"lanes": ("P",)}
    return Mapping(name="hand", binding=binding, spatial=spatial,
                   tiling={"M": {"DRAM": 2, "spatial": 4}, "P": {"DRAM": 2, "spatial": 4}, "E": {"PE": 4}},
                   loop_order={"DRAM": ("P", "M"), "PE": ("E",)},
                   groups=(FusionGroup(("all",), pipeline),), **extra)


def test_single_einsum_counts_by_hand(arch):
    ev = evaluate(qk_view(), qk_mapping(), arch)
    assert ev.per_einsum_cycles["QK"] == 16                  # 2 x 2 tiles x E=4 steps, 1 MAC/cycle
    assert ev.actions["2d.mac"] == 8 * 8 * 4
    # DRAM: Q once (32), K once per P tile (2 x 32), QK written once (64) -> 160 values, 320 B
    assert ev.dram_read_bytes == 2 * (32 + 64)
    assert ev.dram_write_bytes == 2 * 64
    # DRAM bound: 32 cycles > 16; plus what nothing overlaps: the first cycle's operands (Q over the 4
    # columns, K over the 4 rows: 8 values) and the last QK tile's drain (4x4: 16 values), at 10 B/cycle
    assert ev.exposed_io_cycles == pytest.approx(24 * 2 / 10)
    assert ev.latency_cycles == pytest.approx(320 / 10 + 4.8)
    assert ev.buffer["used_bytes"] == 2 * (16 + 16 + 16)     # Q, K, QK tiles of 4x4
    # buffer: Q multicast over the 4 rows (256/4), K over the 4 columns (256/4), QK drained (64)
    assert ev.actions["global_buffer.read_values"] == 64 + 64 + 64
    assert ev.actions["global_buffer.write_values"] == 96 + 64   # fills + QK results
    # register file: E is reduced inside the PE -> accumulator read + write per MAC; Q, K bypass
    assert ev.actions["2d.register_file.read"] == 256
    assert ev.actions["2d.register_file.write"] == 256
    expected = (256 * 17.16 + 256 * (0.653 + 0.57) + 192 / 4 * arch.buffer_energy_pj("read")
                + 160 / 4 * arch.buffer_energy_pj("write") + 320 / 8 * 249.6)
    assert ev.energy_pj == pytest.approx(expected)
    assert sum(ev.energy_breakdown_pj.values()) == pytest.approx(ev.energy_pj)
    assert ev.util_2d == pytest.approx(16 / 36.8)


def test_interleaved_pipeline_across_arrays(arch):
    """QK on the 2D array feeds LM = max over M on the 1D array; both 16 cycles; DRAM 208 B."""
    view = qk_view(with_max=True)
    ev = evaluate(view, qk_mapping("interleave", binding={"LM": "1d"}), arch)
    assert ev.per_einsum_cycles == {"QK": 16, "LM": 16}      # LM: 8 queries over 4 lanes x 8 keys
    assert ev.dram_bytes == 2 * (32 + 64 + 8)                 # QK stays on chip, LM written once
    fill = 16 / 4                                             # one epoch of the smaller array (4 epochs)
    io = (4 + 4 + 4) * 2 / 10                                 # first Q, K operands in; last LM tile (4 lanes) out
    assert ev.exposed_io_cycles == pytest.approx(io)
    # the buffer delivers one 4-value row per cycle (1 bank): QK's operands (Q multicast over the 4 rows,
    # K over the 4 columns: 64 + 64 values) hold its ports 32 cycles > its 16 compute cycles, so the 2D
    # array is busy 32; LM reads QK's 64 values in 16 = its compute.  The less busy array's epoch is the fill.
    fill = (32 + 16 - 32) / 4
    assert ev.utilization["2d"]["busy"] * ev.latency_cycles == pytest.approx(32)
    assert ev.latency_cycles == pytest.approx(32 + fill + io)
    wide = evaluate(view, qk_mapping("interleave", binding={"LM": "1d"}), small_arch(banks=2))
    assert wide.latency_cycles == pytest.approx(208 / 10 + 16 / 4 + io)    # 2 banks: 16 cycles, DRAM bound
    assert wide.per_einsum_activity_2d["QK"] == pytest.approx(16 / (20.8 + 4 + io))
    assert wide.utilization["1d"]["ideal"] == pytest.approx(16 / (20.8 + 4 + io))
    seq = evaluate(view, qk_mapping("sequential", binding={"LM": "1d"}), small_arch(dram_gbps=1000, banks=2))
    assert seq.latency_cycles == pytest.approx(32 + seq.exposed_io_cycles)   # arrays take turns: 16 + 16
    seq = evaluate(view, qk_mapping("sequential", binding={"LM": "1d"}), small_arch(dram_gbps=1000))
    assert seq.latency_cycles == pytest.approx(48 + seq.exposed_io_cycles)   # 32 (ports) + 16


def test_op_without_a_unit_is_an_error_never_free():
    view = qk_view(with_exp=True)
    mapping = qk_mapping(binding={"SN": "2d"})
    with pytest.raises(ArchError, match="Einsum SN is bound to the 2d array, which cannot run its 'exp' ops"):
        evaluate(view, mapping, small_arch())
    ev = evaluate(view, mapping, small_arch(exp_2d=True))    # exp as 6 MACs + 1 add on the 2D PE
    assert ev.per_einsum_cycles["SN"] == 7 * 4
    assert ev.actions["2d.mac"] == 256 + 6 * 64
    assert ev.actions["2d.add"] == 64


def test_buffer_overflow_is_rejected_with_the_reason():
    with pytest.raises(MappingError, match=r"working set .* does not fit the .* global buffer of tiny"):
        evaluate(qk_view(), qk_mapping(), small_arch(glb_bytes=64))


def test_unknown_einsum_and_rank_are_named():
    with pytest.raises(MappingError, match="unknown Einsum 'QQ'"):
        evaluate(qk_view(), qk_mapping(binding={"QQ": "1d"}), small_arch())
    bad = qk_mapping().replace(tiling={"X": {"DRAM": 2}})
    with pytest.raises(MappingError, match="unknown rank 'X'"):
        evaluate(qk_view(), bad, small_arch())
    unbound = qk_mapping().replace(binding={})
    with pytest.raises(MappingError, match="'QK' does arithmetic .* not bound"):
        evaluate(qk_view(), unbound, small_arch())


def test_spatial_overcommit_is_rejected():
    wide = qk_mapping().replace(tiling={"M": {"spatial": 8}, "P": {"DRAM": 2, "spatial": 4}, "E": {"PE": 4}})
    with pytest.raises(MappingError, match="rows has 4 PEs but ranks M are spread over 8"):
        evaluate(qk_view(), wide, small_arch())


def test_iterative_rank_is_never_parallel():
    from einloom.mapper.model import CascadeView, EinsumInfo
    run = EinsumInfo("RM", ("I", "P"), (), ("X",), {"max": 8 * 4}, iterative_rank="I", reads_self=True)
    view = CascadeView.from_parts("iter", [run], {"I": 8, "P": 4}, {"X": ("I", "P"), "RM": ("I", "P")},
                                  ["X"], ["RM"])
    m = Mapping(name="it", binding={"RM": "2d"}, spatial={"2d": {"rows": ("I",), "cols": ("P",)}},
                tiling={"I": {"DRAM": 2, "spatial": 4}})
    ev = evaluate(view, m, small_arch(dram_gbps=1000))
    assert ev.per_einsum_cycles["RM"] == 8                   # I sequential, P over 4 columns


def test_bypass_streams_past_the_buffer_by_hand(arch):
    """Q and QK bypass the buffer: every delivery of Q is a DRAM read, QK goes straight to DRAM."""
    ev = evaluate(qk_view(), qk_mapping(bypass=("Q", "QK")), arch)
    # Q: 256 MAC points / multicast over the 4 rows = 64 deliveries, all from DRAM (32 with the buffer);
    # K: staged as before (once per P tile, 64); QK: 64 results written to DRAM, none to the buffer
    assert ev.dram_read_bytes == 2 * (64 + 64)
    assert ev.dram_write_bytes == 2 * 64
    assert ev.actions["global_buffer.read_values"] == 64         # K delivered to the array
    assert ev.actions["global_buffer.write_values"] == 64        # K filled from DRAM
    assert ev.buffer["used_bytes"] == 2 * 16                      # only K's 4x4 tile
    # DRAM bound; exposed: K's first operands (4) and Q's first tile of deliveries (64 over 4 tiles)
    assert ev.latency_cycles == pytest.approx(384 / 10 + (4 + 16) * 2 / 10)
    assert ev.actions["2d.mac"] == 256                            # compute is unchanged
    expected = (256 * 17.16 + 256 * (0.653 + 0.57) + 64 / 4 * arch.buffer_energy_pj("read")
                + 64 / 4 * arch.buffer_energy_pj("write") + 384 / 8 * 249.6)
    assert ev.energy_pj == pytest.approx(expected)


def test_bypass_only_for_tensors_in_dram():
    view = qk_view(with_max=True)                                # QK is an on-chip intermediate
    with pytest.raises(MappingError, match="bypass lists 'QK', which does not live in DRAM") as err:
        evaluate(view, qk_mapping("interleave", binding={"LM": "1d"}, bypass=("QK",)), small_arch())
    assert "spill it as well" in err.value.hint
    with pytest.raises(MappingError, match="bypass lists 'X', which is not a tensor"):
        evaluate(view, qk_mapping("interleave", binding={"LM": "1d"}, bypass=("X",)), small_arch())
    spilled = evaluate(view, qk_mapping("sequential", binding={"LM": "1d"}, spill=("QK",), bypass=("QK",)),
                       small_arch(dram_gbps=1000))
    staged = evaluate(view, qk_mapping("sequential", binding={"LM": "1d"}, spill=("QK",)),
                      small_arch(dram_gbps=1000))
    # a spill read back in the same pass is not a DRAM tensor, so QK stays on chip either way
    assert spilled.dram_bytes == staged.dram_bytes
