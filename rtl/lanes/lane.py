"""The Amaranth 1D lane: executes a compiled lane program (:mod:`.encode`'s image) on fp32 values.

One lane serves one query column.  Its datapath is built from the program's op classes only
(:mod:`.units`), its register file holds every register of the program (value + valid bit), and a
static modulo schedule issues up to two instructions per cycle (``main`` and ``coord``), so the
cycles are those :meth:`~einloom.rtl.lanes.isa.Program.cycles` predicts.

Interface (narrow, for the 2D array's controller; all strobes single-cycle):

* ``start`` with ``tiles`` (key tiles of the block) and ``query`` (the lane's query index): runs
  ``init``, then per tile waits in ``wait_scores`` for the tile's scores, which the 2D array writes
  into the lane's ``in.score<i>`` buffer through ``buf_we``/``buf_addr``/``buf_data``/``buf_valid``
  (addresses: ``Image.buffers`` plus the key index) and confirms with ``go``; the lane then runs
  ``begin`` .. ``merge`` and emits the R weights on ``weight_*`` (``weight_tag`` = value product,
  ``weight_index`` = key, ``weight_valid`` = present); it waits in ``wait_values`` for the F column
  sums (``in.value<i>``, same write port, then ``go``), runs ``value`` and ``commit``; after the last
  tile ``final`` and ``output`` emit the outputs on ``out_*``, and ``done`` pulses.
* ``busy`` is high on the cycles a section issues: their count per block is ``Image.cycles(tiles)``.
  Each step of the sequencer (section, wait, done) takes at least one cycle; empty sections take one
  cycle that is not ``busy``.
* ``programmable=True`` adds the load port (``load_en``, ``load_target``: 0 bundle, 1 section table,
  2 constant; ``load_addr``, ``load_data``) that replaces the program at run time (between blocks);
  the lane's capacities (:class:`~einloom.rtl.lanes.encode.LaneShape`) are fixed at generation.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.lanes.encode import COORD_FRAC, COORD_NAMES, COORD_OPS, MAIN_OPS, Image, LaneShape
from einloom.rtl.lanes.isa import PASS_SECTIONS, section_name
from einloom.rtl.lanes.fixed_units import (CODE_BITS, F_BITS, FIXED_UNITS, NEG, POS, VALUE_BITS, _aligned,
                                           exp_constant, pack_value)
from einloom.rtl.lanes.units import FIXED_FN_UNITS, FN_UNITS, SIGN, UNITS

NEG_INF, POS_INF = 0xFF800000, 0x7F800000
STEP_BITS = 4


def _layouts(shape: LaneShape):
    aw, sb = shape.addr_bits, max(1, (shape.stages - 1).bit_length())
    main = data.StructLayout({"valid": 1, "op": 5, "sub": 3, "tag": 4, "stage": sb, "dst": aw, "dix": 1,
                              "a": aw, "aix": 1, "b": aw, "bix": 1, "c": aw, "cix": 1})
    coord = data.StructLayout({"valid": 1, "op": 3, "sub": 3, "stage": sb, "dst": aw, "dix": 1,
                               "a": aw, "aix": 1, "b": aw, "bix": 1})
    bundle = data.StructLayout({"main": main, "coord": coord})
    bb = max(1, (shape.bundles - 1).bit_length())
    section = data.StructLayout({"base": bb, "ii": bb + 1, "kind": 2, "end": 16, "total": 16, "last": 1})
    return main, coord, bundle, section


def pack_image(image: Image, shape: LaneShape) -> dict[str, list[int]]:
    """The words the lane's memories hold for ``image``: ``bundles``, ``sections``, ``constants``."""
    _, _, bundle_l, section_l = _layouts(shape)
    bundles = []
    for word in image.bundles + [{"main": None, "coord": None}] * (shape.bundles - len(image.bundles)):
        val = {}
        for slot in ("main", "coord"):
            f = word[slot]
            if f is None:
                val[slot] = {"valid": 0}
            else:
                keys = [k for k in bundle_l.members[slot].members if k != "valid"]
                val[slot] = {"valid": 1, **{k: f[k] for k in keys}}
        bundles.append(_pack(bundle_l, val))
    empty = {"base": 0, "ii": 1, "kind": 0, "end": 0, "total": 0}     # a pass the program does not have
    sections = [_pack(section_l, image.sections.get(name, empty)) for name in shape.table_names]
    consts = []
    fixed = image.fixed
    for kind, v in image.constants + [("fp", 0.0)] * (shape.constants - len(image.constants)):
        if kind == "fp" and fixed is not None:                 # the format's constant: (code, f)
            c = fixed.const(v)
            consts.append(pack_value(int(c["c"]), int(c["f"])))
        elif kind == "exp":                                    # a fixed exp's folded constant
            consts.append(pack_value(exp_constant(v, fixed.p.scale_bits), 0))
        elif kind == "fp":
            from einloom.sim.formats.arith.fp32 import fp32_bits
            consts.append(int(fp32_bits(v)) & 0xFFFFFFFF)
        else:
            consts.append(int(round(v * (1 << COORD_FRAC))) & 0xFFFFFFFF)
    return {"bundles": bundles, "sections": sections, "constants": consts}


