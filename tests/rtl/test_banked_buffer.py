"""rtl/buffers.py: the banked Q/K/V buffers, as LUT-RAM slices (up to LUTRAM_MAX_DEPTH words) and as
block RAM (deeper): a written vector reads back two cycles after its address, in every bank and bit,
and the ECP5 netlist of a LUT-RAM bank has one kept read-address register per slice."""
from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from einloom.rtl.buffers import LUTRAM_MAX_DEPTH, LUTRAM_SLICE_BITS, BankedBuffer
from einloom.rtl.generate import to_verilog
from yosys_netlist import flop_nets, synth_netlist


@pytest.mark.parametrize("depth", [LUTRAM_MAX_DEPTH, LUTRAM_MAX_DEPTH + 1])
def test_written_vectors_read_back_after_two_cycles(depth):
    banks, width = 3, 2 * LUTRAM_SLICE_BITS + 8        # a ragged last slice
    dut = BankedBuffer(banks=banks, depth=depth, width=width)
    assert dut.lutram == (depth <= LUTRAM_MAX_DEPTH)
    rng = random.Random(depth)
    words = {(b, a): rng.getrandbits(width) for b in range(banks) for a in range(depth)}
    got = {}

    async def bench(ctx):
        for (b, a), value in words.items():          # one write per cycle
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_bank, b)
            ctx.set(dut.w_addr, a)
            ctx.set(dut.w_data, value)
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        await ctx.tick()                              # the registered write lands
        reads = list(range(depth)) + [0, 0]
        for t, a in enumerate(reads):
            ctx.set(dut.r_addr, a)
            if t >= BankedBuffer.latency:
                for b in range(banks):
                    got[(b, reads[t - BankedBuffer.latency])] = ctx.get(dut.r_data[b])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == words


def test_lutram_bank_has_a_kept_read_address_per_slice(tmp_path):
    """Yosys keeps each slice's read-address copy (else one register drives a whole bank's cells)."""
    width = 4 * LUTRAM_SLICE_BITS
    dut = BankedBuffer(banks=2, depth=LUTRAM_MAX_DEPTH, width=width)
    module = synth_netlist(tmp_path, to_verilog(dut, "buf"), "buf")
    addr_nets = {name for name in flop_nets(module, "TRELLIS_FF") if "r_addr_r" in name}
    assert len(addr_nets) == 2 * 4, sorted(addr_nets)
    assert not any(c["type"] == "DP16KD" for c in module["cells"].values())
