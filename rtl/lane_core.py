"""The lane core: the 2D MAC array with C programmable 1D lanes (``rtl/lanes``) as its 1D array.

Any cascade the lane compiler accepts (``rtl/lanes/compile.py``: score products and value products on
the 2D array, everything else a lane program) runs on this core: sigmoid, ALiBi, soft-capping,
differential attention (two score products), ReLU attention, prefix-LM masks, flash-1 style
normalization and a user's own spec, in bf16 (fp32 lanes, a bf16 x bf16 + fp32 MAC array) or in fixed
point (``CoreShape.fixed``: lanes of ``(code, f)`` values, ``rtl/lanes/fixed_units.py``; the MACs
multiply input codes exactly and add aligned, ``_FixedPe``; outputs floored and saturated to the
format's output code, ``_to_output``).

Every PE registers its product (``PRODUCT_STAGES``) before the add: no path holds more than one
multiply or one add of the array.

Dataflow, per query block of C queries (lane c serves query ``b*C + c``) and key tile of R keys:

``QK``    each score product i in turn: E multiply-accumulates per PE (PE (k, c): key k of the tile,
          query c), ``acc = fp32_add(acc, bf16_mul(Q[c, e], K[k, e]))`` for e = 0 .. E-1 from +0, the
          golden model's ``mac`` chain, one per cycle: the product of e is registered while the add
          of e-1 lands (the loop is the add alone), and QK stays ``qk_drain_cycles()`` after its last
          read for the last add; the Q and K operands come from the core's memories (loaded
          through ``load_*``: one word of C or R bf16 values per address).  An input the lanes read
          per key (linear attention's ``FK = phi(K[e, m])``: a *direct* slot, ``CoreShape.direct``)
          takes R cycles instead: word (block, key) of its memory ``x<i>`` (the C lanes' bf16 values),
          widened exactly to fp32 into row k of the slot's registers (no MAC, not 2D busy).
``SW``    the R raw score sums of every score product into each lane's ``in.score<i>`` buffer
          (R writes per product; a key beyond M is written absent); then ``go``.
``WW``    the lanes run ``begin`` .. ``merge`` and emit their weights, which the PEs keep (rounded
          to bf16, as ``mac`` rounds them) with their valid bits.
``VP``    each value product i, value column f in turn (one read per cycle): the column sum of PE
          column c down the rows, ``s = mac(s, w[k, c], V[k, f])`` for k = 0 .. R-1 where the weight
          and V[k] are present, starting from +0 (a per-tile product) or from the running sum of the
          block (a product over the whole key rank, e.g. sigmoid's ``AV``), as a systolic column:
          row k multiplies column f k cycles after its read (its V slice delayed k cycles, the
          product, column and valid bits travelling along) and adds ``PRODUCT_STAGES`` cycles later
          to row k-1's registered partial sum (row 0: the carry-in) into its own sum register; the
          sum leaving row R-1 is written into ``in.value<i>`` (and the running sum); VP stays
          ``vp_drain_cycles(R)`` = R + ``PRODUCT_STAGES`` cycles after its last read; then ``go``.
``WD``    after the last tile: the lanes run ``final`` and ``output``; their output beats are kept.
``DRAIN`` the beats leave on the output stream (``out_valid``/``out_ready``: one beat = one output
          element of all C queries), then the next block starts.

QK of tile t+1 runs while the lanes do ``value``/``commit`` of tile t.  The cycles are exact and
predicted by :func:`einloom.sim.rtl_core.lane_core_cycles` from the program's section lengths.
With ``programmable`` the lanes have their load port and the core a small table (buffer addresses,
which value products continue across tiles, how many products and output beats), so one build runs
every program it was built for (:class:`~einloom.rtl.lanes.encode.LaneShape.covering`).

A cascade of several **stages** (``rtl/lanes/stages.py``: linear attention's state pass, then its
read pass) runs its stage programs one after the other on one programmable build, each stage's
output beats written as the next stage's operand memory by the driver (``rtl/tb/lane_core_tb.py``).
A **multi-pass** program (``rtl/lanes/passes.py``: 3-pass softmax, split-KV decode's LSE merge) runs,
per query block, its passes over the key tiles one after the other in one run: per pass the
controller runs the pass's range of score slots and value products (table entries), the lanes keep
per-query values in registers from one pass to the next.
**Heads**: the ranks the key or value operands carry run once each (a run per K/V head); query heads
sharing one K/V (GQA, MQA) fold into the query columns (``lane_build.core_operands``).

Limits: the lanes' coordinates are the key and query indices only (no head coordinate); a score product's operands are
two tensors, one indexed by the query rank and the reduced rank, one by the key rank(s) and the reduced
rank; a value product's other operand depends on the key and value ranks only; the value product's
systolic column costs R + ``PRODUCT_STAGES`` cycles of drain per tile, and QK ``PRODUCT_STAGES``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.add import Fp32Add
from einloom.rtl.float.convert import Fp32ToBf16
from einloom.rtl.float.mul import Bf16Mul
from einloom.rtl.lanes.fixed_units import CODE_BITS, F_BITS, VALUE_BITS

#: controller states (the cycle model in ``sim/rtl_core.py`` mirrors them)
#: controller states (step names of the lane core's schedule, not Einsum names: "QK" is the state that
#: runs every score product, whatever the cascade calls it)
STATES = ("IDLE", "BSTART", "QK", "WS", "SW", "GO1", "WW", "VP", "GO2", "WD", "DRAIN", "FIN")
_S = {n: i for i, n in enumerate(STATES)}


@dataclass(frozen=True)
class CoreProgram:
    """What the core's controller needs of one lane program (its table entries)."""

    score_base: tuple[int, ...]
    value_base: tuple[int, ...]
    carry: tuple[bool, ...]
    beats: tuple[int, ...]                 # output beats per output (F or 1; 0: one per key of the run)
    sections: Mapping[str, int]            # lane cycles of each section (the sequencer's steps)
    passes: tuple[tuple[int, int, int, int], ...] = ()   # per pass over the keys: score slots lo..hi, chains lo..hi
    outputs: tuple[str, ...] = ()          # output tensors (a wide build's raw flags: CoreShape.handed)
    direct: tuple[bool, ...] = ()          # per score slot: read directly (a switched slot's table bit)

    @staticmethod
    def of(image: Any) -> "CoreProgram":
        prog = image.program
        # beats per output: F, 1, or 0 for an output at every key (a scan's, rtl/lanes/scan.py): num_keys beats
        beats = tuple(prog.values if prog.outputs[name] == "value" else 0 if prog.outputs[name] == "key" else 1
                      for name in image.outputs)
        return CoreProgram(tuple(image.buffers[f"in.score{i}"] for i in range(len(prog.scores))),
                           tuple(image.buffers[f"in.value{i}"] for i in range(len(prog.chains))),
                           tuple(c.carry is not None for c in prog.chains), beats,
                           section_steps(image), passes=tuple(sc + ch for sc, ch in prog.pass_ranges()),
                           outputs=tuple(image.outputs),
                           direct=tuple(n in prog.structure.direct for n in prog.scores))

    def table(self, shape: "CoreShape") -> list[int]:
        """The controller table words (layout: the order of :meth:`LaneCore.elaborate`'s reads; size :meth:`CoreShape.table_size`)."""
        pad = lambda xs, n: list(xs) + [0] * (n - len(xs))   # noqa: E731
        passes = [x for p in self.passes for x in p]
        raw = pad([int(n in shape.handed) for n in self.outputs], shape.outputs) if shape.wide else []
        return (pad(self.score_base, shape.scores) + pad(self.value_base, shape.chains) +
                pad([int(c) for c in self.carry], shape.chains) + [len(self.score_base), len(self.value_base),
                                                                   len(self.beats)] + pad(self.beats, shape.outputs) +
                raw + pad(passes, 4 * shape.passes) + [len(self.passes)] +
                ([sum(1 << i for i, d in enumerate(self.direct) if d)] if any(shape.switched) else []))