def _pack(layout: data.StructLayout, values: dict) -> int:
    word = 0
    for name, member in layout:
        v = values.get(name, 0)
        if isinstance(member.shape, data.StructLayout):
            v = _pack(member.shape, v if isinstance(v, dict) else {})
        width = data.Layout.cast(member.shape).size if isinstance(member.shape, data.Layout) else \
            member.width
        if int(v) >= (1 << width) or int(v) < 0:
            raise ValueError(f"field {name} = {v} does not fit {width} bits")
        word |= int(v) << member.offset
    return word


class Lane(wiring.Component):
    """One 1D lane running ``image`` (see the module docstring).

    Parameters
    ----------
    image : Image
        The program it runs from reset (:func:`~einloom.rtl.lanes.encode.encode`).
    shape : LaneShape, optional
        Capacities (default: exactly ``image``'s); give a larger one for a programmable lane.
    programmable : bool
        Add the load port.
    """

    def __init__(self, image: Image, shape: LaneShape | None = None, *, programmable: bool = False):
        self.image = image
        self.shape = shape or LaneShape.covering(image)
        problems = self.shape.fits(image)
        if problems:
            raise ValueError("the image does not fit the lane: " + "; ".join(problems))
        self.programmable = programmable
        self.words = pack_image(image, self.shape)
        self.fixed = image.fixed
        W = self.width = VALUE_BITS if self.fixed is not None else 32
        s = self.shape
        main_l, coord_l, bundle_l, section_l = _layouts(s)
        self.layouts = (main_l, coord_l, bundle_l, section_l)
        ib = s.index_bits
        members = {
            "start": In(1), "tiles": In(16), "query": In(16), "go": In(1),
            "buf_we": In(1), "buf_addr": In(s.addr_bits), "buf_data": In(W), "buf_valid": In(1),
            "wait_scores": Out(1), "wait_values": Out(1), "busy": Out(1), "done": Out(1), "idle": Out(1),
            "weight_en": Out(1), "weight_tag": Out(4), "weight_index": Out(ib), "weight_data": Out(W),
            "weight_valid": Out(1),
            "out_en": Out(1), "out_tag": Out(4), "out_index": Out(ib), "out_data": Out(W), "out_valid": Out(1),
        }
        if programmable:
            members.update({"load_en": In(1), "load_target": In(2), "load_addr": In(16),
                            "load_data": In(max(bundle_l.size, section_l.size, W))})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s = self.shape
        main_l, coord_l, bundle_l, section_l = self.layouts
        R, F = s.tile, s.values
        n_regs = s.registers

        # ---- storage ---------------------------------------------------------------------------
        W, fixed = self.width, self.fixed
        regs = [Signal(W, name=f"r{i}") for i in range(n_regs)]
        rvalid = [Signal(1, name=f"v{i}") for i in range(n_regs)]
        consts = [Signal(W, name=f"k{i}", init=w) for i, w in enumerate(self.words["constants"])]
        bundles = [Signal(bundle_l.size, name=f"b{i}", init=w) for i, w in enumerate(self.words["bundles"])]
        names = s.table_names
        sections = [Signal(section_l.size, name=f"sec_{n.replace('.', '_')}", init=w)
                    for n, w in zip(names, self.words["sections"])]
        if not self.programmable:       # a fixed program: constants (Yosys folds them)
            consts = [Const(w, W) for w in self.words["constants"]]
            bundles = [Const(w, bundle_l.size) for w in self.words["bundles"]]
            sections = [Const(w, section_l.size) for w in self.words["sections"]]
        else:
            with m.If(self.load_en):
                for target, mem in ((0, bundles), (1, sections), (2, consts)):
                    with m.If(self.load_target == target):
                        for i, word in enumerate(mem):
                            with m.If(self.load_addr == i):
                                m.d.sync += word.eq(self.load_data[:len(word)])

        # ---- sequencer --------------------------------------------------------------------------
        mode = Signal(range(5))                      # 0 idle, 1 run, 2 wait scores, 3 wait values, 4 done
        sec = Signal(range(len(names)))
        pas = Signal(range(max(2, s.passes)))       # the pass over the key tiles
        tile = Signal(16)
        ntiles = Signal(16)
        query = Signal(16)
        cyc = Signal(16)
        slot = Signal(16)
        rnd = Signal(16)
        # the next section and slot (the sequencer below assigns these; sec and slot take them at the
        # edge): the section entry and the bundle word are registered from them, so the fetch (section
        # table, base + slot, bundle table) is a cycle of its own ahead of the operand reads.  The
        # routed 2x2 int8 sigmoid lane core's path at 33.18 MHz was `sec` -> section table -> bundle
        # table -> the operand address add -> the register read mux -> `av_q` (30.14 ns)
        sec_n, slot_n = Signal.like(sec, name="sec_next"), Signal.like(slot, name="slot_next")
        m.d.comb += [sec_n.eq(sec), slot_n.eq(slot)]
        m.d.sync += [sec.eq(sec_n), slot.eq(slot_n)]
        entry_n = Signal(section_l, name="entry_next")
        m.d.comb += entry_n.eq(Array(sections)[sec_n])
        entry = Signal(section_l)                    # = sections[sec], registered
        m.d.sync += entry.eq(entry_n)
        count = Signal(16)
        m.d.comb += count.eq(Mux(entry.kind == 1, R, Mux(entry.kind == 2, F, 1)))
        total = entry.total                         # (count - 1) * II + end, computed at encoding
        running = Signal()
        m.d.comb += [running.eq((mode == 1) & (entry.end != 0)), self.busy.eq(running),
                     self.wait_scores.eq(mode == 2), self.wait_values.eq(mode == 3), self.idle.eq(mode == 0)]
        idx = {n: i for i, n in enumerate(names)}
        last = Signal()
        m.d.comb += last.eq(~running | (cyc == total - 1))
        m.d.sync += self.done.eq(0)

        def goto(section: str | None, new_mode: int = 1):
            """The sync statements of a jump (mode, counters); the slot and section go to the next-state
            signals, here, under the caller's conditions."""
            m.d.comb += slot_n.eq(0)
            if section is not None:
                m.d.comb += sec_n.eq(idx[section])
            return [mode.eq(new_mode), cyc.eq(0), rnd.eq(0)]

        with m.Switch(mode):
            with m.Case(0):
                with m.If(self.start):
                    m.d.sync += [ntiles.eq(self.tiles), query.eq(self.query), tile.eq(0), pas.eq(0)] + goto("init")
            with m.Case(1):
                with m.If(~last):
                    m.d.sync += cyc.eq(cyc + 1)
                    with m.If(slot == entry.ii - 1):
                        m.d.comb += slot_n.eq(0)
                        m.d.sync += rnd.eq(rnd + 1)
                    with m.Else():
                        m.d.comb += slot_n.eq(slot + 1)
                with m.Else():
                    with m.Switch(sec):
                        for k in range(s.passes):
                            sn = {b: section_name(b, k) for b in PASS_SECTIONS}
                            with m.Case(idx[sn["init"]]):
                                m.d.sync += goto(None, 2)
                                with m.If(ntiles == 0):
                                    m.d.sync += goto(sn["final"])
                            for a, b in (("begin", "score"), ("score", "tile"), ("tile", "weight"),
                                         ("weight", "merge"), ("value", "commit")):
                                with m.Case(idx[sn[a]]):
                                    m.d.sync += goto(sn[b])
                            with m.Case(idx[sn["merge"]]):
                                m.d.sync += goto(None, 3)
                            with m.Case(idx[sn["commit"]]):
                                with m.If(tile + 1 < ntiles):
                                    m.d.sync += [tile.eq(tile + 1)] + goto(None, 2)
                                with m.Else():
                                    m.d.sync += goto(sn["final"])
                            with m.Case(idx[sn["final"]]):
                                if k + 1 == s.passes:
                                    m.d.sync += goto("output")
                                else:            # the program's last pass, or the next pass from tile 0
                                    with m.If(entry.last):
                                        m.d.sync += goto("output")
                                    with m.Else():
                                        m.d.sync += [tile.eq(0), pas.eq(k + 1)] + goto(section_name("init", k + 1))
                        with m.Case(idx["output"]):
                            m.d.sync += goto(None, 4)
            with m.Case(2):
                with m.If(self.go):
                    m.d.sync += goto(None)
                    m.d.comb += sec_n.eq(Array([Const(idx[section_name("begin", k)], len(sec))
                                                for k in range(s.passes)])[pas])
            with m.Case(3):
                with m.If(self.go):
                    m.d.sync += goto(None)
                    m.d.comb += sec_n.eq(Array([Const(idx[section_name("value", k)], len(sec))
                                                for k in range(s.passes)])[pas])
            with m.Case(4):
                m.d.sync += [self.done.eq(1), mode.eq(0)]

        # ---- issue ------------------------------------------------------------------------------
        word = Signal(bundle_l)                      # = bundles[entry.base + slot], registered
        m.d.sync += word.eq(Array(bundles)[entry_n.base + slot_n])
        main, coord = word.main, word.coord

        def issue_of(ins, name):
            j = Signal(16, name=f"j_{name}")
            ok = Signal(name=f"issue_{name}")
            m.d.comb += [j.eq(rnd - ins.stage), ok.eq(running & ins.valid & (rnd >= ins.stage) & (j < count))]
            return j, ok

        jm, issue_main = issue_of(main, "main")
        jc, issue_coord = issue_of(coord, "coord")

        reach = None if self.programmable else self.image.reach()

        def reader(addr, ix, j, name, port):
            eff = Signal(s.addr_bits + 1, name=f"{name}_eff")
            m.d.comb += eff.eq(addr + Mux(ix, j, 0))
            coords = {n: Signal(32, name=f"{name}_{n}") for n in COORD_NAMES}
            m.d.comb += [coords["k0"].eq(j << COORD_FRAC), coords["k1"].eq(tile << COORD_FRAC),
                         coords["k"].eq((tile * R + j) << COORD_FRAC), coords["q"].eq(query << COORD_FRAC)]
            values = [Cat(r, v) for r, v in zip(regs, rvalid)] + [Cat(c, Const(1, 1)) for c in consts] + \
                [Cat(coords[n], Const(0, W - 32), Const(1, 1)) for n in COORD_NAMES]
            out = Signal(W + 1, name=name)
            if reach is None:
                m.d.comb += out.eq(Array(values)[eff])
            else:                  # a fixed program: only the addresses this port ever reads
                with m.Switch(eff):
                    for a in sorted(reach["read"][port]):
                        with m.Case(a):
                            m.d.comb += out.eq(values[a])
            return out[:W], out[W]

        ad, av = reader(main.a, main.aix, jm, "opa", "a")
        bd, bv = reader(main.b, main.bix, jm, "opb", "b")
        cd, cv = reader(main.c, main.cix, jm, "opc", "c")
        dst = Signal(s.addr_bits + 1)
        m.d.comb += dst.eq(main.dst + Mux(main.dix, jm, 0))

        # ---- operand registers: issue and read in one cycle, execute from the next (every result is
        # written one cycle later, so each latency in the schedule is the unit's depth + 2)
        def late(x, name):
            q = Signal.like(x, name=name)
            m.d.sync += q.eq(x)
            return q
        main_q = Signal(main_l, name="main_q")
        m.d.sync += main_q.eq(main)
        main = main_q
        issue_main = late(issue_main, "issue_main_q")
        ad, av, bd, bv, cd, cv = (late(x, f"{n}_q") for x, n in ((ad, "ad"), (av, "av"), (bd, "bd"), (bv, "bv"),
                                                                  (cd, "cd"), (cv, "cv")))
        dst, jm = late(dst, "dst_q"), late(jm, "jm_q")
        op = main.op

        def is_op(*names):
            return Cat(*[op == MAIN_OPS.index(n) for n in names]).any()

        # ---- pipelined units with their write-back delay lines ----------------------------------
        payload = data.StructLayout({"we": 1, "addr": s.addr_bits + 1, "valid": 1, "alt": 1, "altd": W,
                                     "neg": 1})
        writes = []                                    # (writer, we, addr, data, valid)
        acc_sub = main.sub[:2]
        fn_names = [u for u in s.units if u.startswith("fn:")]
        if fixed is None:
            present = [(n, UNITS[n]) for n in UNITS if n in s.units] + [(n, FN_UNITS[n[3:]]) for n in fn_names]
        else:                   # the fixed-point units take the format's parameters
            present = [(n, lambda c=FIXED_UNITS[n]: c(fixed.p)) for n in FIXED_UNITS if n in s.units] + \
                [(n, lambda c=FIXED_FN_UNITS[n[3:]]: c(fixed.p)) for n in fn_names]
        for cls_name, cls in present:
            unit = cls()
            m.submodules[f"unit_{cls_name.replace(':', '_')}"] = unit
            fire = Signal(name=f"fire_{cls_name}")
            p_in = Signal(payload, name=f"pin_{cls_name}")
            acc = is_op("acc")
            acc_here = acc & {"add": acc_sub == 0, "max": (acc_sub == 1) | (acc_sub == 2), "mul": acc_sub == 3
                              }.get(cls_name, Const(0))
            ua, ub, umode = Signal(W, name=f"{cls_name}_a"), Signal(W, name=f"{cls_name}_b"), Signal(name=f"{cls_name}_m")
            valid = Signal(name=f"{cls_name}_valid")
            alt, altd = Signal(name=f"{cls_name}_alt"), Signal(W, name=f"{cls_name}_altd")
            m.d.comb += [ua.eq(ad), ub.eq(bd), valid.eq(av & bv), alt.eq(0), altd.eq(ad)]
            if cls_name == "add":
                m.d.comb += fire.eq(issue_main & (is_op("add", "sub") | acc_here))
                with m.If(is_op("add")):                      # union: an absent operand is +0
                    m.d.comb += [ua.eq(Mux(av, ad, 0)), ub.eq(Mux(bv, bd, 0)), valid.eq(av | bv)]
                with m.If(is_op("sub")):
                    m.d.comb += umode.eq(1)
                    if fixed is None:         # the fixed unit's sub keeps equal infinities itself
                        same_inf = (ad[23:31] == 0xFF) & (ad[:23] == 0) & (ad == bd)
                        m.d.comb += alt.eq(same_inf)
            elif cls_name == "max":
                m.d.comb += fire.eq(issue_main & (is_op("max", "min") | acc_here))
                lo, hi = (NEG_INF, POS_INF) if fixed is None else (pack_value(NEG, 0), pack_value(POS, 0))
                with m.If(is_op("max")):
                    m.d.comb += [ua.eq(Mux(av, ad, lo)), ub.eq(Mux(bv, bd, lo)), valid.eq(av | bv)]
                with m.If(is_op("min")):
                    m.d.comb += [ua.eq(Mux(av, ad, hi)), ub.eq(Mux(bv, bd, hi)), valid.eq(av | bv),
                                 umode.eq(1)]
                with m.If(acc_here & (acc_sub == 2)):
                    m.d.comb += umode.eq(1)
            elif cls_name == "mul":
                m.d.comb += fire.eq(issue_main & (is_op("mul", "mulx") | acc_here))
                if self.programmable or self.image.uses("mulx"):
                    with m.If(is_op("mulx")):                 # the product a mac adds
                        if fixed is None:                     # bf16 operands (exact fp32 product)
                            from einloom.rtl.float.convert import Fp32ToBf16
                            m.submodules.mulx_a = ra = Fp32ToBf16(latency=0)
                            m.submodules.mulx_b = rb = Fp32ToBf16(latency=0)
                            m.d.comb += [ra.a.eq(ad), rb.a.eq(bd), ua.eq(Cat(Const(0, 16), ra.result)),
                                         ub.eq(Cat(Const(0, 16), rb.result))]
                        else:                                 # the exact product, fa + fb fraction bits
                            m.d.comb += umode.eq(1)
            elif cls_name == "exp":
                m.d.comb += [fire.eq(issue_main & is_op("exp")), umode.eq(main.sub[0]), valid.eq(av)]
            elif cls_name == "recip":
                m.d.comb += [fire.eq(issue_main & is_op("recip")), valid.eq(av)]
            elif cls_name == "log":
                m.d.comb += [fire.eq(issue_main & is_op("log")), valid.eq(av)]
            elif cls_name == "div":
                m.d.comb += fire.eq(issue_main & is_op("div"))
            elif cls_name.startswith("fn:"):
                m.d.comb += [fire.eq(issue_main & is_op("fn") & (main.tag == fn_names.index(cls_name))),
                             valid.eq(av & (bv | ~main.sub[0]))]         # sub: 1 for a binary operator
            with m.If(acc_here):                              # keep the accumulator when x is absent
                m.d.comb += [valid.eq(av | bv), alt.eq(~bv), altd.eq(ad)]
            m.d.comb += [unit.a.eq(ua), unit.b.eq(ub), unit.mode.eq(umode),
                         p_in.we.eq(fire), p_in.addr.eq(dst), p_in.valid.eq(valid), p_in.alt.eq(alt),
                         p_in.altd.eq(altd)]
            p = p_in
            for i in range(unit.latency):
                nxt = Signal(payload, name=f"p{i}_{cls_name}")
                m.d.sync += nxt.eq(p)
                p = nxt
            result = Mux(p.alt, p.altd, unit.result)
            writes.append((cls_name, p.we, p.addr, result, p.valid))

        # ---- combinational ops: compare, select/move, int-to-float (written at the end of the cycle)
        cond = ad != 0
        rel = main.sub[:3]
        if fixed is None:
            fa, fb = _ftz(ad), _ftz(bd)
            nan = _is_nan(ad) | _is_nan(bd)
            ka, kb = _order_key(fa), _order_key(fb)
            cmp_res = Array([ka < kb, ka <= kb, ka > kb, ka >= kb, ka == kb, ka != kb])[rel] & ~nan
        else:                                   # fixed point: aligned codes (fixed_units._aligned)
            ka, kb, _, _, _ = _aligned(m, ad, bd, "cmp")
            cmp_res = Array([ka < kb, ka <= kb, ka > kb, ka >= kb, ka == kb, ka != kb])[rel]
        comb_data, comb_valid = Signal(W), Signal()
        m.d.comb += [comb_data.eq(ad), comb_valid.eq(av)]
        with m.Switch(op):
            with m.Case(MAIN_OPS.index("cmp")):
                m.d.comb += [comb_data.eq(cmp_res), comb_valid.eq(av & bv)]
            with m.Case(MAIN_OPS.index("and")):
                m.d.comb += [comb_data.eq((ad != 0) & (bd != 0)), comb_valid.eq(av & bv)]
            with m.Case(MAIN_OPS.index("or")):
                m.d.comb += [comb_data.eq((ad != 0) | (bd != 0)), comb_valid.eq(av & bv)]
            with m.Case(MAIN_OPS.index("not")):
                m.d.comb += comb_data.eq(ad == 0)
            with m.Case(MAIN_OPS.index("sel")):
                m.d.comb += [comb_data.eq(Mux(cond, bd, cd)), comb_valid.eq(av & bv & cv)]
            with m.Case(MAIN_OPS.index("sel0")):
                m.d.comb += [comb_data.eq(Mux(cond, bd, 0)), comb_valid.eq(av & bv & cond)]
            with m.Case(MAIN_OPS.index("init")):
                m.d.comb += comb_valid.eq(main.sub[0])
            with m.Case(MAIN_OPS.index("neg")):
                m.d.comb += comb_data.eq(ad ^ SIGN if fixed is None else
                                         Cat((-ad[:CODE_BITS].as_signed())[:CODE_BITS], ad[CODE_BITS:]))
            with m.Case(MAIN_OPS.index("cvt")):
                m.d.comb += comb_data.eq(_q8_to_fp32(m, ad) if fixed is None else _q8_to_fixed(m, ad[:32]))
        comb_ops = ("cmp", "and", "or", "not", "sel", "sel0", "mov", "init", "neg", "cvt")
        comb_we = issue_main & is_op(*comb_ops)
        writes.append(("comb", comb_we, dst, comb_data, comb_valid))

        # ---- coordinate unit (Q.8, signed) -----------------------------------------------------
        xa, _ = reader(coord.a, coord.aix, jc, "cra", "ca")
        xb, _ = reader(coord.b, coord.bix, jc, "crb", "cb")
        cdst = Signal(s.addr_bits + 1)
        m.d.comb += cdst.eq(coord.dst + Mux(coord.dix, jc, 0))
        coord_q = Signal(coord_l, name="coord_q")
        m.d.sync += coord_q.eq(coord)
        coord = coord_q
        xa, xb, cdst, issue_coord = late(xa, "xa_q"), late(xb, "xb_q"), late(cdst, "cdst_q"), \
            late(issue_coord, "issue_coord_q")
        xa, xb = xa[:32], xb[:32]                  # coordinates: the low 32 bits of a register
        sa, sb_ = xa.as_signed(), xb.as_signed()
        one = 1 << COORD_FRAC
        prod = Signal(signed(64))
        m.d.comb += prod.eq(sa * sb_)
        crel = coord.sub[:3]
        cres = Signal(32)
        with m.Switch(coord.op):
            with m.Case(COORD_OPS.index("cadd")):
                m.d.comb += cres.eq(sa + sb_)
            with m.Case(COORD_OPS.index("csub")):
                m.d.comb += cres.eq(sa - sb_)
            with m.Case(COORD_OPS.index("cmul")):
                m.d.comb += cres.eq(prod >> COORD_FRAC)
            with m.Case(COORD_OPS.index("ccmp")):
                m.d.comb += cres.eq(Mux(Array([sa < sb_, sa <= sb_, sa > sb_, sa >= sb_, sa == sb_, sa != sb_])[crel],
                                        one, 0))
            with m.Case(COORD_OPS.index("cand")):
                m.d.comb += cres.eq(Mux((xa != 0) & (xb != 0), one, 0))
            with m.Case(COORD_OPS.index("cor")):
                m.d.comb += cres.eq(Mux((xa != 0) | (xb != 0), one, 0))
            with m.Case(COORD_OPS.index("cnot")):
                m.d.comb += cres.eq(Mux(xa == 0, one, 0))
        writes.append(("coord", issue_coord, cdst, cres, Const(1, 1)))
        writes.append(("buf", self.buf_we, self.buf_addr, self.buf_data, self.buf_valid))

        # ---- register file writes ----------------------------------------------------------------
        for i in range(n_regs):
            for writer, we, addr, d, v in writes:
                if reach is not None and i not in reach["write"].get(writer, ()):
                    continue             # a fixed program never writes register i from there
                with m.If(we & (addr == i)):
                    m.d.sync += [regs[i].eq(d), rvalid[i].eq(v)]

        # ---- output ports (registered) ----------------------------------------------------------
        m.d.sync += [self.weight_en.eq(issue_main & is_op("wout")), self.out_en.eq(issue_main & is_op("out"))]
        m.d.sync += [self.weight_tag.eq(main.tag), self.weight_index.eq(jm), self.weight_data.eq(ad),
                     self.weight_valid.eq(av), self.out_tag.eq(main.tag), self.out_index.eq(jm),
                     self.out_data.eq(ad), self.out_valid.eq(av)]
        return m


