"""Fixed-point datapath units: the RTL twin of :class:`einloom.sim.formats.fixed.FixedFormat`."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.units import register
from einloom.rtl.units.base import DatapathUnits
from einloom.rtl.units.dsp import DSP_WIDTH, registered_mult
from einloom.sim.formats.fixed import FixedFormat


#: shift bits of the exp's integer part applied after its ROM (the rest select a pre-shifted copy of
#: the table in the ROM): 1 leaves one LUT4 per output bit behind the block RAM (FixedExp)
EXP_FINE_SHIFT_BITS = 1


class FixedExp(wiring.Component):
    """``y = exp_diff(x, m)``: base-2 range reduction, LUT for 2**-fraction, shift for the integer part.

    Pipeline (latency 4, one operation per cycle)::

        stage 1: d = (m - x) mod 2**T, over = m - x >= 2**T          (registers; d >= 0; d is the
                 operand register of a registered_mult of latency 1, on ECP5 a MULT18X18D's)
        stage 2: p = d * EXP_CONST (the DSP's product, unregistered)
                 u = ceil(p / 2**exp_shift) = (p + 2**exp_shift - 1) >> exp_shift   (fabric register)
        stage 3: i = u >> exp_frac_bits; ROM read at (u mod 2**exp_frac_bits, i >> 1)  (register i; sync ROM)
        stage 4: y = 0 if zero else ROM >> (i mod 2)  (register; zero = over or i > prob_bits, a
                 flip-flop set in stage 3)

    ``over`` stands for the clamp ``min(m - x, 2**T)`` (both give y = 0): a separate flip-flop carried
    along, not a clamp in front of ``d``, which yosys mapped onto the set/reset (LSR) pins of ``d``'s
    flip-flops behind the subtraction's carry chain (the 4x4 int8 core's critical path at 91.12 MHz,
    10.97 ns).

    The ROM holds ``LUT[j] >> 2q`` for each coarse shift q (8 x 256 entries of 16 bits at the int8
    preset, two DP16KD), so one LUT4 per bit follows the block RAM's output: ``zero``, ``i mod 2`` and
    the two ROM bits (``(LUT >> 2q) >> r = LUT >> (2q + r)``).  A 4-level shifter after the ROM was the
    int8 exp unit's critical path (11.6 ns); with 4 copies (``LUT >> 4q``, a 2-level shifter and the
    zero select behind the ROM's clock-to-out, two LUT levels) the 4x4 int8 core's critical path at
    99.56 MHz (10.04 ns).  :data:`EXP_FINE_SHIFT_BITS` is the number of shift bits left after the ROM.

    ``u`` is the golden model's ``-((x - m) * EXP_CONST >> exp_shift)``: the negated floor of a
    non-positive number is the ceiling of its negation, so no negation follows the multiplier.
    ``T`` (:attr:`clamp_bits`) is the smallest power of two at which the result underflows to 0;
    clamping there changes no result and narrows the multiplier (int8: 15 x 15 bits, one DSP).
    Limits: ``x <= m`` is the caller's contract (a masked x > m gives an unspecified y).
    """

    latency = 4

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        super().__init__({"x": In(signed(fmt.acc_bits)), "m": In(signed(fmt.acc_bits)),
                          "y": Out(unsigned(fmt.prob_width))})

    @property
    def clamp_bits(self) -> int:
        """T: exp_diff gives 0 for every ``m - x >= 2**T`` (u is non-decreasing in m - x)."""
        f, p = self.fmt, self.fmt.p
        for t in range(f.acc_bits + 1):
            u = -(-((1 << t) * f.exp_const) >> f.exp_shift)
            if (u >> p.exp_frac_bits) > p.prob_bits:
                return t
        return f.acc_bits + 1

    def elaborate(self, platform):
        f, p = self.fmt, self.fmt.p
        m = Module()
        acc = f.acc_bits
        const_w = f.exp_const.bit_length()
        t_bits = self.clamp_bits
        diff = Signal(unsigned(acc + 1))
        m.d.comb += diff.eq((self.m - self.x).as_unsigned())
        over = [Signal(name=f"over{k}", reset_less=True) for k in range(2)]   # carried to stage 3
        d = diff[:t_bits] if t_bits <= acc else diff
        m.d.sync += [over[0].eq(diff[t_bits:] != 0 if t_bits <= acc else 0), over[1].eq(over[0])]
        # stage 1: d in the DSP's operand register (over beside it); stage 2: the product, out of the
        # DSP unregistered, and its ceiling shift in a fabric register between the DSP and the block
        # RAM (the DSP's output register -> the ceiling add -> the ROM's address, across the die from
        # the DSP site to the RAM's, was the 8x8 int8 core's path at 77.62 MHz: 12.89 ns, 10.37 routing)
        prod = Signal(unsigned(len(d) + const_w))
        m.d.comb += prod.eq(fixed_mult(m, d, Const(f.exp_const, unsigned(const_w)), "exp_mult", 1))
        u = Signal(unsigned(len(prod) + 1 - min(f.exp_shift, len(prod))), name="u_r", reset_less=True)
        m.d.sync += u.eq((prod + ((1 << f.exp_shift) - 1)) >> f.exp_shift)
        shift_w = max(1, p.prob_bits.bit_length())
        fine_w = min(EXP_FINE_SHIFT_BITS, shift_w)     # shift bits left to the logic after the ROM
        coarse = 1 << (shift_w - fine_w)
        table = [int(v) >> (q << fine_w) for q in range(coarse) for v in f.exp_lut]
        lut = memory.Memory(shape=unsigned(f.prob_width), depth=len(table), init=table)
        m.submodules.lut = lut
        rd = lut.read_port()
        efb = p.exp_frac_bits
        m.d.comb += rd.addr.eq(Cat(u[:efb], u[efb + fine_w:efb + shift_w]))
        i = Signal(unsigned(fine_w), reset_less=True)
        zero = Signal(reset_less=True)
        m.d.sync += [i.eq(u[efb:efb + fine_w]), zero.eq((u[efb:] > p.prob_bits) | over[1])]
        m.d.sync += self.y.eq(Mux(zero, 0, rd.data >> i))
        return m


def normalize_stage(m: Module, value, shifts: tuple[int, ...], name: str):
    """Part of a leading-one normalizer: for each k in ``shifts`` shift ``value`` left by k when its top
    k bits are zero.  Returns the shifted value and the bits taken (one per k, in order)."""
    width = len(value)
    taken = []
    for k in shifts:
        empty = Signal(name=f"{name}_lz{k}")
        shifted = Signal(width, name=f"{name}_norm{k}")
        m.d.comb += [empty.eq(value[width - k:] == 0),
                     shifted.eq(Mux(empty, Cat(Const(0, k), value[:width - k]), value))]
        value = shifted
        taken.append(empty)
    return value, taken


#: cycles of one Newton-Raphson step of :class:`FixedReciprocal`: the first DSP's operand and output
#: registers, the subtraction's fabric register, the second DSP's output register
NR_STEP_LATENCY = 4


def recip_latency(fmt: FixedFormat) -> int:
    """:class:`FixedReciprocal`'s latency: 3 (normalize, normalize, LUT) + 4 per Newton-Raphson step."""
    return 3 + NR_STEP_LATENCY * fmt.p.recip_nr_steps


class FixedReciprocal(wiring.Component):
    """``y = reciprocal(x)``: leading-one normalize, LUT seed, ``recip_nr_steps`` Newton-Raphson steps.

    Pipeline (latency ``3 + 4 * recip_nr_steps``, :data:`NR_STEP_LATENCY` per step, one operation per cycle)::

        stage 1: normalize x by the left shifts of 16 and 8 when its top bits are zero   (register)
        stage 2: shifts of 4, 2, 1: mant = top recip_bits bits, s = leading-one index    (register);
                 LUT read at mant's index bits (sync ROM)
        stage 3: y0 = LUT[idx]                                                           (register)
        per NR step: e = (mant*y) >> (N-1) (the DSP's output register); c = 2**(N+1) - e (a fabric
                     register); y = (y*c) >> N (the second DSP's operand and output registers)

    Each multiply is a :func:`fixed_mult` of latency 2 whose operand registers replace the stage's
    input registers (on ECP5 the MULT18X18D's own input and output registers: no route between a
    fabric flip-flop and the multiplier); the subtraction ``c`` runs from the first DSP's output
    register into a fabric register that feeds the second DSP's operand register (a DSP multiply followed
    by the subtraction's carry chain into a fabric register was the 4x4 int8 core's critical path on
    ECP5, 12.8 ns, before the first DSP had its output register; the subtraction straight into the second
    DSP made the two DSP sites' distance the 8x8 int8 core's path: `nr0_e` -> 13.22 ns of routing ->
    `nr0_y`, 66.05 MHz).  Only the
    first step's operands exist a cycle early; further steps multiply ``mant * y`` from fabric
    registers.

    The normalizer is a shifter cascade (as in a floating-point adder), so the leading-one index is
    the sum of the shifts taken rather than a 32-deep priority chain.  Output code:
    ``y | s << (recip_bits+1)``.  Limits: x >= 1 (x = 0 gives an unspecified y).
    """

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        self.latency = recip_latency(fmt)
        super().__init__({"x": In(unsigned(fmt.acc_bits)), "y": Out(unsigned(fmt.recip_width))})

    def elaborate(self, platform):
        f, p = self.fmt, self.fmt.p
        n, lb, acc = p.recip_bits, p.recip_lut_bits, f.acc_bits
        m = Module()
        # the normalizer works on a power-of-two width; the padding bits are zero and shift out
        width = 1 << max(1, (acc - 1).bit_length())
        ks = tuple(1 << j for j in reversed(range(width.bit_length() - 1)))
        first, second = ks[:len(ks) // 2], ks[len(ks) // 2:]
        padded = Cat(Const(0, width - acc), self.x)
        v1, taken1 = normalize_stage(m, padded, first, "n1")
        x1 = Signal(width, reset_less=True)
        left1 = Signal(unsigned(max(1, len(first))), reset_less=True)
        m.d.sync += [x1.eq(v1), left1.eq(Cat(*reversed(taken1)))]
        v2, taken2 = normalize_stage(m, x1, second, "n2")
        left = Signal(unsigned(len(ks)))
        m.d.comb += left.eq(Cat(*reversed(taken2), left1))
        mant_comb = Signal(unsigned(n))
        m.d.comb += mant_comb.eq(v2[width - n:])
        lut = memory.Memory(shape=unsigned(n + 1), depth=1 << lb, init=[int(v) for v in f.recip_lut])
        m.submodules.lut = lut
        rd = lut.read_port()
        m.d.comb += rd.addr.eq(mant_comb[n - 1 - lb:n - 1])
        mant2, s2 = Signal(unsigned(n), reset_less=True), Signal(unsigned(f.shift_bits), reset_less=True)
        m.d.sync += [mant2.eq(mant_comb), s2.eq((acc - 1) - left)]
        mant, s = Signal(unsigned(n), reset_less=True), Signal(unsigned(f.shift_bits), reset_less=True)
        y = Signal(unsigned(n + 1), reset_less=True)
        m.d.sync += [mant.eq(mant2), s.eq(s2), y.eq(rd.data)]
        # the values entering each NR step's first multiply one cycle early (the DSP's operand
        # registers take them); None when that value exists only inside the previous step's DSP
        y_early, mant_early = rd.data, mant2
        for step in range(p.recip_nr_steps):
            y_m, mant_m, s_m = (Signal.like(y, name=f"y_m{step}"), Signal.like(mant, name=f"mant_m{step}"),
                                Signal.like(s, name=f"s_m{step}"))
            m.d.sync += [y_m.eq(y), mant_m.eq(mant), s_m.eq(s)]
            if y_early is not None:
                e_full = fixed_mult(m, mant_early, y_early, f"nr{step}_e")
            else:
                e_full = Signal(unsigned(2 * n + 1), name=f"e_full{step}", reset_less=True)
                m.d.sync += e_full.eq(mant * y)
            e = e_full[n - 1:2 * n + 1]            # (mant * y) >> (n - 1), n + 2 bits
            c = Signal(unsigned(n + 2), name=f"c{step}", reset_less=True)
            m.d.sync += c.eq((1 << (n + 1)) - e)  # a fabric register between the two DSPs
            y_c, mant_c, s_c = (Signal.like(y, name=f"y_c{step}"), Signal.like(mant, name=f"mant_c{step}"),
                                Signal.like(s, name=f"s_c{step}"))
            m.d.sync += [y_c.eq(y_m), mant_c.eq(mant_m), s_c.eq(s_m)]
            mant_e, s_e = Signal.like(mant, name=f"mant_e{step}"), Signal.like(s, name=f"s_e{step}")
            m.d.sync += [mant_e.eq(mant_c), s_e.eq(s_c)]
            y_n, mant_n, s_n = (Signal.like(y, name=f"y_n{step}"), Signal.like(mant, name=f"mant_n{step}"),
                                Signal.like(s, name=f"s_n{step}"))
            m.d.comb += y_n.eq(fixed_mult(m, y_c, c, f"nr{step}_y") >> n)
            m.d.sync += [mant_n.eq(mant_e), s_n.eq(s_e)]
            y, mant, s = y_n, mant_n, s_n
            y_early, mant_early = None, mant_e
        m.d.comb += self.y.eq(y | (s << (n + 1)))
        return m


#: low part of a split operand: unsigned, fits an 18x18 signed multiplier with the sign bit 0
SPLIT = 17


def fixed_mult(m: Module, a: Value, b: Value, name: str, latency: int = 2, *,
               input_registers: bool = True) -> Value:
    """``a * b`` of ``latency`` cycles earlier: a :func:`registered_mult` (on ECP5 a MULT18X18D with its
    own registers) when both operands fit the hard multiplier, else registered operands and as many
    registers behind a fabric/Yosys-mapped multiply (same latency, same value)."""
    if len(a) <= DSP_WIDTH and len(b) <= DSP_WIDTH:
        return registered_mult(m, a, b, latency, name, input_registers=input_registers)
    value = a * b
    if input_registers:
        a_reg, b_reg = Signal(a.shape(), name=f"{name}_a", reset_less=True), Signal(b.shape(), name=f"{name}_b",
                                                                                    reset_less=True)
        m.d.sync += [a_reg.eq(a), b_reg.eq(b)]
        value = a_reg * b_reg
    for stage in range(latency - int(input_registers)):
        reg = Signal(value.shape(), name=f"{name}_p{stage}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def split_mult(m: Module, wide: Value, narrow: Value, name: str) -> Value:
    """``wide * narrow`` (``narrow`` unsigned) as two partial products, ``wide``'s low :data:`SPLIT` bits
    (unsigned) and the rest (with ``wide``'s signedness), one hard multiplier each with its operand and
    product registers (:func:`fixed_mult`, latency 2); returns their sum, combinational, two cycles
    after the operands.  The sum is the caller's next stage: the add of the partial products is the
    slow part of a wide multiply on 18x18 DSPs."""
    k, signed_wide = SPLIT, wide.shape().signed
    high = wide[k:].as_signed() if signed_wide else wide[k:]
    lo = fixed_mult(m, wide.as_unsigned()[:k], narrow, f"{name}_lo")
    hi = fixed_mult(m, high, narrow, f"{name}_hi")
    return (hi << k) + lo


class FixedOutput(wiring.Component):
    """``y = output(rnv, recip) = sat((rnv * y_r) >> (N + s + frac_bits - output_frac_bits))``.

    Pipeline (latency 5, one operation per cycle)::

        stages 1-2: partial products rnv[:17] * y_r and rnv[17:] * y_r     (:func:`split_mult`: the
                    operand and product registers of two MULT18X18D on ECP5)
        stage 3: their sum, shifted by the constant part of the shift      (register)
        stage 4: arithmetic shift right by s                               (register)
        stage 5: saturate to output_bits                                   (register; the range test
                 is on the sign bits, no comparator)

    The variable shift and the saturation had one stage (11.8 ns alone on ECP5, 84.7 MHz), and the
    multipliers ran from the 1D PE's registers through routing into the DSP and out into fabric
    registers; each now has a stage of its own.
    """

    latency = 5

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        super().__init__({"rnv": In(signed(fmt.acc_bits)), "recip": In(unsigned(fmt.recip_width)),
                          "y": Out(signed(fmt.p.output_bits))})

    def elaborate(self, platform):
        f, p = self.fmt, self.fmt.p
        m = Module()
        n = p.recip_bits
        y_r, s = self.recip[:n + 1], self.recip[n + 1:]
        s_taps = [s]
        for i in range(3):
            tap = Signal.like(s, name=f"s{i + 1}", reset_less=True)
            m.d.sync += tap.eq(s_taps[-1])
            s_taps.append(tap)
        const = n + p.frac_bits - p.output_frac_bits        # >= 1 - prob_bits; s >= prob_bits
        prod = split_mult(m, self.rnv, y_r, "rnv_recip")
        shifted_c = Signal(signed(len(prod) + max(0, -const)), reset_less=True)
        m.d.sync += shifted_c.eq(prod >> const if const >= 0 else prod << (-const))
        sh = Signal.like(shifted_c, reset_less=True)
        m.d.sync += sh.eq(shifted_c >> s_taps[3])
        # saturate: sh fits output_bits iff its bits from output_bits-1 up are all equal (sign bits);
        # tested with bit reductions instead of two magnitude comparisons (carry chains)
        lo_v, hi_v = -(1 << (p.output_bits - 1)), (1 << (p.output_bits - 1)) - 1
        top = sh[p.output_bits - 1:]
        negative = sh[-1]
        fits = Mux(negative, top.all(), ~top.any())
        m.d.sync += self.y.eq(Mux(fits, sh[:p.output_bits], Mux(negative, lo_v, hi_v)))
        return m


class FixedRescale(wiring.Component):
    """``y = rescale_add(prm, old, addend) = ((prm * old) >> prob_bits) + addend`` (RD or RNV update).

    Pipeline (latency 4, one operation per cycle)::

        stage 0: prm, old, addend, first                                      (register)
        stage 1: partial products prm * old[:17] and prm * old[17:]           (register)
        (stages 0-1: :func:`split_mult`, on ECP5 the registers of two MULT18X18D)
        stage 2: sum of the partial products                                  (register)
        stage 3: (first ? 0 : sum >> prob_bits) + addend                      (register)

    Each stage has one carry chain at most (the two adds in one stage were a 10 ns path on ECP5), and
    the multipliers run flip-flop to DSP to flip-flop: the caller's operand select (the 1D PE's
    ``first ? 0 : RNV``) in front of the DSP was the 4x4 int8 core's critical path (13.0 ns, 8.3 ns
    of it routing to and from the DSP site).  So the unit takes that select itself (``first``:
    rescale 0, i.e. ``y = addend``), at stage 3 beside the product, and the caller's register goes
    straight into the DSP's operand register (``rescale_add(prm, 0, addend) = addend``: same bits).

    Parameters
    ----------
    fmt : FixedFormat
    signed_codes : bool
        ``old``, ``addend`` and ``y`` are signed acc codes (RNV) or unsigned den codes (RD).
    """

    latency = 4

    def __init__(self, fmt: FixedFormat, *, signed_codes: bool):
        self.fmt = fmt
        shape = signed(fmt.acc_bits) if signed_codes else unsigned(fmt.acc_bits)
        super().__init__({"prm": In(unsigned(fmt.prob_width)), "old": In(shape), "addend": In(shape),
                          "first": In(1), "y": Out(shape)})

    def elaborate(self, platform):
        p = self.fmt.p
        m = Module()
        addend = [Signal.like(self.addend, name=f"addend{i}", reset_less=True) for i in range(3)]
        first = [Signal(name=f"first{i}", reset_less=True) for i in range(3)]
        m.d.sync += [addend[0].eq(self.addend), addend[1].eq(addend[0]), addend[2].eq(addend[1]),
                     first[0].eq(self.first), first[1].eq(first[0]), first[2].eq(first[1])]
        product = split_mult(m, self.old, self.prm, "prm_old")
        total = Signal(product.shape(), reset_less=True)
        m.d.sync += total.eq(product)
        m.d.sync += self.y.eq(Mux(first[2], 0, total >> p.prob_bits) + addend[2])
        return m


class FixedAccumulator(wiring.Component):
    """``sum = x_first + ... + x_last`` in two's complement (acc_bits, wrapping), one term per cycle:
    the fixed-point :meth:`DatapathUnits.accumulate_unit`.  Integer addition is associative, so one
    register (latency 1) is the whole pipeline and any order gives the same bits.

    Timing as :class:`einloom.rtl.float.accumulate.Fp32Accumulator`'s (its own drain latency): the terms arrive on
    consecutive cycles, ``first`` with the first and ``last`` with the final one; ``done`` pulses
    :attr:`drain_latency` (2) cycles after the ``last`` term, with the sum on ``sum``.
    """

    latency = 1
    drain_latency = 2

    def __init__(self, fmt: FixedFormat, product_shape):
        self.fmt = fmt
        super().__init__({"x": In(product_shape), "first": In(1), "last": In(1),
                          "sum": Out(signed(fmt.acc_bits)), "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.fmt.acc_bits), reset_less=True)
        active, ended = Signal(), Signal()
        with m.If(self.first):
            m.d.sync += [acc.eq(self.x), active.eq(~self.last)]
        with m.Elif(active):
            m.d.sync += acc.eq(acc + self.x)
            with m.If(self.last):
                m.d.sync += active.eq(0)
        m.d.sync += ended.eq((self.first | active) & self.last)
        with m.If(ended):
            m.d.sync += self.sum.eq(acc)
        m.d.sync += self.done.eq(ended)
        return m


class FixedUnits(DatapathUnits):
    """Fixed-point arithmetic (two's complement); shapes follow the table in sim/formats/fixed.py."""

    #: the drained score is registered before the LM compare (the 4x4 int8 core's critical path was
    #: the 2D array's drain register -> compare -> LM's enable, 12.14 ns on ECP5) and the LM > RM
    #: compare before RM's update (the next one: LM -> compare -> RM's enable, 14.40 ns)
    lm_register = 2

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        p = fmt.p
        self.input_shape = signed(p.input_bits)
        self.mult_shape = signed(max(p.input_bits, fmt.prob_width + 1))
        self.product_shape = signed(p.input_bits + self.mult_shape.width)
        self.acc_shape = signed(fmt.acc_bits)
        self.prob_shape = unsigned(fmt.prob_width)
        self.den_shape = unsigned(fmt.acc_bits)
        self.recip_shape = unsigned(fmt.recip_width)
        self.output_shape = signed(p.output_bits)

    @property
    def score_shape(self):
        """The QK dot product's own range, ``fmt.qk_bits`` (20 bits for int8, E = 16, against 32-bit
        accumulators): LM's compare into its own enable was the 4x4 int8 core's most frequent critical
        path (4 of 12 seeds); its carry chain and enable fan-out shrink with the width."""
        return signed(self.fmt.qk_bits)

    def input_to_mult(self, m, x):
        return x.as_signed() if hasattr(x, "as_signed") else x

    def prob_to_mult(self, m, w):
        return w.as_unsigned()

    def product(self, m, a, b):
        return a * b

    #: the PE's product: the hard multiplier's operand and output registers, then fabric registers
    #: (``{name}_fab``, ``{name}_fab1``, ...; one by default, up to 4 by the architecture's
    #: ``array_2d.units.mac`` latency).  The 8x8 int8 core's critical path was a PE's MULT18X18D output
    #: -> its 32-bit accumulate -> the drain register, 14.42 ns of which 11.53 ns routing (the PE's
    #: fabric placed far from its DSP site); the fabric register splits that route in two cycles.
    #: Each costs one cycle of the 2D pipeline (the cycle model reads ``product_latency`` through
    #: ``mac_latency``).
    product_latency = 3
    max_product_latency = 6

    def registered_product(self, m, a, b, name="mult"):
        value = fixed_mult(m, a, b, name, 2)
        for stage in range(self.product_latency - 2):
            fab = Signal(value.shape(), name=f"{name}_fab" + (str(stage) if stage else ""), reset_less=True)
            m.d.sync += fab.eq(value)
            value = fab
        return value

    def accumulate(self, m, base, prod):
        return base + prod

    acc_latency = FixedAccumulator.latency

    def accumulate_unit(self):
        return FixedAccumulator(self.fmt, self.product_shape)

    def greater(self, m, a, b):
        return a > b

    def prob_add(self, m, den, prob):
        return den + prob

    @property
    def exp_latency(self) -> int:
        return FixedExp.latency

    @property
    def recip_latency(self) -> int:
        return recip_latency(self.fmt)

    @property
    def output_latency(self) -> int:
        return FixedOutput.latency

    @property
    def rescale_latency(self) -> int:
        return FixedRescale.latency

    def rescale_unit(self, kind):
        return FixedRescale(self.fmt, signed_codes={"acc": True, "den": False}[kind])

    def exp_unit(self):
        return FixedExp(self.fmt)

    def recip_unit(self):
        return FixedReciprocal(self.fmt)

    def output_unit(self):
        return FixedOutput(self.fmt)


register("fixed", FixedUnits)
