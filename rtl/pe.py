"""One processing element of the 2D array (Gemmini's PE level), with its mode travelling with the data."""
from __future__ import annotations

import enum

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.accumulate import interleave_fresh
from einloom.rtl.kept import KEEP, kept_copies
from einloom.rtl.units.base import DatapathUnits


#: What the ``a`` operand beside it is, travelling right with it (the PE's mode, per wavefront).
#: ``os``: a K element of an output-stationary QK dot product (``acc += a*b``); ``ws``: a V element of
#: a weight-stationary SLNV product (``psum = psum_above + a*w``); ``first``: the first element of
#: its product (OS: the accumulator starts from 0; WS: the shadow weight becomes the active one);
#: ``last``: the last K element (OS: the finished dot product is copied into the drain register).
#: (A layout object, not a ``data.Struct`` subclass: this module postpones annotations.)
Tag = data.StructLayout({"os": 1, "ws": 1, "first": 1, "last": 1})


class PEMode(enum.IntEnum):
    """Kinds of work a PE does (the tag's ``os`` / ``ws`` bits; ``HOLD`` when neither is set)."""

    HOLD = 0
    OS = 1
    WS = 2


class ProcessingElement(wiring.Component):
    """A multiply-accumulate PE that interleaves output-stationary and weight-stationary products.

    Per operand ``a_in`` with its :class:`Tag` (both move right through one register each; ``b_in``
    moves down): OS ``acc = (first ? 0 : acc) + a*b``, and on the last element the result is also
    written into the drain register ``shd``; WS ``psum = psum_in + a*w`` with ``w`` the active weight
    (on the first element the shadow weight ``w_sh`` becomes active).  Separately, under the
    column's controls: ``drain`` shifts the drain registers down the column (``shd = shd_in``; the
    capture of a finished product wins), ``w_shift`` shifts the shadow weights down the column
    (``w_sh = w_in``).  So QK of one key tile accumulates in ``acc`` while the previous tile's QK
    leaves through ``shd`` and its SLNV runs through ``psum`` on the weights loaded behind it: the
    three registers are the PE's double buffering (Gemmini's propagate registers).

    The multiply is pipelined (:attr:`mac_latency` = the units' ``product_latency``, 2 by default,
    ``units.registered_product``): ``a_in`` and the second operand (``b_in`` or the weight, by the
    tag) are registered, the product is registered (for fixed point, the registers of an ECP5
    MULT18X18D: :mod:`einloom.rtl.units.dsp`, then a fabric register so the route from the DSP site
    to the PE's accumulate has a cycle of its own; bf16 has a third stage between its significand
    multiply and its normalization), and the product is added in the next cycle under the tag that
    travelled with it (the tag is delayed ``mac_latency`` cycles beside the operands).  No control decode sits in front of the
    multiplier, and no control net spans the array: the mode arrives with the data.

    Latency: one cycle per hop for ``a``, its tag, ``b``, ``psum``, ``shd`` and ``w_sh``; ``acc``,
    ``psum`` and ``shd`` hold an element's contribution ``mac_latency + 1`` cycles after it arrived
    on ``a_in``.  Datapath registers are reset-less (each is written before it is read); the tags
    are reset.

    With a pipelined accumulate (the units' ``acc_latency`` L > 1, ``acc_adder()``): one adder of
    latency L serves both modes.  OS term e joins partial sum ``e mod L`` (the adder's result loops
    back L cycles later; the first L terms of a product start from +0), and when the last term's
    result leaves the adder the L partials ``P_0 .. P_{L-1}`` (the format's ``dot`` order; E is a
    multiple of L) are copied into L drain registers (``shd`` is L values wide), L cycles later
    than with L = 1 (from the adder's output register); the array combines them at its bottom (``partial_sum()``).  WS: ``psum`` is the
    adder's output register, L cycles after the product, so row r+1 must see V element f L cycles
    after row r (the caller skews V by L per row; the order down the column is unchanged).
    """

    latency = 1
    #: the default multiply pipeline (:func:`mac_latency` gives a format's own)
    MAC_LATENCY = 2
    #: bits of the sums (acc, psum, shd) under one kept copy of the product's tag (single-cycle accumulate)
    TAG_COPY_BITS = 8

    def __init__(self, units: DatapathUnits):
        self.units = units
        u = units
        self.mac_latency = mac_latency(units)
        shd = drain_shape(units)
        super().__init__({
            "a_in": In(u.input_shape), "a_out": Out(u.input_shape),
            "tag_in": In(Tag), "tag_out": Out(Tag),
            "b_in": In(u.input_shape), "b_out": Out(u.input_shape),
            "psum_in": In(u.acc_shape), "psum_out": Out(u.acc_shape),
            "shd_in": In(shd), "shd_out": Out(shd),
            "w_in": In(u.prob_shape), "w_out": Out(u.prob_shape),
            "drain": In(1), "w_shift": In(1),
        })

    def elaborate(self, platform):
        if acc_latency(self.units) > 1:
            return self._elaborate_pipelined()
        m = Module()
        u = self.units
        product, tag1, _ = self._operands(m)      # tag1: the tag one cycle ahead of the product's
        acc = Signal(u.acc_shape, reset_less=True)
        psum = Signal(u.acc_shape, reset_less=True)
        shd = Signal(u.acc_shape, reset_less=True)
        m.d.comb += [self.psum_out.eq(psum), self.shd_out.eq(shd)]
        # stage 3: accumulate under the tag that travelled with the product, in kept copies of the tag
        # beside the product (registered from tag1), one per TAG_COPY_BITS bits of the sums: one tag
        # register drove the operand select and the enables of all of acc, psum and shd (a PE's tag ->
        # 8.0-9.8 ns of routing -> its accumulate was the 4x4 int8 core's path on two of three seeds)
        width = len(acc)
        spans = [(lo, min(lo + self.TAG_COPY_BITS, width)) for lo in range(0, width, self.TAG_COPY_BITS)]
        copies = kept_copies(m, tag1, len(spans), "tag_acc")
        base = Signal(u.acc_shape)
        for (lo, hi), tag in zip(spans, copies):
            with m.If(tag.ws):
                m.d.comb += base[lo:hi].eq(self.psum_in[lo:hi])
            with m.Elif(~tag.first):
                m.d.comb += base[lo:hi].eq(acc[lo:hi])
        result = u.accumulate(m, base, product)
        for (lo, hi), tag in zip(spans, copies):
            with m.If(tag.os):
                m.d.sync += acc[lo:hi].eq(result[lo:hi])
            with m.If(tag.ws):
                m.d.sync += psum[lo:hi].eq(result[lo:hi])
            with m.If(tag.os & tag.last):
                m.d.sync += shd[lo:hi].eq(result[lo:hi])
            with m.Elif(self.drain):
                m.d.sync += shd[lo:hi].eq(self.shd_in[lo:hi])
        return m

    def _operands(self, m: Module):
        """The operand registers and stages 1 (the second operand, ``b_in`` or the weight by the tag,
        next to the ``a`` register) to ``mac_latency`` (the product), the same for both accumulates,
        and the shadow weights; returns (product register, the tag one cycle ahead of the product's,
        the tag beside the product)."""
        u = self.units
        a = Signal(u.input_shape, reset_less=True)
        b = Signal(u.input_shape, reset_less=True)
        # (tag i+1 = the right PE's tag i: each PE's copies kept apart in synthesis)
        tags = [Signal(Tag, name=f"tag{i + 1}", attrs=KEEP) for i in range(self.mac_latency)]
        w_sh = Signal(u.prob_shape, reset_less=True)
        w_act = Signal(u.prob_shape, reset_less=True)
        m.d.sync += [a.eq(self.a_in), b.eq(self.b_in)]
        m.d.sync += [t.eq(prev) for t, prev in zip(tags, [self.tag_in] + tags[:-1])]
        m.d.comb += [self.a_out.eq(a), self.b_out.eq(b), self.tag_out.eq(tags[0]), self.w_out.eq(w_sh)]
        # the second operand by the tag, and a_in, into the multiply: units.registered_product registers
        # them (stage 1) and the product (stage 2), inside the hard multiplier where it has the registers
        tag = self.tag_in
        operand = Signal(u.mult_shape)
        with m.If(tag.ws):
            m.d.comb += operand.eq(u.prob_to_mult(m, Mux(tag.first, w_sh, w_act)))
            with m.If(tag.first):
                m.d.sync += w_act.eq(w_sh)
        with m.Else():
            m.d.comb += operand.eq(u.input_to_mult(m, self.b_in))
        product = u.registered_product(m, self.a_in, operand)
        with m.If(self.w_shift):
            m.d.sync += w_sh.eq(self.w_in)
        return product, tags[-2], tags[-1]

    def _elaborate_pipelined(self):
        m = Module()
        u = self.units
        lat = acc_latency(u)
        product, tag1, tag2 = self._operands(m)
        add = m.submodules.add = u.acc_adder()
        assert add.latency == lat
        # fresh: this OS term starts its partial sum from +0 (the product's first L terms), decided a
        # cycle ahead from tag1 (the tag the product will have next cycle)
        fresh = interleave_fresh(m, lat, tag2.os, tag2.first, tag1.first)
        loop = Signal(u.acc_shape)
        m.d.comb += loop.eq(Mux(fresh, 0, add.result))
        m.d.comb += [add.a.eq(Mux(tag2.ws, self.psum_in, loop)), add.b.eq(product)]
        # the tags of the adds leaving the adder: OS results shift into the partials; the last one's
        # arrival copies P_0 .. P_{L-1} into the drain registers
        os_out, last_out = tag2.os, tag2.os & tag2.last
        for i in range(lat):
            d_os, d_last = Signal(name=f"os_out{i}"), Signal(name=f"last_out{i}")
            m.d.sync += [d_os.eq(os_out), d_last.eq(last_out)]
            os_out, last_out = d_os, d_last
        parts = [Signal(u.acc_shape, name=f"part{k}", reset_less=True) for k in range(lat - 1)]
        with m.If(os_out):
            m.d.sync += [p.eq(n) for p, n in zip(parts, parts[1:] + [add.result])]
        shd = Signal(drain_shape(u), reset_less=True)
        with m.If(last_out):
            m.d.sync += [shd[k].eq(v) for k, v in enumerate(parts + [add.result])]
        with m.Elif(self.drain):
            m.d.sync += shd.eq(self.shd_in)
        m.d.comb += [self.psum_out.eq(add.result), self.shd_out.eq(shd)]
        return m


def mac_latency(units: DatapathUnits) -> int:
    """Cycles from the PE's operands to its registered product: the units' ``product_latency`` (2 when
    the format does not give one; at least 2: the operand and product registers)."""
    lat = getattr(units, "product_latency", ProcessingElement.MAC_LATENCY)
    if lat < 2:
        raise ValueError(f"the PE's multiply needs at least 2 register stages, not {lat}")
    return lat


def acc_latency(units: DatapathUnits) -> int:
    """The units' accumulate latency L (1 when the format does not give one)."""
    return getattr(units, "acc_latency", 1)


def drain_shape(units: DatapathUnits):
    """A PE's drain register: one ``acc_shape`` value, or the L partial sums of a pipelined accumulate."""
    lat = acc_latency(units)
    return units.acc_shape if lat == 1 else data.ArrayLayout(units.acc_shape, lat)
