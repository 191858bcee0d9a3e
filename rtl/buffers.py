"""On-chip buffers for Q, K and V: one memory bank per array row/column, read all banks at once."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.kept import KEEP, kept_register


#: banks of at most this many words are LUT-RAM with per-slice read address registers (BankedBuffer)
LUTRAM_MAX_DEPTH = 64
#: a LUT-RAM bank is built as slices of at most this many bits, each with its own kept read and write
#: address and write enable registers (a 64-word bank is four 16-word LUT-RAM cells deep per 4 bits:
#: one address register would drive 4 x width / 4 cells)
LUTRAM_SLICE_BITS = 32


class BankedBuffer(wiring.Component):
    """``banks`` memories of ``depth`` words of ``width`` bits.

    Vector i of a sequence is stored in bank ``i % banks`` at address ``i // banks`` (the writer keeps
    the bank and address counters), so one read at address ``a`` returns vectors ``a*banks ..
    a*banks + banks - 1`` (one tile of keys, or one block of queries) in ``r_data``.

    Latency: ``r_data`` is valid two cycles after ``r_addr`` (``latency = 2``): the memory's synchronous
    read, then an output register (a fabric flip-flop beside the block RAM), so the block RAM's slow
    clock-to-out (ECP5 DP16KD ``DOB``: 5.8 ns with its own output register off) drives only a short
    wire and not the route to the array's feed registers (the 4x4 int8 core's critical path at
    81.76 MHz: ``DOB`` -> 5.6 ns of routing -> a feed register).  One write per cycle;
    the write port is registered (``write_latency = 1``): a write presented in cycle t is in the memory
    from cycle t + 2 on, so the load stream's decode (bank select, count test) and the memories'
    write-enable fan-out are separate timing paths (the 8x8 int8 core's load path to a V bank's
    LUT-RAM write enable was 18.5 ns).

    A bank of at most :data:`LUTRAM_MAX_DEPTH` words is built as LUT-RAM explicitly, in slices of
    :data:`LUTRAM_SLICE_BITS` bits: each slice its own kept copies of the read address, the write
    address and the write enable in registers, an asynchronous read, the output register (same latency
    2).  Read synchronously, yosys placed the read address in one register that it shared between the
    banks (equal D inputs merged), which then fanned out to every bank's LUT-RAM cells (the 8x8 int8
    core's critical path at 74.39 MHz: ``kbuf`` read address -> 12.45 ns of routing -> a read data
    register).  The 4x4 int8 core's 64-word K and V banks were block RAM until the ninth session: a
    DP16KD's clock-to-out with its output register off (yosys does not use that register) plus the route
    to the fabric output register was its critical path on two of three seeds (``vbuf.bank3`` ``DOA`` ->
    5.6 ns of routing, 11.43 ns, 87.44 MHz).  Deeper banks keep the synchronous read, which maps onto a
    block RAM's address register.
    """

    latency = 2
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
        w_data = Signal.like(self.w_data, name="w_data_r", reset_less=True)
        m.d.sync += w_data.eq(self.w_data)
        for b in range(self.banks):
            data = Signal(unsigned(self.width), name=f"r_data_r{b}", reset_less=True)
            m.d.sync += data.eq(Cat(*(self._slice(m, b, i, lo, hi, w_data)
                                      for i, (lo, hi) in enumerate(self._slices()))))
            m.d.comb += self.r_data[b].eq(data)
        return m

    @property
    def lutram(self) -> bool:
        """Whether the banks are LUT-RAM (asynchronous read behind kept address registers)."""
        return self.depth <= LUTRAM_MAX_DEPTH

    def _slices(self) -> list[tuple[int, int]]:
        """The bit ranges built as separate memories: LUT-RAM banks in :data:`LUTRAM_SLICE_BITS` slices,
        a block-RAM bank whole."""
        step = LUTRAM_SLICE_BITS if self.lutram else self.width
        return [(lo, min(lo + step, self.width)) for lo in range(0, self.width, step)]

    def _slice(self, m: Module, b: int, i: int, lo: int, hi: int, w_data: Signal):
        """Bits ``lo:hi`` of bank ``b``: a memory with its own registered write enable (the bank test
        before the register) and write address, kept apart in synthesis so no one flip-flop fans out to
        every bank's cells (the 8x8 int8 core's critical path was the shared enable register -> the
        banks' WRE, 14.2 ns); LUT-RAM reads through its own kept read-address register.  Returns the
        read data (before the output register)."""
        # LUT-RAM by the attribute: left to itself, yosys folds the kept read-address register into
        # a synchronous read port and maps a 64-word bank onto block RAM
        attrs = {"ram_style": "distributed"} if self.lutram else None
        mem = memory.Memory(shape=unsigned(hi - lo), depth=self.depth, init=[], attrs=attrs)
        suffix = f"{b}" if hi - lo == self.width else f"{b}_{i}"
        m.submodules[f"bank{suffix}"] = mem
        wp = mem.write_port()
        rp = mem.read_port(domain="comb") if self.lutram else mem.read_port()
        # (no reset on the copies: the reset net reaching every slice's enable and addresses was a
        # path of both int8 cores, 10.6-11.5 ns of routing from the one reset flip-flop; a write in the
        # cycle of a reset lands in a buffer that the next command loads again)
        en = Signal(name=f"w_en_r{suffix}", attrs=KEEP, reset_less=True)
        addr = kept_register(self.w_addr, f"w_addr_r{suffix}", reset_less=True)
        m.d.sync += [en.eq(self.w_en & (self.w_bank == b)), addr.eq(self.w_addr)]
        r_addr = self.r_addr
        if self.lutram:
            r_addr = kept_register(self.r_addr, f"r_addr_r{suffix}", reset_less=True)
            m.d.sync += r_addr.eq(self.r_addr)
        m.d.comb += [wp.addr.eq(addr), wp.data.eq(w_data[lo:hi]), wp.en.eq(en), rp.addr.eq(r_addr)]
        return rp.data