def _ftz(x):
    return Mux(x[23:31] == 0, Cat(Const(0, 31), x[31]), x)


def _is_nan(x):
    return (x[23:31] == 0xFF) & (x[:23] != 0)


def _order_key(x):
    return Mux(x[31], Cat(~x[0:31], Const(0, 1)), Cat(x[0:31], Const(1, 1)))


def _q8_to_fixed(m: Module, x):
    """A Q.8 coordinate as ``FixedArith.const`` gives it: the fewest fraction bits (0..8) that hold it
    exactly, ``(x >> (8 - f), f)``."""
    f = Signal(range(COORD_FRAC + 1), name="cvt_f")
    m.d.comb += f.eq(0)
    for k in range(1, COORD_FRAC + 1):          # the lowest set bit below the point (assigned last) sets f
        with m.If(x[COORD_FRAC - k]):
            m.d.comb += f.eq(k)
    drop = Signal(range(COORD_FRAC + 1), name="cvt_drop")
    code = Signal(signed(CODE_BITS), name="cvt_c")
    m.d.comb += [drop.eq(COORD_FRAC - f), code.eq(x.as_signed() >> drop)]
    return Cat(code, f.as_unsigned(), Const(0, F_BITS - f.shape().width))


def _q8_to_fp32(m: Module, x):
    """A Q.8 coordinate as fp32 (exact below 2**23 in magnitude)."""
    neg = x[31]
    mag = Signal(32)
    m.d.comb += mag.eq(Mux(neg, -x.as_signed(), x))
    lead = Signal(range(33))
    for i in range(32):
        with m.If(mag[i]):
            m.d.comb += lead.eq(i)
    exp = Signal(8)
    frac = Signal(23)
    m.d.comb += [exp.eq(lead - COORD_FRAC + 127), frac.eq(((mag << 23) >> lead)[:23])]
    return Mux(mag == 0, 0, Cat(frac, exp, neg))