def section_steps(image: Any) -> dict[str, int]:
    """Cycles the lane's sequencer spends in each section per run: the section's issue cycles, or one
    cycle for an empty section (``rtl/lanes/lane.py``)."""
    return {name: (s["total"] if s["end"] else 1) for name, s in image.sections.items()}


@dataclass(frozen=True)
class CoreShape:
    """Capacities of one build: array, head sizes, buffers and the products/outputs it serves."""

    rows: int
    cols: int
    head_dim: int
    value_dim: int
    max_keys: int
    max_queries: int
    scores: int
    chains: int
    outputs: int
    bf16_output: bool = True
    direct: tuple[bool, ...] = ()          # per score slot: an input the lanes read per key (no MAC)
    passes: int = 1                         # passes over the key tiles per block (multi-pass programs)
    # per value product: None, or (update product, has an operand memory) of a per-key state chain
    # (rtl/lane_state.py); state_tiles: the key tiles its state registers cover
    states: tuple = ()
    state_tiles: int = 0
    # fixed point, stages: value memories of (code, f) words and the handed-over outputs leave raw
    wide: bool = False
    handed: frozenset = frozenset()
    # per score slot: direct in some programs and a MAC product in others (stages: mla's prologue reads
    # its weights directly in slot 0, its attention stage multiplies in slot 0); a table bit per program
    switched: tuple[bool, ...] = ()
    # an output at every key (a scan on the lanes, rtl/lanes/scan.py): the output buffer holds max_keys beats
    key_outputs: bool = False

    def is_direct(self, i: int) -> bool:
        """Slot ``i`` can be read directly (it has an ``x`` memory)."""
        return i < len(self.direct) and self.direct[i]

    def is_switched(self, i: int) -> bool:
        return i < len(self.switched) and self.switched[i]

    def is_mac(self, i: int) -> bool:
        """Slot ``i`` can be a MAC product (it has ``q`` and ``k`` memories)."""
        return not self.is_direct(i) or self.is_switched(i)
    fixed: Any = None                       # the FixedArith of a fixed-point core (None: bf16)

    @property
    def out_bits(self) -> int:
        """Bits of one output element on ``out_data``."""
        if self.fixed is not None:
            return VALUE_BITS if self.wide else self.fixed.p.output_bits
        return 16 if self.bf16_output else 32

    @property
    def out_slots(self) -> int:
        """Output beats the core keeps per output and lane: F, or max_keys with outputs per key."""
        return max(self.value_dim, self.max_keys) if self.key_outputs else self.value_dim

    @property
    def value_bits(self) -> int:
        """Bits of a lane value (the 2D array's sums and the weights)."""
        return 32 if self.fixed is None else VALUE_BITS

    @property
    def key_tiles(self) -> int:
        return -(-self.max_keys // self.rows)

    @property
    def query_blocks(self) -> int:
        return -(-self.max_queries // self.cols)

    def memories(self) -> list[tuple[str, int, int]]:
        """(name, depth, lanes of bf16 per word) of the operand memories, in load-port order."""
        out = []
        for i in range(self.scores):
            if self.is_mac(i):
                out += [(f"q{i}", self.query_blocks * self.head_dim, self.cols),
                        (f"k{i}", self.key_tiles * self.head_dim, self.rows)]
            if self.is_direct(i):      # word (block, key): the C lanes' values of that key
                out.append((f"x{i}", self.query_blocks * self.key_tiles * self.rows, self.cols))
        for i in range(self.chains):
            out.append((f"v{i}", self.key_tiles * self.value_dim, self.rows))
        for i, st in enumerate(self.states):   # a state chain's update operand: word (block, f), C lanes
            if st is not None and st[1]:
                out.append((f"u{i}", self.query_blocks * self.value_dim, self.cols))
        return out

    def slot_bits(self, name: str) -> int:
        """Bits of one lane's slot in memory ``name``: a bf16 or input code, or a wide build's value."""
        # a wide build (fixed point with stages) hands (code, f) values over as any stage's operands:
        # value memories, query and key memories (mla's QL, KH) and direct slots (AL as the weights) hold
        # value words
        return VALUE_BITS if self.wide and name[0] in "vqkx" else 16

    def table_size(self) -> int:
        return (self.scores + 2 * self.chains + 3 + self.outputs * (2 if self.wide else 1) + 4 * self.passes
                + 1 + int(any(self.switched)))


#: Register stages of a PE's product: the multiply (bf16 x bf16, or a fixed-point value x an input code)
#: is registered before the add, in score products (QK) and value products (VP) alike; 2: a fixed-point
#: PE registers its operands too, a bf16 PE's multiplier its product and output.  The cycle model
#: (``sim/rtl_core.py``, :class:`~einloom.sim.rtl_core.LaneCoreTiming`) reads the drains below.
PRODUCT_STAGES = 2


def qk_drain_cycles() -> int:
    """Cycles ``QK`` stays after its last operand read has left the memory: the last product's stages
    (its add lands in the last of them, before ``SW`` reads the sums)."""
    return PRODUCT_STAGES


def vp_drain_cycles(rows: int) -> int:
    """Cycles ``VP`` stays after its last operand read has left the memory: the systolic column (row k
    multiplies k cycles after the read, adds ``PRODUCT_STAGES`` later into its registered partial
    sum), so the last column sum leaves row R-1's register ``rows + PRODUCT_STAGES`` cycles after the
    read and is written into the lanes' buffers in VP's last cycle, before ``GO2``."""
    return rows + PRODUCT_STAGES


class _Pe(wiring.Component):
    """One bf16 PE: ``fp32_add(base, p)`` with ``p = bf16_mul(a, b)`` of the operands ``PRODUCT_STAGES``
    cycles earlier (the product register); the add is combinational (the caller registers the sum).
    The pair is the golden ``mac`` (FTZ, nearest even): the product is exact, so the register changes
    no bit."""

    def __init__(self):
        super().__init__({"base": In(32), "a": In(16), "b": In(16), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Bf16Mul(latency=PRODUCT_STAGES)
        m.submodules.add = add = Fp32Add(latency=0)
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b), add.a.eq(self.base), add.b.eq(mul.result),
                     self.result.eq(add.result)]
        return m


class _FixedPe(wiring.Component):
    """One fixed-point PE, ``FixedArith.mac(base, a, b)`` split at the product: the exact product of the
    value ``a`` (a lane word) and the input code ``b`` (``frac_bits``), at ``fa + frac_bits`` fraction
    bits, ``PRODUCT_STAGES`` cycles after the operands (their register, the multiply, the product's
    register(s)); then added to ``base`` aligned (a sentinel absorbs),
    combinational (the caller registers the sum).  ``wide``: ``b`` is a value word too (a per-key
    state chain's state, ``rtl/lane_state.py``), the product at ``fa + fb``.

    The alignment's shift amounts and the sum's fraction bits are registered a cycle ahead, from
    ``base_f_next`` (the fraction bits ``base`` will have in the next cycle, which the caller knows:
    it is this PE's or the row above's sum being registered, or +0) and the product's fraction bits
    (one stage before its last register): the add is shift, add and the sentinel select, with no
    fraction-bit arithmetic in series.  The sum is ``FixedArith.add``'s bits wherever the format model
    does not raise (an aligned finite code stays below 2**62); when ``base_f_next`` was not ``base``'s
    fraction bits the result is wrong, so the caller reads it only in the cycles it predicted."""

    def __init__(self, frac_bits: int, wide: bool = False):
        self.frac_bits, self.wide = frac_bits, wide
        super().__init__({"base": In(VALUE_BITS), "a": In(VALUE_BITS), "b": In(VALUE_BITS if wide else 16),
                          "base_f_next": In(signed(F_BITS)), "result": Out(VALUE_BITS)})

    def elaborate(self, platform):
        from einloom.rtl.lanes.fixed_units import NEG, POS, _fields, _is_inf
        assert PRODUCT_STAGES >= 2, "an operand register, then the shifts beside the product's register"
        m = Module()
        # the operand register (the caller's operand selects -> the wide multiply was one stage: the
        # routed sigmoid lane core's path, `state` -> the QK / VP operand select -> the 64 x 16 product
        # -> its register, 35.09 ns)
        a_r = Signal(VALUE_BITS, name="mac_a", reset_less=True)
        b_r = Signal(Value.cast(self.b).shape(), name="mac_b", reset_less=True)
        m.d.sync += [a_r.eq(self.a), b_r.eq(self.b)]
        ca, fa = _fields(m, a_r, "maca")
        if self.wide:
            cb, fb = _fields(m, b_r, "macb")
            inf, zero = _is_inf(ca) | _is_inf(cb), (ca == 0) | (cb == 0)
            mag = Mux(_is_inf(ca), 1, ca) * Mux(_is_inf(cb), 1, cb)
            prod = Signal(signed(CODE_BITS), name="mac_prod")
            m.d.comb += prod.eq(Mux(inf & ~zero, Mux(ca[-1] ^ cb[-1], NEG, POS), mag))
            term = Cat(prod, (fa + fb)[:F_BITS])
        else:
            cb = b_r.as_signed()
            inf = _is_inf(ca)
            prod = Signal(signed(CODE_BITS), name="mac_prod")
            m.d.comb += prod.eq(Mux(inf & (cb != 0), Mux(ca[-1] ^ cb[-1], NEG, POS), Mux(inf, 1, ca) * Mux(inf, 1, cb)))
            term = Cat(prod, (fa + self.frac_bits)[:F_BITS])
        stages = [term]
        for n in range(PRODUCT_STAGES - 1):   # the product register(s)
            reg = Signal(VALUE_BITS, name=f"mac_term{n}", reset_less=True)
            m.d.sync += reg.eq(stages[-1])
            stages.append(reg)
        # a cycle ahead: each operand's left shift max(0, f_other - f_own) (>= 64: the code leaves),
        # and the sum's f = the larger one
        tf_next = stages[-2][CODE_BITS:VALUE_BITS].as_signed()
        bf_next = self.base_f_next
        up_t, up_b = Signal(signed(F_BITS + 1), name="mac_up_t"), Signal(signed(F_BITS + 1), name="mac_up_b")
        m.d.comb += [up_t.eq(bf_next - tf_next), up_b.eq(tf_next - bf_next)]
        sh_t, sh_b = Signal(6, name="mac_sh_t", reset_less=True), Signal(6, name="mac_sh_b", reset_less=True)
        out_t, out_b = Signal(name="mac_out_t", reset_less=True), Signal(name="mac_out_b", reset_less=True)
        f = Signal(signed(F_BITS), name="mac_f", reset_less=True)
        m.d.sync += [sh_t.eq(Mux(up_t < 0, 0, up_t[:6])), out_t.eq(up_t >= CODE_BITS),
                     sh_b.eq(Mux(up_b < 0, 0, up_b[:6])), out_b.eq(up_b >= CODE_BITS),
                     f.eq(Mux(up_t < 0, tf_next, bf_next))]
        # the add: the operands shifted, summed; a sentinel (read before the shift) absorbs
        tc = stages[-1][:CODE_BITS].as_signed()
        bc = self.base[:CODE_BITS].as_signed()
        al_t, al_b = Signal(signed(CODE_BITS), name="mac_al_t"), Signal(signed(CODE_BITS), name="mac_al_b")
        m.d.comb += [al_t.eq(Mux(out_t, 0, (tc << sh_t)[:CODE_BITS])), al_b.eq(Mux(out_b, 0, (bc << sh_b)[:CODE_BITS]))]
        c = Signal(signed(CODE_BITS), name="macadd_sum")
        m.d.comb += c.eq(Mux(_is_inf(bc), bc, Mux(_is_inf(tc), tc, al_b + al_t)))
        m.d.comb += self.result.eq(Cat(c, f))
        return m


def _delays(m: Module, sig, n: int, name: str, reset_less: bool = True) -> list:
    """``[sig, sig one cycle ago, .., sig n cycles ago]`` (a shift register of ``n`` stages)."""
    out = [sig]
    for j in range(1, n + 1):
        reg = Signal(Value.cast(sig).shape(), name=f"{name}_d{j}", reset_less=reset_less)
        m.d.sync += reg.eq(out[-1])
        out.append(reg)
    return out


def _bf16_of(m: Module, name: str, x):
    """``fp32_to_bf16(x)``, combinational (a submodule ``name``)."""
    cv = Fp32ToBf16(latency=0)
    m.submodules[name] = cv
    m.d.comb += cv.a.eq(x)
    return cv.result


def _to_output(m: Module, word, params, name: str):
    """``FixedArith.to_output``: floor to ``output_frac_bits``, saturate to ``output_bits``."""
    from einloom.rtl.lanes.fixed_units import _fields
    c, f = _fields(m, word, name)
    sh = Signal(signed(F_BITS + 2), name=f"{name}_sh")
    m.d.comb += sh.eq(params.output_frac_bits - f)
    moved = Signal(signed(2 * CODE_BITS), name=f"{name}_moved")
    inf = (c >= (1 << 62)) | (c <= -(1 << 62))
    with m.If(inf):
        m.d.comb += moved.eq(c)
    with m.Elif(sh >= 0):
        m.d.comb += moved.eq(c << sh.as_unsigned()[:6])
    with m.Else():
        m.d.comb += moved.eq(c >> (-sh).as_unsigned()[:7])
    lo, hi = -(1 << (params.output_bits - 1)), (1 << (params.output_bits - 1)) - 1
    out = Signal(params.output_bits, name=f"{name}_code")
    m.d.comb += out.eq(Mux(moved < lo, lo, Mux(moved > hi, hi, moved)))
    return out


class LaneCore(wiring.Component):
    """The 2D array + C lanes core (module docstring).  ``images``: the lane programs it is built for
    (the first runs from reset; more than one needs ``programmable``)."""

    def __init__(self, shape: CoreShape, images: Sequence[Any], *, programmable: bool = False):
        from einloom.rtl.lanes.encode import LaneShape
        if len(images) > 1 and not programmable:
            raise ValueError("several programs need programmable=True")
        self.shape, self.images, self.programmable = shape, list(images), programmable
        self.lane_shape = LaneShape.covering(*images) if programmable else LaneShape.covering(images[0])
        self.program0 = CoreProgram.of(images[0])
        s = shape
        word = max(w * s.slot_bits(n) for n, _d, w in s.memories())
        self.n_mem = len(s.memories())
        members = {
            "load_en": In(1), "load_mem": In(max(1, (self.n_mem - 1).bit_length())), "load_addr": In(16),
            "load_data": In(word),
            "start": In(1), "num_queries": In(16), "num_keys": In(16), "blocks": In(16), "tiles": In(16),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cycles": Out(32), "busy_2d": Out(32),
            "out_valid": Out(1), "out_ready": In(1), "out_tag": Out(4), "out_index": Out(16), "out_block": Out(16),
            "out_data": Out(s.cols * s.out_bits), "out_lane_valid": Out(s.cols),
        }
        if programmable:
            lanes_port = {"prog_en": In(1), "prog_target": In(2), "prog_addr": In(16),
                          "prog_data": In(self._prog_width())}
            members.update(lanes_port)
        super().__init__(members)

    def _wide(self, m: Module, wide: bool, code):
        """``code`` as a fixed-point value word (sign-extended, ``frac_bits``: the wide fixed MAC's
        operand, a direct slot's input), else itself."""
        if not wide:
            return code
        c = Signal(signed(CODE_BITS))
        m.d.comb += c.eq(code.as_signed())
        return Cat(c, Const(self.shape.fixed.p.frac_bits, F_BITS))

    def _command_fits(self):
        """True when the command on the ports is within the build: at most the memories' key tiles (and
        the state registers' tiles) and query blocks, keys and queries within the buffers and within
        ``tiles x rows`` / ``blocks x cols``.  A command past them is refused: the core stays idle and
        ``error`` is high until the next command that fits (it would otherwise read past its memories
        or drop keys, a silently wrong result)."""
        s = self.shape
        tiles = min(s.key_tiles, s.state_tiles) if any(st is not None for st in s.states) else s.key_tiles
        return ((self.tiles <= tiles) & (self.blocks <= s.query_blocks) & (self.num_keys <= s.max_keys)
                & (self.num_queries <= s.max_queries) & (self.num_keys <= self.tiles * s.rows)
                & (self.num_queries <= self.blocks * s.cols))

    def _prog_width(self) -> int:
        from einloom.rtl.lanes.lane import _layouts
        _, _, bundle_l, section_l = _layouts(self.lane_shape)
        return max(bundle_l.size, section_l.size, 32)

    def elaborate(self, platform):
        from einloom.rtl.lanes.lane import Lane
        m = Module()
        s = self.shape
        R, C, E, F = s.rows, s.cols, s.head_dim, s.value_dim

        # ---- lanes -----------------------------------------------------------------------------
        lanes = []
        for c in range(C):
            lane = Lane(self.images[0], self.lane_shape, programmable=self.programmable)
            m.submodules[f"lane{c}"] = lane
            lanes.append(lane)
        l0 = lanes[0]

        # ---- controller table (fixed: constants; programmable: loaded with target 3) ------------
        words = self.program0.table(s)
        if self.programmable:
            table = [Signal(16, name=f"tab{i}", init=w) for i, w in enumerate(words)]
            with m.If(self.prog_en & (self.prog_target == 3)):
                for i, t in enumerate(table):
                    with m.If(self.prog_addr == i):
                        m.d.sync += t.eq(self.prog_data[:16])
            for lane in lanes:
                m.d.comb += [lane.load_en.eq(self.prog_en & (self.prog_target != 3)),
                             lane.load_target.eq(self.prog_target), lane.load_addr.eq(self.prog_addr),
                             lane.load_data.eq(self.prog_data)]
        else:
            table = [Const(w, 16) for w in words]
        pos = 0
        score_base = table[pos:pos + s.scores]; pos += s.scores
        value_base = table[pos:pos + s.chains]; pos += s.chains
        carry = table[pos:pos + s.chains]; pos += s.chains
        _n_scores, _n_chains, n_outputs = table[pos:pos + 3]; pos += 3
        beats = table[pos:pos + s.outputs]; pos += s.outputs
        raw = table[pos:pos + s.outputs] if s.wide else []
        pos += s.outputs if s.wide else 0
        pass_lo = table[pos:pos + 4 * s.passes:4]              # per pass: first score slot,
        pass_hi = table[pos + 1:pos + 4 * s.passes:4]          # one past its last,
        chain_lo = table[pos + 2:pos + 4 * s.passes:4]         # first value product, one past its last
        chain_hi = table[pos + 3:pos + 4 * s.passes:4]
        n_passes = table[pos + 4 * s.passes]
        pos += 4 * s.passes + 1
        # per score slot: read directly in this program (a constant unless the slot is switched)
        dbit = [(table[pos][i] if s.is_switched(i) else Const(int(s.is_direct(i)), 1))
                for i in range(max(1, s.scores))]

        # ---- operand memories ------------------------------------------------------------------
        ports = {}
        for idx, (name, depth, width) in enumerate(s.memories()):
            mem = Memory(shape=width * s.slot_bits(name), depth=depth, init=[])
            m.submodules[f"mem_{name}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(self.load_addr), wp.data.eq(self.load_data[:width * s.slot_bits(name)]),
                         wp.en.eq(self.load_en & (self.load_mem == idx))]
            ports[name] = rp

        # ---- state -----------------------------------------------------------------------------
        state = Signal(range(len(STATES)))
        blk, tile = Signal(16), Signal(16)
        nblocks, ntiles, nkeys = Signal(16), Signal(16), Signal(16)
        j, i_idx, e_idx = Signal(16), Signal(8), Signal(16)       # step counter, product, inner index
        pas = Signal(8)                                           # the pass over the key tiles
        drain = Signal(range(vp_drain_cycles(R) + 1))            # QK's, VP's cycles after the last read
        s_lo, s_hi = Array(pass_lo)[pas], Array(pass_hi)[pas]     # this pass's score slots and value products
        c_lo, c_hi = Array(chain_lo)[pas], Array(chain_hi)[pas]
        st = lambda n: state == _S[n]   # noqa: E731
        refused = Signal()     # the last command was past the build's capacities (see command_fits)
        m.d.comb += [self.busy.eq(~st("IDLE")), self.done.eq(st("FIN")), self.error.eq(refused)]
        with m.If(~st("IDLE")):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(st("IDLE") & self.start):
            m.d.sync += [self.cycles.eq(0), self.busy_2d.eq(0)]

        # ---- the 2D array: R x C PEs, shared by the score (QK) and value (VP) products ----------
        # Each PE multiplies into its product register (PRODUCT_STAGES) and adds after it.  QK: every
        # PE accumulates, one add per cycle, into acc.  VP: a systolic column: row k multiplies value
        # column f k cycles after its read and adds PRODUCT_STAGES later to row k-1's registered
        # partial sum (row 0: the carry-in), into its own sum register; row R-1's sum is written into
        # the lanes' buffers and csum.
        VB, fixed = s.value_bits, s.fixed
        PS = PRODUCT_STAGES
        acc = [[[Signal(VB, name=f"acc{i}_{k}_{c}") for c in range(C)] for k in range(R)] for i in range(s.scores)]
        wgt = [[[Signal(16 if fixed is None else VB, name=f"w{i}_{k}_{c}") for c in range(C)] for k in range(R)]
               for i in range(s.chains)]
        wvl = [[[Signal(name=f"wv{i}_{k}_{c}") for c in range(C)] for k in range(R)] for i in range(s.chains)]
        csum = [[[Signal(VB, name=f"cs{i}_{f}_{c}") for c in range(C)] for f in range(F)] for i in range(s.chains)]
        cval = [[[Signal(name=f"csv{i}_{f}_{c}") for c in range(C)] for f in range(F)] for i in range(s.chains)]
        # VP: row k's registered partial sum of the value column it works on, and whether any key was present
        vsum = [[Signal(VB, name=f"vsum_{k}_{c}", reset_less=True) for c in range(C)] for k in range(R)]
        vany = [[Signal(name=f"vany_{k}_{c}", reset_less=True) for c in range(C)] for k in range(R)]
        wide = fixed is not None and (s.wide or any(x is not None for x in s.states))
        pes = [[_Pe() if fixed is None else _FixedPe(fixed.p.frac_bits, wide) for c in range(C)] for k in range(R)]
        for k in range(R):
            for c in range(C):
                m.submodules[f"pe_{k}_{c}"] = pes[k][c]

        # pipeline stage of the memory read: (valid, product, inner index) of the data now out
        rd_v, rd_i, rd_e = Signal(), Signal(8), Signal(16)
        m.d.sync += rd_v.eq(0)
        mac_slots = [i for i in range(s.scores) if s.is_mac(i)]
        QB = s.slot_bits("q0")
        qdata = Array([ports[f"q{i}"].data if i in mac_slots else Const(0, C * QB)
                       for i in range(s.scores)])[rd_i] if mac_slots else Const(0, C * QB)
        KB = s.slot_bits("k0")
        kdata = Array([ports[f"k{i}"].data if i in mac_slots else Const(0, R * KB)
                       for i in range(s.scores)])[rd_i] if mac_slots else Const(0, R * KB)
        direct_now = Array(dbit)[rd_i]
        vdata = Array([ports[f"v{i}"].data for i in range(s.chains)])[rd_i] if s.chains else Const(0)
        key0 = Signal(16)
        m.d.comb += key0.eq(tile * R)

        in_qk, in_vp = st("QK") & rd_v, st("VP") & rd_v
        # the reads' (valid, product, inner index) travelling with the products: QK's to its add stage,
        # VP's down the column (index n: n cycles after the read; row k multiplies at k, adds at k + PS)
        qv = _delays(m, in_qk & ~direct_now, PS, "qk_v", reset_less=False)
        qi = _delays(m, rd_i, PS, "qk_i")
        vv = _delays(m, in_vp, R + PS, "vp_v", reset_less=False)
        vi, ve = _delays(m, rd_i, R + PS, "vp_i"), _delays(m, rd_e, R + PS, "vp_e")
        VSB = VALUE_BITS if s.wide else 16
        vrow = [_delays(m, vdata[k * VSB:(k + 1) * VSB], k, f"vrow{k}")[k] for k in range(R)]   # row k's V, k late
        qword = []                              # fixed point: q as a lane value (code, frac_bits)
        for c in range(C) if fixed is not None else ():
            qc = Signal(signed(CODE_BITS), name=f"qcode{c}")
            if s.wide:      # the query memory holds value words (a handed-over operand: mla's QL)
                qword.append(qdata[c * QB:(c + 1) * QB])
                continue
            m.d.comb += qc.eq(qdata[c * 16:(c + 1) * 16].as_signed())
            qword.append(Cat(qc, Const(fixed.p.frac_bits, F_BITS)))
        states = None
        if any(x is not None for x in s.states):      # per-key state chains (rtl/lane_state.py), row k at k
            from einloom.rtl.lane_state import StateChains
            states = StateChains(m, s, lanes=lanes, ports=ports, rd_i=rd_i, rd_e=rd_e, tile=tile, blk=blk,
                                 e_idx=e_idx, clear=st("IDLE") & self.start, row_i=vi[:R], row_e=ve[:R],
                                 row_write=vv[:R], delays=lambda sig, n, name: _delays(m, sig, n, name))
        # VP's carry-in at row 0's add: the running sum of the block (a product over the whole key rank),
        # selected at the read and registered (this VP writes csum[i][f] only after reading it)
        carry_in = Array(carry)[rd_i] != 0
        start_line = [_delays(m, Mux(carry_in, Array([Array([csum[i][f][c] for f in range(F)])
                                                      for i in range(s.chains)])[rd_i][rd_e], 0), PS, f"cin{c}")
                      for c in range(C)]
        start_sum = [line[PS] for line in start_line]
        start_any = [_delays(m, Mux(carry_in, Array([Array([cval[i][f][c] for f in range(F)])
                                                     for i in range(s.chains)])[rd_i][rd_e], 0), PS, f"cinv{c}")[PS]
                     for c in range(C)]
        q_first_line = _delays(m, rd_e == 0, PS, "qk_first")     # QK's add from +0 (e = 0), decoded at the read
        q_first = q_first_line[PS]
        def prev_of(k: int, c: int):
            """Row k's value-product base: the carry-in (row 0) or row k-1's registered sum."""
            return start_sum[c] if k == 0 else vsum[k - 1][c]
        def f_of(word):
            """A value word's fraction bits."""
            return Value.cast(word)[CODE_BITS:VALUE_BITS].as_signed()
        # a row's value-product add lands in its sum when the key is present
        present = [[Array([wvl[i][k][c] for i in range(s.chains)])[vi[k + PS]] & (key0 + k < nkeys)
                    for c in range(C)] for k in range(R)]
        for c in range(C):
            for k in range(R):
                pe = pes[k][c]
                # the multiply: QK's operands as read, VP row k's k cycles after its read
                with m.If(st("QK")):
                    m.d.comb += [pe.a.eq(qdata[c * 16:(c + 1) * 16] if fixed is None else qword[c]),
                                 pe.b.eq(kdata[k * KB:(k + 1) * KB] if s.wide else
                                         self._wide(m, wide, kdata[k * 16:(k + 1) * 16]))]
                with m.Else():
                    vk = vrow[k] if s.wide else self._wide(m, wide, vrow[k])
                    m.d.comb += [pe.a.eq(Array([wgt[i][k][c] for i in range(s.chains)])[vi[k]]),
                                 pe.b.eq(vk if states is None else states.operand(m, k, c, vk))]
                # the add, PS cycles later: QK accumulates (from +0 at e = 0), VP adds to the partial sum
                prev = prev_of(k, c)
                prev_any = start_any[c] if k == 0 else vany[k - 1][c]
                with m.If(qv[PS]):
                    m.d.comb += pe.base.eq(Mux(q_first, 0, Array([acc[i][k][c] for i in range(s.scores)])[qi[PS]]))
                with m.Else():
                    m.d.comb += pe.base.eq(prev)
                with m.If(vv[k + PS]):
                    m.d.sync += [vsum[k][c].eq(Mux(present[k][c], pe.result, prev)),
                                 vany[k][c].eq(prev_any | present[k][c])]
                if fixed is not None:
                    # the fraction bits of the PE's base in the next cycle (the PE registers its shifts from
                    # them): QK's next add is from +0 (e = 0) or onto this cycle's sum (the same score
                    # slot's previous e, one cycle earlier); VP's onto row k-1's sum as it is registered
                    # now (row 0: the carry-in one stage before its register)
                    if k == 0:
                        vp_f = f_of(start_line[c][PS - 1])
                    else:
                        above = pes[k - 1][c]
                        vp_f = Mux(vv[k - 1 + PS], Mux(present[k - 1][c], f_of(above.result), f_of(prev_of(k - 1, c))),
                                   f_of(vsum[k - 1][c]))
                    m.d.comb += pe.base_f_next.eq(Mux(qv[PS - 1], Mux(q_first_line[PS - 1], 0, f_of(pe.result)), vp_f))
                with m.If(qv[PS]):
                    for i in mac_slots:
                        with m.If((qi[PS] == i) & ~dbit[i]):
                            m.d.sync += acc[i][k][c].eq(pe.result)
                with m.If(in_qk):
                    for i in range(s.scores):
                        if s.is_direct(i):     # the input's bf16 value, widened exactly, into row rd_e
                            with m.If((rd_i == i) & (rd_e == k) & dbit[i]):
                                XB = s.slot_bits(f"x{i}")
                                xc = ports[f"x{i}"].data[c * XB:(c + 1) * XB]
                                m.d.sync += acc[i][k][c].eq(Cat(Const(0, 16), xc) if fixed is None else
                                                            xc if s.wide else self._wide(m, True, xc))
        with m.If((in_qk & ~direct_now) | in_vp):
            m.d.sync += self.busy_2d.eq(self.busy_2d + 1)

        # ---- lane write port: scores (SW) and column sums (VP, as they leave row R-1) -------------
        sw_i, sw_k = Signal(8), Signal(16)
        oi, oe = vi[R + PS], ve[R + PS]        # the value column whose sum is in row R-1's register
        for c, lane in enumerate(lanes):
            m.d.comb += [lane.tiles.eq(ntiles), lane.query.eq(blk * C + c), lane.start.eq(st("BSTART")),
                         lane.go.eq(st("GO1") | st("GO2"))]
            sw_data = Array([Array([acc[i][k][c] for k in range(R)]) for i in range(s.scores)])[sw_i][sw_k]
            with m.If(st("SW")):
                m.d.comb += [lane.buf_we.eq(1), lane.buf_addr.eq(Array(score_base)[sw_i] + sw_k),
                             lane.buf_data.eq(sw_data), lane.buf_valid.eq(key0 + sw_k < nkeys)]
            with m.If(vv[R + PS]):
                m.d.comb += [lane.buf_we.eq(1), lane.buf_addr.eq(Array(value_base)[oi] + oe),
                             lane.buf_data.eq(vsum[R - 1][c]), lane.buf_valid.eq(vany[R - 1][c])]
                for i in range(s.chains):
                    for f in range(F):
                        with m.If((oi == i) & (oe == f)):
                            m.d.sync += [csum[i][f][c].eq(vsum[R - 1][c]), cval[i][f][c].eq(vany[R - 1][c])]
            # weights: kept by the PEs of column c (bf16: rounded as mac rounds them; fixed: the value)
            weight = _bf16_of(m, f"wround{c}", lane.weight_data) if fixed is None else lane.weight_data
            for i in range(s.chains):
                for k in range(R):
                    with m.If(lane.weight_en & (lane.weight_tag == i) & (lane.weight_index == k)):
                        m.d.sync += [wgt[i][k][c].eq(weight), wvl[i][k][c].eq(lane.weight_valid)]

        # ---- outputs of the block: kept, then streamed -------------------------------------------
        ow = s.out_bits
        OF = s.out_slots
        obuf = [[[Signal(ow, name=f"o{o}_{f}_{c}") for c in range(C)] for f in range(OF)] for o in range(s.outputs)]
        ovld = [[[Signal(name=f"ov{o}_{f}_{c}") for c in range(C)] for f in range(OF)] for o in range(s.outputs)]
        for c, lane in enumerate(lanes):
            if fixed is not None:
                value = _to_output(m, lane.out_data, fixed.p, f"oconv{c}")
                if s.wide:        # a handed-over output leaves as its value word, the others sign-extended
                    code = Signal(signed(VALUE_BITS), name=f"ocode{c}")
                    m.d.comb += code.eq(value.as_signed())
                    value = Mux(Array(raw)[lane.out_tag] != 0, lane.out_data, code)
            elif s.bf16_output:
                value = _bf16_of(m, f"oround{c}", lane.out_data)
            else:
                value = lane.out_data
            oidx = lane.out_index
            if s.key_outputs:       # an output at every key: the lane's element k of tile `tile` is key tile*R + k
                oidx = Signal(16, name=f"oidx{c}")
                m.d.comb += oidx.eq(Mux(Array(beats)[lane.out_tag] == 0, key0 + lane.out_index, lane.out_index))
            for o in range(s.outputs):
                for f in range(OF):
                    with m.If(lane.out_en & (lane.out_tag == o) & (oidx == f)):
                        m.d.sync += [obuf[o][f][c].eq(value), ovld[o][f][c].eq(lane.out_valid)]
        o_i, o_f = Signal(8), Signal(16)
        m.d.comb += [self.out_valid.eq(st("DRAIN")), self.out_tag.eq(o_i), self.out_index.eq(o_f),
                     self.out_block.eq(blk),
                     self.out_data.eq(Cat(*[Array([Array([obuf[o][f][c] for f in range(OF)]) for o in range(s.outputs)])
                                            [o_i][o_f] for c in range(C)])),
                     self.out_lane_valid.eq(Cat(*[Array([Array([ovld[o][f][c] for f in range(OF)])
                                                         for o in range(s.outputs)])[o_i][o_f] for c in range(C)]))]

        # ---- controller ------------------------------------------------------------------------
        go_to = lambda n: state.eq(_S[n])   # noqa: E731
        with m.Switch(state):
            with m.Case(_S["IDLE"]):
                with m.If(self.start & ~self._command_fits()):
                    m.d.sync += refused.eq(1)
                with m.Elif(self.start):
                    m.d.sync += [refused.eq(0), go_to("BSTART"), blk.eq(0), nblocks.eq(self.blocks), ntiles.eq(self.tiles),
                                 nkeys.eq(self.num_keys)]
            with m.Case(_S["BSTART"]):
                m.d.sync += [go_to("QK"), tile.eq(0), i_idx.eq(pass_lo[0]), e_idx.eq(0), j.eq(0), pas.eq(0)]
                for i in range(s.chains):
                    for f in range(F):
                        for c in range(C):
                            m.d.sync += [csum[i][f][c].eq(0), cval[i][f][c].eq(0)]
            with m.Case(_S["QK"]):
                issuing = i_idx < s_hi
                for i in range(s.scores):
                    if s.is_direct(i):
                        m.d.comb += ports[f"x{i}"].addr.eq((blk * s.key_tiles + tile) * R + e_idx)
                    if s.is_mac(i):
                        m.d.comb += [ports[f"q{i}"].addr.eq(blk * E + e_idx), ports[f"k{i}"].addr.eq(tile * E + e_idx)]
                last = Array([Mux(dbit[i], R - 1, E - 1) for i in range(max(1, s.scores))])[i_idx]
                with m.If(issuing):
                    m.d.sync += [rd_v.eq(1), rd_i.eq(i_idx), rd_e.eq(e_idx)]
                    with m.If(e_idx == last):
                        m.d.sync += [e_idx.eq(0), i_idx.eq(i_idx + 1)]
                    with m.Else():
                        m.d.sync += e_idx.eq(e_idx + 1)
                with m.Elif(drain == qk_drain_cycles()):      # the last product's add has landed
                    m.d.sync += [go_to("WS"), i_idx.eq(0), e_idx.eq(0), drain.eq(0)]
                with m.Else():
                    m.d.sync += drain.eq(drain + 1)
            with m.Case(_S["WS"]):
                with m.If(l0.wait_scores):
                    m.d.sync += [go_to("SW"), sw_i.eq(s_lo), sw_k.eq(0)]
            with m.Case(_S["SW"]):
                with m.If(sw_k == R - 1):
                    m.d.sync += [sw_k.eq(0), sw_i.eq(sw_i + 1)]
                    with m.If(sw_i + 1 == s_hi):
                        m.d.sync += go_to("GO1")
                with m.Else():
                    m.d.sync += sw_k.eq(sw_k + 1)
            with m.Case(_S["GO1"]):
                m.d.sync += go_to("WW")
            with m.Case(_S["WW"]):
                with m.If(l0.wait_values):
                    m.d.sync += [go_to("VP"), i_idx.eq(c_lo), e_idx.eq(0)]
            with m.Case(_S["VP"]):
                issuing = i_idx < c_hi
                for i in range(s.chains):
                    m.d.comb += ports[f"v{i}"].addr.eq(tile * F + e_idx)
                with m.If(issuing):
                    m.d.sync += [rd_v.eq(1), rd_i.eq(i_idx), rd_e.eq(e_idx)]
                    with m.If(e_idx == F - 1):
                        m.d.sync += [e_idx.eq(0), i_idx.eq(i_idx + 1)]
                    with m.Else():
                        m.d.sync += e_idx.eq(e_idx + 1)
                with m.Elif(drain == vp_drain_cycles(R)):     # the last column sum is in the buffers
                    m.d.sync += [go_to("GO2"), drain.eq(0)]
                with m.Else():
                    m.d.sync += drain.eq(drain + 1)
            with m.Case(_S["GO2"]):
                m.d.sync += [i_idx.eq(s_lo), e_idx.eq(0)]
                with m.If(tile + 1 < ntiles):
                    m.d.sync += [go_to("QK"), tile.eq(tile + 1)]
                with m.Elif(pas + 1 < n_passes):      # the next pass over the key tiles (K/V resident)
                    m.d.sync += [go_to("QK"), tile.eq(0), pas.eq(pas + 1),
                                 i_idx.eq(Array(pass_lo + [Const(0, 16)])[pas + 1])]
                with m.Else():
                    m.d.sync += go_to("WD")
            with m.Case(_S["WD"]):
                with m.If(l0.done):
                    m.d.sync += [go_to("DRAIN"), o_i.eq(0), o_f.eq(0)]
            with m.Case(_S["DRAIN"]):
                with m.If(self.out_ready):
                    nb = Array(beats)[o_i]
                    with m.If(o_f + 1 >= (Mux(nb == 0, nkeys, nb) if s.key_outputs else nb)):
                        m.d.sync += [o_f.eq(0), o_i.eq(o_i + 1)]
                        with m.If(o_i + 1 >= n_outputs):
                            with m.If(blk + 1 < nblocks):
                                m.d.sync += [go_to("BSTART"), blk.eq(blk + 1)]
                            with m.Else():
                                m.d.sync += go_to("FIN")
                    with m.Else():
                        m.d.sync += o_f.eq(o_f + 1)
            with m.Case(_S["FIN"]):
                m.d.sync += go_to("IDLE")
        return m
