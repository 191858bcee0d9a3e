"""On-chip buffers for Q, K and V: one memory bank per array row/column, read all banks at once."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class BankedBuffer(wiring.Component):
    """``banks`` memories of ``depth`` words of ``width`` bits.

    Vector i of a sequence is stored in bank ``i % banks`` at address ``i // banks`` (the writer keeps
    the bank and address counters), so one read at address ``a`` returns vectors ``a*banks ..
    a*banks + banks - 1`` (one tile of keys, or one block of queries) in ``r_data``.

    Latency: ``r_data`` is valid one cycle after ``r_addr`` (``latency = 1``).  One write per cycle;
    the write port is registered (``write_latency = 1``): a write presented in cycle t is in the memory
    from cycle t + 2 on, so the load stream's decode (bank select, count test) and the memories'
    write-enable fan-out are separate timing paths (the 8x8 int8 core's load path to a V bank's
    LUT-RAM write enable was 18.5 ns).
    """

    latency = 1
    write_latency = 1

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
        w_en, w_bank = Signal(name="w_en_r"), Signal.like(self.w_bank, name="w_bank_r", reset_less=True)
        w_addr = Signal.like(self.w_addr, name="w_addr_r", reset_less=True)
        w_data = Signal.like(self.w_data, name="w_data_r", reset_less=True)
        m.d.sync += [w_en.eq(self.w_en), w_bank.eq(self.w_bank), w_addr.eq(self.w_addr), w_data.eq(self.w_data)]
        for b in range(self.banks):
            mem = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en & (w_bank == b)),
                         rp.addr.eq(self.r_addr), self.r_data[b].eq(rp.data)]
        return m
