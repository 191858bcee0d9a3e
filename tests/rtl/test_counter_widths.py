"""The fixed core's controller counters take their bounds and widths from the schedule's loop nest
(``rtl.schedule.derive_structure``: one counter per temporal loop), not from the buffer depths.

A schedule with other bounds builds other counters, and the core still runs bit- and cycle-exact
(Amaranth's simulator); a command beyond the counters' reach is refused by the core (``error``).
"""
import argparse
from pathlib import Path

import numpy as np
import pytest
from core_sim import run_core_sim
from rtl_archs import shaped

from einloom.rtl.attention import AttentionCore, compute_cycles
from einloom.rtl.config import RtlConfig
from einloom.sim.formats import golden_attention

ROOT = Path(__file__).resolve().parents[2]
A44 = str(ROOT / "examples" / "archs" / "rtl-4x4-int8.yaml")
SMALL = str(ROOT / "examples" / "workloads" / "rtl-small.yaml")


def _config_for(spec, seq_len=None):
    from einloom.commands.rtl import config_for
    args = argparse.Namespace(arch=A44, spec=spec, workload=SMALL if seq_len else None, seq_len=seq_len,
                              mapping=None, search=False)
    cfg, _schedule, dims, _roles = config_for(args)
    return cfg, dims["structure"]


@pytest.mark.parametrize("spec,seq_len,tiles,blocks", [
    ("fusemax-1pass", None, 64, 16),       # the core's own sizes: P = 64 (max_queries), M = 256 (max_keys)
    ("fusemax-1pass", 64, 16, 16),
    ("causal-1pass", 32, 8, 8)])
def test_counters_come_from_the_structure(spec, seq_len, tiles, blocks):
    cfg, structure = _config_for(spec, seq_len)
    key, block = structure.counter("key_tile"), structure.counter("query_block")
    assert (key.bound, block.bound) == (tiles, blocks)
    assert (cfg.tile_counter_bound, cfg.block_counter_bound) == (tiles, blocks)
    assert (cfg.tile_bits, cfg.block_bits) == (key.width, block.width) == \
        ((tiles - 1).bit_length(), (blocks - 1).bit_length())
    assert (cfg.keys_limit, cfg.queries_limit) == (min(256, tiles * 4), min(64, blocks * 4))


def test_counter_widths_differ_with_the_bounds_and_the_core_builds_them():
    big, _ = _config_for("fusemax-1pass")
    small, _ = _config_for("causal-1pass", 32)
    assert (big.tile_bits, small.tile_bits) == (6, 3) and (big.block_bits, small.block_bits) == (4, 3)
    # the controller's key-tile and query-block counters have those widths (before: the buffers' index
    # width, 9 bits for 256 keys)
    from amaranth.hdl import Fragment
    for cfg in (big, small):
        frag = Fragment.get(AttentionCore(cfg), None)
        widths = {s.name: len(s) for s in _signals(frag) if s.name in ("cur_tile", "cur_block", "eff_tile", "prev_tile", "lo_tile")}
        assert widths == {"cur_tile": cfg.tile_bits, "eff_tile": cfg.tile_bits, "prev_tile": cfg.tile_bits,
                          "lo_tile": cfg.tile_bits, "cur_block": cfg.block_bits}


def _signals(frag):
    from amaranth.hdl._ast import Signal
    from amaranth.hdl._ir import Fragment
    seen = {}

    def walk(f):
        for domain, stmts in getattr(f, "statements", {}).items():
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    seen[id(sig)] = sig
        for sub, _name, _src in getattr(f, "subfragments", []):
            if isinstance(sub, Fragment):
                walk(sub)
    walk(frag)
    return [s for s in seen.values() if isinstance(s, Signal)]


def _small_cfg(tmp_path, key_tiles=None, query_blocks=None):
    from einloom.cost_models.arch import load_arch
    path = tmp_path / "rtl-2x2.yaml"
    path.write_text(shaped(2, 2, 4, 4, max_keys=32, max_queries=32, name="rtl-2x2-small"))
    return RtlConfig.from_arch(load_arch(path), key_tiles=key_tiles, query_blocks=query_blocks)


def _inputs(cfg, p, m, seed):
    rng = np.random.default_rng(seed)
    fmt = cfg.fmt
    return (fmt.quantize(rng.normal(0, 2.0, (cfg.head_dim, p))), fmt.quantize(rng.normal(0, 2.0, (cfg.head_dim, m))),
            fmt.quantize(rng.normal(0, 1.0, (cfg.value_dim, m))))


@pytest.mark.parametrize("p,m,causal", [(6, 8, False), (5, 7, True)])
def test_a_schedule_with_small_bounds_still_verifies(tmp_path, p, m, causal):
    cfg = _small_cfg(tmp_path, key_tiles=4, query_blocks=3)        # 4 key tiles of 2, 3 blocks of 2 queries
    assert (cfg.tile_bits, cfg.block_bits) == (2, 2) and (cfg.keys_limit, cfg.queries_limit) == (8, 6)
    assert _small_cfg(tmp_path).tile_bits == 4                      # the buffers' 16 tiles
    q, k, v = _inputs(cfg, p, m, seed=p * 10 + m)
    got, cycles, stalls = run_core_sim(cfg, q, k, v, causal)
    want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=2, causal=causal)
    assert np.array_equal(got, want)
    assert stalls == 0 and cycles == compute_cycles(cfg, p, m, causal)


def test_a_run_past_the_counters_reach_is_refused(tmp_path):
    """M = 12 keys (6 tiles) on a 4-tile counter would wrap the tile counter (K read from tile 0 again):
    the core refuses the command (``error`` high, idle, no input taken), then runs a command within its
    limits bit-exact, ``error`` low again; the same keys on a 6-tile counter run."""
    from amaranth.sim import Simulator
    narrow = _small_cfg(tmp_path, key_tiles=4, query_blocks=3)
    assert narrow.keys_limit == 8
    dut = AttentionCore(narrow)
    seen = {}

    async def bench(ctx):
        for name, value in (("num_queries", 4), ("num_keys", 12), ("causal", 0), ("window", 0), ("sinks", 0)):
            ctx.set(getattr(dut, name), value)
        ctx.set(dut.k.valid, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick()                    # the command is registered, then taken
        seen["refused"] = [(ctx.get(dut.error), ctx.get(dut.busy), ctx.get(dut.k.ready)) for _ in range(1)]
        for _ in range(5):
            await ctx.tick()
            seen["refused"].append((ctx.get(dut.error), ctx.get(dut.busy), ctx.get(dut.k.ready)))
        ctx.set(dut.num_keys, 8)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick()
        seen["accepted"] = (ctx.get(dut.error), ctx.get(dut.busy))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["refused"] == [(1, 0, 0)] * 6 and seen["accepted"] == (0, 1)
    q, k, v = _inputs(narrow, 4, 8, seed=5)
    got, _, _ = run_core_sim(narrow, q, k, v)
    assert np.array_equal(got, golden_attention(narrow.fmt, q, k, v, tile_m=2)[0])
    q, k, v = _inputs(narrow, 4, 12, seed=5)
    wide = _small_cfg(tmp_path, key_tiles=6, query_blocks=3)
    got, _, _ = run_core_sim(wide, q, k, v)
    assert np.array_equal(got, golden_attention(wide.fmt, q, k, v, tile_m=2)[0])


def test_bounds_beyond_the_buffers_are_refused(tmp_path):
    from einloom.einsum.errors import ArchError
    with pytest.raises(ArchError, match="the schedule has 17 key tiles, the buffers hold 16"):
        _small_cfg(tmp_path, key_tiles=17)
