"""On-chip buffers for Q, K and V: one memory bank per array row/column, read all banks at once."""
from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class BankedBuffer(wiring.Component):
    """``banks`` memories of ``depth`` words of ``width`` bits.

    Vector i of a sequence is stored in bank ``i % banks`` at address ``i // banks`` (the writer keeps
    the bank and address counters), so one read at address ``a`` returns vectors ``a*banks ..
    a*banks + banks - 1`` (one tile of keys, or one block of queries) in ``r_data``.

    Latency: ``r_data`` is valid one cycle after ``r_addr`` (``latency = 1``).  One write per cycle.
    """

    latency = 1

    def __init__(self, *, banks: int, depth: int, width: int):
        self.banks, self.depth, self.width = banks, depth, width
        abits = max(1, (depth - 1).bit_length())
        bbits = max(1, (banks - 1).bit_length())
        super().__init__({
            "w_en": In(1), "w_bank": In(unsigned(bbits)), "w_addr": In(unsigned(abits)),
            "w_data": In(unsigned(width)), "r_addr": In(unsigned(abits)),
            "r_data": Out(unsigned(width)).array(banks),
        })

    def elaborate(self, platform):
        m = Module()
        for b in range(self.banks):
            mem = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en & (self.w_bank == b)),
                         rp.addr.eq(self.r_addr), self.r_data[b].eq(rp.data)]
        return m
