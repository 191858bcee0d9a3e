"""Pipelined fp32 accumulator: interleaved partial sums in a pipelined adder, combined in a fixed order."""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.add import Fp32Add
from einloom.rtl.kept import kept_copies
from einloom.sim.formats.arith.fp32 import interleaved_combine_cycles

#: operand bits per kept copy of a combine step's select strobe (Fp32Accumulator)
SELECT_GROUP = 16

__all__ = ["Fp32Accumulator", "Fp32PartialSum", "interleave_fresh"]

_NEG_ZERO = 0x80000000


def interleave_fresh(m: Module, latency: int, term: Value, first: Value, next_first: Value) -> Signal:
    """The "fresh" flag of an interleaved accumulation with an adder of latency L: high in the cycle of
    a ``term`` that starts its partial sum from +0 (one of the first L terms of a sum: the fed-back
    result is not this sum's).  ``first`` marks a sum's first term (with ``term``); ``next_first`` is
    ``first`` one cycle ahead.  The flag is a flip-flop decided a cycle ahead (it selects the adder's
    32 feedback inputs, so no counter compare sits in front of them)."""
    issued = Signal(range(latency + 1), name="issued")    # terms of this sum so far, saturating at L
    issued_next = Signal.like(issued, name="issued_next")
    m.d.comb += issued_next.eq(issued)
    with m.If(term):
        with m.If(first):
            m.d.comb += issued_next.eq(1)
        with m.Elif(issued != latency):
            m.d.comb += issued_next.eq(issued + 1)
    m.d.sync += issued.eq(issued_next)
    fresh = Signal(name="fresh")
    m.d.sync += fresh.eq(next_first | (issued_next < latency))
    return fresh



def _check_latency(component, latency: int) -> None:
    """Refuse an accumulate latency the pipelined adder cannot have (1 .. Fp32Add.BOUNDARIES)."""
    if not 1 <= latency <= Fp32Add.BOUNDARIES:
        component._MustUse__silence = True
        raise ValueError(f"latency must be 1..{Fp32Add.BOUNDARIES}, not {latency}")

