"""Build the lane core (``lane_core.py``) for cascades, and lay out a run's operands for its memories.

:func:`plan_lanes` compiles a cascade for an architecture (``rtl/lanes``: lane mapping, lowered
schedule, lane program, machine image) and checks what the core needs beyond the lanes (one head, a
score product of two operand tensors, a bf16 or fixed-point format); :func:`generate_lane_core` builds the Verilog and
its manifest (programs, section cycles, the cycle model's figures); :func:`core_operands` gives the
memory words, block and tile counts and the golden output of one run (``run_in_format`` of the whole
cascade in the schedule's loop order) for the testbench.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from einloom.base.errors import Location
from einloom.einsum.errors import SpecError
from einloom.rtl.lanes.scan import scan_ranks


@dataclass
class LanePlan:
    """One cascade compiled for the lane core (``arith``: its number format's :class:`Arith`)."""

    cascade: Any
    schedule: Any
    program: Any
    image: Any
    sizes: dict[str, int]
    looped: tuple[str, ...] = ()      # head ranks with their own K/V: one run of the core per head
    folded: tuple[str, ...] = ()      # head ranks sharing K/V (GQA's query heads): folded into the queries
    stages: int = 1                   # runs of the cascade's stages (rtl/lanes/stages.py) this plan is one of
    arith: Any = None                 # the number format's Arith (bf16 or fixed point)
    recurrence: Any = None            # per-key state chains (rtl/lanes/recurrence.py): the cascade is its surrogate
    hands: tuple[str, ...] = ()       # outputs this stage hands the next stage (not the cascade's outputs)

    def extent(self) -> tuple[int, int]:
        """(queries, keys) of one run at the plan's sizes: the lanes' rank (times the folded heads) and
        the key rank (times the tile rank)."""
        st = self.program.structure
        sz = self.schedule.sizes
        queries = int(np.prod([sz[r] for r in self.folded + (st.lane,)]))
        keys = int(sz[st.key]) * (int(sz[st.outer]) if st.outer else 1)
        return queries, keys

    def head_runs(self) -> list[dict[str, int]]:
        """One ``{head variable: index}`` per run of the core (``[{}]`` for one head)."""
        from itertools import product

        from einloom.einsum.cascade import var_of
        sizes = [range(int(self.schedule.sizes[r])) for r in self.looped]
        return [dict(zip((var_of(r) for r in self.looped), idx)) for idx in product(*sizes)]

    @property
    def fixed(self) -> Any:
        """The FixedArith of a fixed-point lane core, None for bf16."""
        return self.arith if getattr(self.arith, "name", "") == "fixed" else None

    def encode(self, shape: Any = None) -> Any:
        """The plan's lane image for the lane ``shape`` (None: exactly its size), in its format."""
        from einloom.rtl.lanes.encode import encode
        from einloom.rtl.lanes.units import schedule_latency
        fixed = self.fixed
        return encode(self.program, schedule_latency(fixed.p if fixed is not None else False), shape,
                      carry_in_array=True, fixed=fixed)


def number_arith(arch: Any, head_dim: int) -> Any:
    """The :class:`Arith` of ``arch``'s ``rtl.number_format`` (bf16 or fixed point)."""
    from einloom.sim.formats import make_format
    from einloom.sim.formats.arith import arith_for
    spec = dict((arch.rtl or {}).get("number_format", {}) if arch.rtl is not None else {})
    # the fixed core's pipelined fp32 accumulate (interleaved partial sums) is not the lane core's: its
    # 2D array accumulates each score product in order (acc = fp32_add(acc, bf16_mul(q, k)))
    spec.pop("acc_latency", None)
    return arith_for(make_format(spec, head_dim=head_dim))


def _refuse(cascade: Any, einsum: str | None, what: str, hint: str) -> SpecError:
    where = f"Einsum {einsum}: " if einsum else ""
    return SpecError(f"the lane core cannot run {cascade.name}: {where}{what}",
                     location=Location(cascade.file, None, f"einsums.{einsum}" if einsum else None), hint=hint)


def plan_lanes(cascade: Any, arch: Any, sizes: Mapping[str, int] | None = None) -> LanePlan:
    """Compile ``cascade`` for the lane core of ``arch`` (refusals name the Einsum and what is missing)."""
    from einloom.einsum.cascade import rank_of
    from einloom.rtl.lanes.execute import build
    fmt = (arch.rtl or {}).get("number_format", {}) if arch.rtl is not None else {}
    if fmt.get("kind") not in ("bf16", "fixed"):
        raise _refuse(cascade, None, f"the lanes have no RTL units for number format {fmt.get('kind', '?')!r}",
                      "use a bf16 or fixed-point architecture (rtl.number_format.kind)")
    program, schedule = build(cascade, arch, sizes)
    st = program.structure
    for n in program.scores:
        if n in st.direct:
            continue
        _reduced_var(cascade, n)
        ranked = _score_factors(cascade, n, schedule)
        if len(ranked) != 2:
            raise _refuse(cascade, n, f"a score product of {len(ranked)} ranked factors (the 2D array "
                          "multiplies two operands)", "fold the other factors into an input-side Einsum")
    looped, folded = _head_ranks(cascade, program, schedule)
    macs = [n for n in program.scores if n not in program.structure.direct]
    head_dim = max((int(schedule.sizes[rank_of(_reduced_var(cascade, n))]) for n in macs), default=1)
    plan = LanePlan(cascade, schedule, program, None, dict(schedule.sizes), looped, folded,
                    arith=number_arith(arch, head_dim))
    plan.image = plan.encode()
    return plan


def _head_ranks(cascade: Any, program: Any, schedule: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The instance (head) ranks of the scores split into those the key or value operands carry (each
    head its own K/V: one run per head) and the others (query heads sharing one K/V, GQA/MQA's G:
    folded into the query columns, lane index = the query heads' index then the query)."""
    from einloom.einsum.expr import Access, walk
    st = program.structure
    if not st.instances:
        return (), ()
    key_side: set[str] = set()
    for n in program.scores:
        if n in st.direct:
            key_side |= set(cascade.tensors[n].ranks)
            continue
        for f in _score_factors(cascade, n, schedule):
            ranks = {r for a in walk(f) if isinstance(a, Access) for r in cascade.tensors[a.tensor].ranks}
            if st.lane not in ranks:
                key_side |= ranks
    for n in st.value_products:
        key_side |= {r for a in walk(st.weight_of[n][2]) if isinstance(a, Access) for r in cascade.tensors[a.tensor].ranks}
    looped = tuple(r for r in st.instances if r in key_side)
    folded = tuple(r for r in st.instances if r not in key_side)
    ports = {o.port for sec in program.sections.values() for i in sec.instrs for o in i.srcs if o.kind == "port"}
    heads = ports & {var_of_rank(r) for r in st.instances}
    if heads:
        raise _refuse(cascade, program.scores[0], f"its lane program reads the head coordinate(s) "
                      f"{', '.join(sorted(heads))}; the lanes' coordinates are the key and query indices only",
                      "make the masks and biases depend on the key and query only")
    if folded and "q" in ports:
        raise _refuse(cascade, program.scores[0], f"its lane program reads the query coordinate while the heads "
                      f"{', '.join(folded)} fold into the query columns (the lane index is not the query index)",
                      "make the masks and biases independent of the query, or give one query head")
    return looped, folded


def var_of_rank(rank: str) -> str:
    from einloom.einsum.cascade import var_of
    return var_of(rank)


def plan_stages(cascade: Any, arch: Any, sizes: Mapping[str, int] | None = None) -> list[LanePlan]:
    """The lane-core plans of ``cascade``'s stages (:func:`einloom.rtl.lanes.stages.split_stages`: one
    for most cascades; linear attention's state pass and read pass), run one after the other on one
    programmable build."""
    from einloom.rtl.lanes.recurrence import per_key_recurrence
    from einloom.rtl.lanes.stages import split_stages
    if scan_ranks(cascade) is not None:     # a per-key scan the lanes run themselves (rtl/lanes/scan.py)
        plan = plan_lanes(cascade, arch, sizes)
        if plan.looped or plan.folded:
            raise _refuse(cascade, None, "it is a per-key scan with several heads", "give the cascade one head")
        return [plan]
    rec = per_key_recurrence(cascade)
    if rec is not None:                 # a per-key state: one run, its states in the 2D array
        plan = plan_lanes(rec.cascade, arch, sizes)
        plan.recurrence = rec
        if plan.looped or plan.folded:
            raise _refuse(cascade, None, "it has per-key states and several heads (the state registers hold "
                          "one head)", "give the cascade one head")
        return [plan]
    stages = split_stages(cascade)
    plans = [plan_lanes(s.cascade, arch, sizes) for s in stages]
    odd = next((p for p in plans if p.program.values != plans[0].program.values), None)
    if odd is not None:     # one build: its lanes' value registers and value memories have one width F
        st0, st = plans[0].program.structure, odd.program.structure
        raise _refuse(cascade, odd.program.chains[0].einsum if odd.program.chains else None,
                      f"its stage {odd.cascade.name} has the value rank {st.value} = {odd.program.values}, stage "
                      f"{plans[0].cascade.name} {st0.value} = {plans[0].program.values} (the stages share one build, "
                      "whose lanes and value memories have one width F)",
                      f"give {st.value} and {st0.value} the same size")
    for k, p in enumerate(plans):
        p.stages = len(plans)
        later = {h for s in stages[k + 1:] for h in s.handed}      # outputs a later stage reads
        p.hands = tuple(o for o in stages[k].cascade.outputs if o in later)
    return plans


def _score_factors(cascade: Any, name: str, schedule: Any) -> list:
    from einloom.einsum.expr import Reduce
    from einloom.einsum.interpret import _product_factors
    from einloom.rtl.lanes.compile import _params, is_constant
    e = cascade.einsum(name)
    body = e.expr.body if isinstance(e.expr, Reduce) else e.expr
    params = _params(cascade, schedule)
    return [f for f in _product_factors(body) if not is_constant(f, params)]


def covering_images(plans: Sequence[LanePlan], programmable: bool) -> tuple[Any, list]:
    """The lanes' capacities and each plan's image encoded for them: a programmable build's programs
    share one register map size, constant pool and bundle memory (``LaneShape.covering``), so each
    image is re-encoded for that shape (its addresses differ from the image of exactly its size)."""
    from einloom.rtl.lanes.encode import LaneShape
    if not programmable:
        return LaneShape.covering(plans[0].image), [plans[0].image]
    shape = LaneShape.covering(*[p.image for p in plans])
    return shape, [p.encode(shape) for p in plans]


def core_shape(arch: Any, plans: Sequence[LanePlan]) -> Any:
    """The :class:`~einloom.rtl.lane_core.CoreShape` covering ``plans`` on ``arch``."""
    from einloom.rtl.lane_core import CoreShape
    rtl = arch.rtl or {}
    states, state_tiles = _state_config(plans)
    p0 = plans[0].program
    for p in plans[1:]:
        if (p.program.tile, p.program.values) != (p0.tile, p0.values):
            raise _one_build(plans, "the programs of one build need the same R and F")
    e = {_head_dim(p) for p in plans if _mac_scores(p)}
    if len(e) > 1:
        raise _one_build(plans, f"the programs of one build need one head dimension (got {sorted(e)})")
    direct = [_direct_slots(p) for p in plans if p.program.scores]
    slots = max((len(d) for d in direct), default=0)
    # a slot read directly by some programs and multiplied by others is switched (a table bit per program)
    is_direct = tuple(any(i < len(d) and d[i] for d in direct) for i in range(slots))
    is_mac = tuple(any(i < len(d) and not d[i] for d in direct) for i in range(slots))
    switched = tuple(a and b for a, b in zip(is_direct, is_mac))
    fmt = rtl.get("number_format", {})
    handed = frozenset(h for p in plans for h in p.hands)
    key_outputs = any(kind == "key" for p in plans for kind in p.program.outputs.values())
    return CoreShape(rows=arch.array_2d.rows, cols=arch.array_2d.cols, head_dim=e.pop() if e else 1,
                     value_dim=p0.values, direct=is_direct if any(is_direct) else (), switched=switched if any(switched) else (),
                     max_keys=int(rtl.get("max_keys", 64)), max_queries=int(rtl.get("max_queries", 64)),
                     scores=max(len(p.program.scores) for p in plans),
                     # a scan's program has no value product (rtl/lanes/scan.py): one unused slot, not a
                     # zero-width datapath (Verilator refuses zero-width wires)
                     chains=max(1, max(len(p.program.chains) for p in plans)),
                     outputs=max(len(p.image.outputs) for p in plans),
                     bf16_output=fmt.get("output", "bf16") == "bf16", fixed=plans[0].fixed,
                     passes=max(p.program.passes for p in plans),
                     states=states, state_tiles=state_tiles, wide=plans[0].fixed is not None and bool(handed),
                     key_outputs=key_outputs,
                     handed=handed)


def _one_build(plans: Sequence[LanePlan], what: str) -> SpecError:
    """Programs that cannot share one build (``--also``): a refusal naming them."""
    names = ", ".join(dict.fromkeys(p.cascade.name for p in plans))
    return _refuse(plans[0].cascade, None, f"{what} ({names})", "build them separately (drop --also)")


def _state_config(plans: Sequence[LanePlan]) -> tuple[tuple, int]:
    """``CoreShape.states`` / ``state_tiles`` of a build: per value product of the plan with per-key
    state chains, (its update product's index, whether the update has an operand memory)."""
    recs = [p for p in plans if p.recurrence is not None]
    if not recs:
        return (), 0
    if len(plans) > 1:
        raise _one_build(plans, f"{recs[0].cascade.name} keeps per-key states in the 2D array (state chains); a build "
                         "with them runs that one program")
    p = recs[0]
    names = [c.einsum for c in p.program.chains]
    by_reader = {c.reader: c for c in p.recurrence.chains}
    states = tuple((names.index(by_reader[n].update), by_reader[n].operand is not None) if n in by_reader else None
                   for n in names)
    return states, int(p.program.structure.tiles)


def _reduced_var(cascade: Any, name: str) -> str:
    """The one rank variable a score product reduces (its E)."""
    from einloom.einsum.expr import Reduce
    e = cascade.einsum(name)
    red = tuple(e.expr.vars) if isinstance(e.expr, Reduce) else tuple(e.implicit_vars)
    if len(red) != 1:
        raise _refuse(cascade, name, f"a score product reducing {len(red)} ranks (the 2D array's QK reduces one)",
                      "reduce one rank (the head dimension) in each score product")
    return red[0]


def _mac_scores(plan: LanePlan) -> list[str]:
    """The plan's score products (not the inputs its lanes read directly)."""
    return [n for n in plan.program.scores if n not in plan.program.structure.direct]


def _direct_slots(plan: LanePlan) -> tuple[bool, ...]:
    return tuple(n in plan.program.structure.direct for n in plan.program.scores)


def _head_dim(plan: LanePlan) -> int:
    """E of a plan's score products: the largest rank they reduce (a product reducing fewer, mla's RoPE
    score over R beside the latent score over C, has its operands zero-padded to E: its MAC chain adds
    exact +0 products after its own, the golden ``mac``'s sum unchanged)."""
    from einloom.einsum.cascade import rank_of
    return max(int(plan.schedule.sizes[rank_of(_reduced_var(plan.cascade, n))]) for n in _mac_scores(plan))


def timing_of(plan: LanePlan, shape: Any) -> Any:
    from einloom.rtl.lane_core import CoreProgram, qk_drain_cycles, vp_drain_cycles
    from einloom.sim.rtl_core import LaneCoreTiming
    cp = CoreProgram.of(plan.image)
    return LaneCoreTiming(shape.rows, shape.cols, shape.head_dim, shape.value_dim, len(cp.score_base),
                          len(cp.value_base), cp.beats, dict(cp.sections), _direct_slots(plan),
                          cp.passes if len(cp.passes) > 1 else (),
                          qk_drain=qk_drain_cycles(), vp_drain=vp_drain_cycles(shape.rows))


def run_cycles(plans: Sequence[LanePlan], shape: Any) -> dict[str, int]:
    """Cycles of one whole run of a cascade compiled to ``plans`` (its stages, one after the other) on a
    lane core of ``shape``: every plan at its own extent (:meth:`LanePlan.extent`), once per head run,
    summed (``compute_cycles``, ``mac_cycles``: the cycle model ``lane_core_cycles``, which the
    testbenches assert equal to the RTL's unstalled runs)."""
    from einloom.sim.rtl_core import lane_core_cycles
    total = {"compute_cycles": 0, "mac_cycles": 0}
    for p in plans:
        c = lane_core_cycles(timing_of(p, shape), *p.extent())
        runs = len(p.head_runs())
        for key in total:
            total[key] += runs * int(c[key])
    return total


def generate_lane_core(plans: Sequence[LanePlan], arch: Any, *, programmable: bool = False,
                       top: str = "einloom_lane_core", examples: Sequence[tuple[int, int]] = ()):
    """Verilog and manifest of the lane core for ``plans`` (the first runs from reset)."""
    from einloom.rtl.generate import GeneratedDesign, ports_of, to_verilog
    from einloom.rtl.lane_core import CoreProgram, LaneCore
    from einloom.rtl.lanes.lane import pack_image
    from einloom.sim.rtl_core import lane_core_cycles
    shape = core_shape(arch, plans)
    _, images = covering_images(plans, programmable)
    core = LaneCore(shape, images, programmable=programmable)
    verilog = to_verilog(core, top)
    programs = []
    for n, (p, image) in enumerate(zip(plans, images)):
        t = timing_of(p, shape)
        figures = []
        # a stage's queries and keys are its own ranks (the state pass: E features over M keys)
        # (folded heads: the G x P queries of a group)
        own = p.stages > 1 or p.folded or p.recurrence is not None or "key" in p.program.outputs.values()
        sizes = [p.extent()] if own else (list(examples) or [(shape.max_queries, shape.max_keys)])
        for (qp, km) in sizes:
            c = lane_core_cycles(t, qp, km)
            figures.append({"P": qp, "M": km, **c,
                            "util_2d": c["mac_cycles"] / c["compute_cycles"]})
        programs.append({"cascade": p.cascade.name, "file": str(p.cascade.file),
                         "query_rank": p.program.structure.lane, "key_rank": p.program.structure.key,
                         "stage": sum(q.cascade.file == p.cascade.file for q in plans[:n + 1]) if p.stages > 1
                         else None,
                         "head_runs": len(p.head_runs()), "folded_heads": list(p.folded),
                         "units": list(p.program.units()), "scores": list(p.program.scores),
                         "value_products": [c.einsum for c in p.program.chains],
                         "outputs": list(p.image.outputs), "sections": t.sections,
                         "lane_cycles_per_block": {"formula": "Image.cycles(tiles)",
                                                   "tiles_1": p.image.cycles(1)},
                         "table": CoreProgram.of(image).table(shape),
                         "image": pack_image(image, core.lane_shape) if programmable else None,
                         "expected": figures, "listing": p.program.listing()})
    manifest = {"kind": "lane-core", "top": top, "programmable": programmable,
                "parameters": {"rows": shape.rows, "cols": shape.cols, "head_dim": shape.head_dim,
                               "value_dim": shape.value_dim, "max_keys": shape.max_keys,
                               "max_queries": shape.max_queries, "scores": shape.scores, "chains": shape.chains,
                               "outputs": shape.outputs,
                               "number_format": "bf16" if shape.fixed is None else shape.fixed.fmt.describe(),
                               "output": ("bf16" if shape.bf16_output else "fp32") if shape.fixed is None else
                               f"int{shape.out_bits} (fraction bits {shape.fixed.p.output_frac_bits})"},
                "memories": [{"index": i, "name": n, "depth": d, "lanes": w} for i, (n, d, w) in
                             enumerate(shape.memories())],
                "programs": programs, "ports": ports_of(core), "clock": "clk", "reset": "rst",
                "cycle_model": "einloom.sim.rtl_core.lane_core_cycles"}
    return GeneratedDesign(verilog, top, manifest), core


@dataclass
class CoreRunData:
    """One run's memory words (name -> words), counts and golden outputs (name -> codes [beats, P])."""

    words: dict[str, list[int]]
    num_keys: int
    num_queries: int
    blocks: int
    tiles: int
    golden: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]


def core_operands(plan: LanePlan, shape: Any, inputs: Mapping[str, np.ndarray],
                  head: Mapping[str, int] | None = None) -> CoreRunData:
    """Memory words of ``inputs`` (the format's codes) for the lane core and the golden outputs, for
    the run of ``head`` (``{head variable: index}`` of the plan's looped heads; the folded heads' queries
    are the query columns, query head first)."""
    from einloom.einsum.cascade import var_of
    from einloom.einsum.expr import Access, Name
    from einloom.einsum.interpret import _align
    from einloom.sim.formats.arith import arith_for
    from einloom.sim.formats.arith.fp32 import fp32_to_bf16
    from einloom.sim.formats import make_format
    from einloom.sim.formats.interpret import run_in_format, schedule_loop_order
    from einloom.rtl.lanes.execute import input_side
    if plan.recurrence is not None:
        from einloom.rtl.lane_state_build import recurrence_operands
        return recurrence_operands(plan, shape, inputs)
    cascade, program, schedule = plan.cascade, plan.program, plan.schedule
    st = program.structure
    params = dict(schedule.mapping.params)
    arith = plan.arith
    fixed = plan.fixed
    fi, sizes, pvals = input_side(program, cascade, arith, inputs, params)
    vsize = {var_of(r): n for r, n in sizes.items()}
    key, outer, lane = var_of(st.key), (var_of(st.outer) if st.outer else None), var_of(st.lane)
    elem = (outer, key) if outer else (key,)
    R, C, E, F = shape.rows, shape.cols, shape.head_dim, shape.value_dim
    head = dict(head or {})
    looped = tuple(var_of(r) for r in plan.looped)
    qvars = tuple(var_of(r) for r in plan.folded) + (lane,)
    fix = tuple(head[v] for v in looped)
    P = int(np.prod([vsize[v] for v in qvars]))
    M = int(np.prod([vsize[v] for v in elem]))
    T, B = -(-M // R), -(-P // C)
    num_keys = M

    def full(val, want, data=None):
        """``val`` (or its ``data``) over ``want`` at this run's heads."""
        if data is None:
            data = np.asarray(val.data)
            data = data if data.dtype == arith.dtype else np.asarray(arith.from_float(np.asarray(data, float)))
        every = looped + tuple(want)
        return np.broadcast_to(_align(data, val.vars, every), tuple(vsize[v] for v in every))[fix]

    def bf16(x, wide=False):
        """The 2D array's operand codes: bf16 (as mac rounds them), a fixed-point input code, or (a
        wide build's value memories) the fixed-point value word."""
        if wide:
            from einloom.rtl.lanes.fixed_units import pack_value
            x = np.asarray(x)
            return np.vectorize(lambda c, f: pack_value(int(c), int(f)), otypes=[object])(x["c"], x["f"])
        if fixed is None:
            return np.asarray(fp32_to_bf16(np.asarray(x, dtype=np.uint32))).astype(np.int64)
        x = np.asarray(x)
        lim = 1 << (fixed.p.input_bits - 1)
        if np.any(x["f"] != fixed.p.frac_bits) or np.any((x["c"] < -lim) | (x["c"] >= lim)):
            raise _refuse(cascade, None, "a 2D operand is not an input code (fraction bits "
                          f"{fixed.p.frac_bits}, {fixed.p.input_bits} bits)", "feed the products the inputs")
        return x["c"].astype(np.int64)

    def pack(rows: np.ndarray, bits: int = 16) -> list[int]:
        """[addresses, lanes] codes -> one word per address (lane l in bits l*bits .. (l+1)*bits-1)."""
        out = []
        for row in rows:
            w = 0
            for i, v in enumerate(row):
                w |= (int(v) & ((1 << bits) - 1)) << (bits * i)
            out.append(w)
        return out

    words: dict[str, list[int]] = {}
    for i, n in enumerate(program.scores):
        if n in st.direct:              # word (block, key) = the C lanes' bf16 values of that key
            x = bf16(full(fi.eval(Access(n, tuple(Name(var_of(r)) for r in cascade.tensors[n].ranks)), {}),
                          elem + qvars), shape.wide).reshape(M, P)
            xpad = np.zeros((shape.key_tiles * R, B * C), object if shape.wide else np.int64)
            xpad[:M, :P] = x
            words[f"x{i}"] = pack(xpad.reshape(shape.key_tiles * R, B, C).transpose(1, 0, 2)[:B].reshape(-1, C),
                                  shape.slot_bits(f"x{i}"))
            continue
        e = cascade.einsum(n)
        red = _reduced_var(cascade, n)
        fi.order = tuple(e.iteration_vars)
        facs = [fi.eval(f, {}) for f in _score_factors(cascade, n, schedule)]
        qf = next((f for f in facs if lane in f.vars), None)
        if qf is None:          # a scan's score product has no lane rank: its query-side operand to every lane
            qf = next(f for f in facs if not set(elem) & set(f.vars))
        kf = next(f for f in facs if f is not qf)
        if kf.valid is not None:
            kv = full(kf, elem + (red,), kf.valid).reshape(M, vsize[red]).any(axis=1)
            nk = int(kv.sum())
            if not np.array_equal(kv, np.arange(M) < nk):
                raise _refuse(cascade, n, "its key operand has absent keys inside the key rank",
                              "absent keys must be the padding at the end")
            num_keys = min(num_keys, nk)
        En = vsize[red]                 # <= E: a shorter product's operands zero-padded to E
        q = bf16(full(qf, qvars + (red,)), shape.wide).reshape(P, En)       # [P, En]
        k = bf16(full(kf, elem + (red,)), shape.wide).reshape(M, En)       # [M, En]
        qpad = np.zeros((B * C, E), object if shape.wide else np.int64)
        qpad[:P, :En] = q
        kpad = np.zeros((T * R, E), object if shape.wide else np.int64)
        kpad[:M, :En] = k
        words[f"q{i}"] = pack(qpad.reshape(B, C, E).transpose(0, 2, 1).reshape(B * E, C), shape.slot_bits(f"q{i}"))
        words[f"k{i}"] = pack(kpad.reshape(T, R, E).transpose(0, 2, 1).reshape(T * E, R), shape.slot_bits(f"k{i}"))
    fv = var_of(st.value) if st.value else None
    for i, n in enumerate(c.einsum for c in program.chains):
        e = cascade.einsum(n)
        fi.order = tuple(e.iteration_vars)
        other = fi.eval(st.weight_of[n][2], {})
        ok = other.valid is None or np.all(full(other, elem + (fv,), other.valid).reshape(M, F)[:num_keys])
        if set(qvars) & set(other.vars) or not ok:
            raise _refuse(cascade, n, "its value operand depends on the query or has absent entries",
                          "the value memories hold one [key, f] operand")
        v = bf16(full(other, elem + (fv,)).reshape(M, F), shape.wide)
        vpad = np.zeros((T * R, F), object if shape.wide else np.int64)
        vpad[:M] = v
        words[f"v{i}"] = pack(vpad.reshape(T, R, F).transpose(0, 2, 1).reshape(T * F, R), shape.slot_bits(f"v{i}"))
    ref = run_in_format(cascade, arith, dict(inputs), golden_ranks(plan), loop_order=schedule_loop_order(schedule),
                        keep_intermediates=shape.wide)
    golden, valid = {}, {}
    for name in plan.image.outputs:
        decl = cascade.tensors[name]
        have = tuple(var_of(r) for r in decl.ranks)
        want = looped + ((fv,) if fv in have else elem if program.outputs[name] == "key" else ()) + qvars
        codes = np.asarray(ref.codes[name])
        if shape.wide:      # 72-bit words: a handed-over output's value word, the others' codes
            codes = bf16(ref.intermediates[name], True) if name in shape.handed else codes.astype(object)
        vv = ref.valid.get(name)
        vv = np.ones(codes.shape, bool) if vv is None else np.asarray(vv)
        golden[name] = _align(codes, have, want)[fix].reshape(-1, P) & ((1 << shape.out_bits) - 1)
        valid[name] = _align(vv, have, want)[fix].reshape(-1, P)
    return CoreRunData(words, num_keys, P, -(-P // C), -(-num_keys // R), golden, valid)


def golden_ranks(plan: LanePlan) -> dict[str, Any]:
    """The ``ranks`` argument of the golden ``run_in_format`` of a plan's cascade: the mapping's params
    (the key tile M0 = R) and the sizes of the ranks no input tensor carries (a stage's params may use a
    rank of another stage, mla's ``scale = 1 / sqrt(E + R)`` in the attention stage without ``E``)."""
    cascade, schedule = plan.cascade, plan.schedule
    carried = {r for t in cascade.inputs for r in cascade.tensors[t].ranks} | \
        {r for p in cascade.partitions for r in (p.inner, p.outer)}
    own = {r: int(n) for r, n in schedule.sizes.items() if r in cascade.ranks and r not in carried}
    return {**own, **dict(schedule.mapping.params)}


def random_inputs(plan: LanePlan, seed: int, sd: float = 1.5) -> dict[str, np.ndarray]:
    """Random input codes (N(0, sd), quantized by the plan's format) at its schedule's sizes."""
    from einloom.sim.formats import make_format
    fmt = make_format({"kind": "bf16"}, head_dim=8) if plan.fixed is None else plan.fixed.fmt
    rng = np.random.default_rng(seed)
    return {t: fmt.quantize(rng.normal(0.0, sd, [plan.schedule.sizes[r] for r in plan.cascade.tensors[t].ranks]))
            for t in plan.cascade.inputs}