class Fp32Accumulator(wiring.Component):
    """Sum of a run of fp32 terms, one per cycle, through one :class:`Fp32Add` of latency ``L``
    (golden model: ``einloom.sim.formats.arith.fp32.fp32_sum_interleaved(terms, L)``).

    The adder's result loops back to its input, so a term is added to the partial sum issued L cycles
    earlier: term e joins partial sum ``e mod L`` (the first L terms start their partials from +0).
    After the last term the L partials leave the pipeline on consecutive cycles; the first is kept
    (``+0 + P_0``, i.e. -0 read as +0), and each further one is added to the running total through the
    same adder, L cycles apiece.  With ``L = 1`` the sum is the plain sequential chain and there is no
    combine step.  No stage is longer than one of the adder's stages, so the accumulation no longer
    bounds the clock (the single-cycle fp32 accumulate was the bf16 core's critical path, 50 ns).

    Timing: the terms of one sum arrive on consecutive cycles, ``first`` with the first, ``last`` with
    the final one (both for a single-term sum); ``done`` pulses :attr:`drain_latency` cycles after
    the ``last`` term (3 for L = 1, ``4 + (L-1)*L`` otherwise: an input register, the combine, an output
    register) with the sum on ``sum``, which holds it until the next sum completes.  A new sum may
    start (``first``) on the cycle ``done`` is high or later.
    Limits: a gap in the terms (a cycle without a term between ``first`` and ``last``) is not
    supported: keep the terms consecutive (a zero term adds nothing but its place in the order).

    Parameters
    ----------
    latency : int
        L, the adder's pipeline depth, 1..4 (:attr:`Fp32Add.BOUNDARIES`).

    Members
    -------
    x : In(32)
        The term (fp32 bit pattern), read on the cycles from ``first`` to ``last``.
    first, last : In(1)
        Mark the first and the last term of a sum.
    sum : Out(32)
        The sum of the last completed run.
    done : Out(1)
        High for one cycle when ``sum`` takes a new sum.
    """

    x: In(32)
    first: In(1)
    last: In(1)
    sum: Out(32)
    done: Out(1)

    def __init__(self, *, latency: int = 4):
        _check_latency(self, latency)
        self._latency = latency
        super().__init__()

    @property
    def latency(self) -> int:
        """L: cycles between a term and the partial sum it joins (the adder's latency)."""
        return self._latency

    @property
    def drain_latency(self) -> int:
        """Cycles from the ``last`` term to ``done`` (and the new ``sum``): the input register, the
        combine, the output register."""
        return interleaved_combine_cycles(self._latency) + 2

    def elaborate(self, platform):
        m = Module()
        lat = self._latency
        m.submodules.add = add = Fp32Add(latency=lat)
        # the term and its marks are registered first, next to the adder (its first stage is long)
        x, first, last = Signal(32, reset_less=True), Signal(), Signal()
        m.d.sync += [x.eq(self.x), first.eq(self.first), last.eq(self.last)]

        # terms: active from first through last; fresh while the term's partial has no earlier term
        active = Signal()
        term = Signal()
        m.d.comb += term.eq(first | active)
        with m.If(first):
            m.d.sync += active.eq(~last)
        with m.Elif(active & last):
            m.d.sync += active.eq(0)
        fresh = interleave_fresh(m, lat, term, first, self.first)

        # a tag travels with each term's add: the results that are partials of the current sum
        tag = Signal(lat)
        m.d.sync += tag.eq((tag << 1) | term)
        partial = Signal(32)
        m.d.comb += partial.eq(Mux(tag[lat - 1], add.result, 0))

        # strobes after the last term: ends[j] is high j cycles after it
        drain = interleaved_combine_cycles(lat)     # the total leaves the adder drain cycles after the last term
        ends = [Signal(name=f"end{j}") for j in range(drain + 1)]
        m.d.comb += ends[0].eq(term & last)
        for j in range(1, drain + 1):
            m.d.sync += ends[j].eq(ends[j - 1])

        if lat == 1:
            m.d.comb += [add.a.eq(Mux(fresh, 0, add.result)), add.b.eq(x)]
        else:
            # P_0 leaves the pipeline 1 cycle after the last term, P_k k cycles later; P_2.. wait in a
            # shift register for their turn (the running total is ready every L cycles)
            first_part = Signal(32, reset_less=True)
            with m.If(ends[1]):
                m.d.sync += first_part.eq(Mux(partial == _NEG_ZERO, 0, partial))
            queue = [Signal(32, name=f"queue{k}", reset_less=True) for k in range(max(0, lat - 2))]
            for k, slot in enumerate(queue):          # P_{k+2} leaves at end[k + 3]
                with m.If(ends[k + 3]):
                    m.d.sync += slot.eq(partial)
            # the combine's steps are selected by the end strobes alone (flip-flops): no term arrives
            # during the combine (a new sum starts at ``done`` or later), so no test of the terms sits
            # between a strobe and the adder's 64 input multiplexers (it was the unit's longest path).
            # Each strobe selects through kept copies, one per SELECT_GROUP bits of the two operands
            # (one `end` flip-flop driving all 64 multiplexers -> 14.02 ns of routing was the routed 2x2
            # bf16 core's path, 55.08 MHz)
            a, b = Signal(32), Signal(32)
            m.d.comb += [a.eq(Mux(fresh, 0, add.result)), b.eq(x)]
            steps = [(2, first_part, partial)] + [(2 + (k + 1) * lat, add.result, slot) for k, slot in enumerate(queue)]
            for j, a_step, b_step in steps:           # P_0 + P_1 (P_1 leaving the pipeline), total + P_{k+2}
                sel = kept_copies(m, ends[j - 1], 64 // SELECT_GROUP, f"end{j}_sel")
                for g in range(32 // SELECT_GROUP):
                    lo, hi = g * SELECT_GROUP, (g + 1) * SELECT_GROUP
                    with m.If(sel[g]):
                        m.d.comb += a[lo:hi].eq(a_step[lo:hi])
                    with m.If(sel[32 // SELECT_GROUP + g]):
                        m.d.comb += b[lo:hi].eq(b_step[lo:hi])
            m.d.comb += [add.a.eq(a), add.b.eq(b)]

        with m.If(ends[drain]):
            m.d.sync += self.sum.eq(add.result)
        m.d.sync += self.done.eq(ends[drain])
        return m


class Fp32PartialSum(wiring.Component):
    """The sum of L interleaved partial sums ``P_0 .. P_{L-1}`` in the golden order
    (``fp32_sum_interleaved``'s combine: ``((+0 + P_0) + P_1) + ... + P_{L-1}``), feed-forward: one
    sum per cycle, through L-1 pipelined :class:`Fp32Add` of latency L each.

    The 2D PE's pipelined output-stationary accumulate leaves its L partials in the drain registers;
    the array's bottom row drains them into one of these per column (the combine the accumulator
    :class:`Fp32Accumulator` does in its own loop, moved out of the PE so the PE's adder stays free
    for the weight-stationary products behind the QK tile).

    Timing: ``sum`` holds the sum of the ``parts`` of cycle t from cycle t + :attr:`latency`
    ((L-1) * L; 0 for L = 1, where ``sum`` is ``parts[0]`` with -0 read as +0, combinationally).
    ``+0 + P_0`` is ``P_0`` with -0 read as +0: the partials are sums from +0, so never subnormal.

    Members
    -------
    parts : In(ArrayLayout(32, L))
        ``parts[k]`` = P_k (fp32 bit patterns), read every cycle.
    sum : Out(32)
    """

    def __init__(self, *, latency: int = 4):
        _check_latency(self, latency)
        self._lat = latency
        super().__init__({"parts": In(data.ArrayLayout(32, latency)), "sum": Out(32)})

    @property
    def latency(self) -> int:
        """Cycles from ``parts`` to their ``sum``: (L-1) * L."""
        return (self._lat - 1) * self._lat

    def elaborate(self, platform):
        m = Module()
        lat = self._lat
        p0 = self.parts[0]
        total = Signal(32)
        m.d.comb += total.eq(Mux(p0 == _NEG_ZERO, 0, p0))
        for k in range(1, lat):
            # P_k waits (k-1) * L cycles for the running total of P_0 .. P_{k-1}
            part = self.parts[k]
            for i in range((k - 1) * lat):
                d = Signal(32, name=f"p{k}_d{i}", reset_less=True)
                m.d.sync += d.eq(part)
                part = d
            add = Fp32Add(latency=lat)
            m.submodules[f"add{k}"] = add
            m.d.comb += [add.a.eq(total), add.b.eq(part)]
            total = add.result
        m.d.comb += self.sum.eq(total)
        return m
