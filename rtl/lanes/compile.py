"""Compile the Einsums a schedule binds to the 1D array into a lane :class:`~einloom.rtl.lanes.isa.Program`.

Structure, found from the schedule and the cascade's ranks (never from names):

* the **2D products** are the Einsums bound to the 2D array; each must be a multiply-accumulate with a
  sum reduction (``sum[e] Q * K``).  The rank on the 2D array's rows is the **key tile** rank ``K0``;
  a product whose output carries ``K0`` is a **score product** (the lane receives its R sums per tile,
  one per element), one that reduces ``K0`` a **value product** (the lane supplies its weights and
  receives its F column sums per tile).
* ``K0`` is the inner rank of a partition (1-pass cascades: ``m = m1*M0 + m0``, the outer ``K1``
  numbering the tiles), or the whole key rank (the hardware tiles it in R-key tiles; a value product
  over it is one multiply-accumulate chain continued from tile to tile through a lane register).
* the rank on the 1D lanes is the **lane rank** (the query); the other ranks of the score products'
  outputs are **instance ranks** (heads), which every lane value carries; the value products' one
  remaining output rank is the **value rank** (F).
* every 1D Einsum lands in a section (:mod:`.isa`) by what it iterates and what it reads: over the
  tile's elements in pass 0 (``score``) or pass 1 (``weight``, when it reads a per-tile scalar that a
  pass-0 reduction produces), per tile (``tile`` / ``merge``, after the pass whose reductions it reads),
  per value column (``value``), or at the end of the query block (``final`` / ``output``).

Registers are allocated by residency: a tensor used only inside the iteration that produces it is an
iteration temporary; one read by a later section is a ``tile`` vector (R entries: a pass-0 value the
weight pass reads again), a ``value`` vector (F entries: running per-column state) or a ``scalar``
(per-query state such as the running max, double-buffered when its old and new iterates are both
read within a tile, with the copy in ``commit``).

A cascade the lane cannot run is refused with the Einsum and the missing capability (one line,
:class:`~einloom.base.errors.SpecError`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from einloom.base.errors import Location, MappingError, SpecError
from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, rank_of, var_of
from einloom.einsum.expr import Access, BinOp, Call, Expr, Name, Num, Reduce, Unary, walk
from einloom.einsum.interpret import Interpreter, _product_factors
from einloom.rtl.lanes.isa import (
    SECTIONS, Chain, Instr, Operand, Program, Reg, Section, const, port, reg, units_of,
)
from einloom.rtl.lanes.scan import scan_ranks

# stage numbers: when a section's results are available, in execution order within a tile
_STAGE = {"state": -1, "score": 0, "tile": 1, "weight": 2, "merge": 3, "value": 4, "final": 5, "output": 6}
_CMP = {"<", "<=", ">", ">=", "==", "!="}
_ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_UNARY_FN = {"exp": "exp", "log": "log", "reciprocal": "recip"}


def _refuse(cascade: Cascade, einsum: Any, what: str, hint: str) -> SpecError:
    line = getattr(einsum, "line", None)
    name = getattr(einsum, "name", None)
    return SpecError(f"the 1D lane cannot run Einsum {name} of {cascade.name}: {what}" if name
                     else f"the 1D lane cannot run {cascade.name}: {what}",
                     location=Location(cascade.file, line, name), hint=hint)


# ------------------------------------------------------------------------------------------------
# The mapping the lanes implement
# ------------------------------------------------------------------------------------------------

def lane_mapping(cascade: Cascade, arch: Any, workload: Any = None, sizes: Any = None) -> Any:
    """The 2D + 1D mapping the lanes are built for: every multiply-accumulate product with a sum
    reduction on the 2D array (the key tile on its rows, the queries on its columns), everything else
    on the 1D lanes (one per query column).  The key tile is ``R = array_2d.rows`` keys: the tile
    param of a 1-pass cascade is set to R; an unpartitioned key rank is tiled by R in hardware."""
    from einloom.mapper.lower import _view_for
    from einloom.mapper.mapping import FusionGroup, Mapping
    from einloom.mapper.roles import is_contraction, key_ranks
    view = _view_for(cascade, None, workload, sizes)
    keys = key_ranks(view, cascade.sequence_rank)
    if not keys:
        raise _refuse(cascade, None, "it declares no sequence_rank (the key rank the 2D rows tile)",
                      "add sequence_rank: M (the rank of the keys)")
    scan = scan_ranks(cascade)          # a per-key scan the lanes run themselves (rtl/lanes/scan.py)
    for e in cascade.einsums:
        it = e.iterative_rank
        if scan is None and it in keys and not any(p.outer == it for p in cascade.partitions):
            raise _refuse(cascade, e, f"its state iterates over the key rank {it} itself (a per-key recurrence: "
                          f"every key updates the state, read at every key); the lane core carries state from "
                          "key tile to key tile and reduces the keys of a tile in the 2D array's sums",
                          "partition the keys into tiles (m = m1*M0 + m0) and carry the state over m1; the lane "
                          "core (einloom rtl / verify) runs a running-sum state per key in its 2D array's state "
                          "chains (rtl/lanes/recurrence.py)")
    # a product over the tile rank only (split-KV's merge WO = sum[m1] W * O, its factors per tile and
    # query) is no 2D product: the lanes run it as a mac chain from tile to tile
    tile_ranks = {p.outer for p in cascade.partitions if p.outer in keys}
    products = [e for e in view.compute_einsums if is_contraction(e) and _is_sum_product(cascade, e.name)
                and not (e.reduced_ranks and set(e.reduced_ranks) <= tile_ranks)]
    values = [e for e in products if set(e.reduced_ranks) & keys]
    if scan is not None:                # no value product: the lanes are the states' rank, the scores per key
        key, query = scan
        scores = [e for e in products if key in e.iteration_ranks and key not in e.reduced_ranks]
    elif not values:
        raise _refuse(cascade, None, "no multiply-accumulate product reduces the key rank (no value product "
                      "for the 2D array)", "the lanes run attention-like cascades: scores, weights, weights x V")
    else:
        key = next(r for r in values[0].reduced_ranks if r in keys)
        scores = [e for e in products if key in e.iteration_ranks and key not in e.reduced_ranks]
    if scan is not None:
        pass                            # the lane rank is the scan's (above)
    elif scores:
        out_ranks = [r for r in scores[0].iteration_ranks if r not in keys and r not in scores[0].reduced_ranks]
        if not out_ranks:
            outer = {p.outer for p in cascade.partitions if p.inner == key}
            tiled = [r for r in scores[0].iteration_ranks if r in keys and r != key and r not in outer and
                     r not in scores[0].reduced_ranks]
            what = (f": its query rank is among {', '.join(tiled)}, partitions of the key rank (queries and keys "
                    "are the same tokens, tiled together); the lanes need a query rank of its own") if tiled else ""
            raise _refuse(cascade, scores[0], f"the score product has no query rank{what}",
                          "scores are indexed [key, query] with queries on a rank that is not the sequence rank")
        query = out_ranks[-1]
    else:
        query = _weight_lane_rank(cascade, values[0].name, keys)
    hw_rows, hw_cols = arch.array_2d.rows, arch.array_2d.cols
    part = next((p for p in cascade.partitions if p.inner == key), None)
    params = {}
    if part is not None:
        if not isinstance(part.stride, Name) or part.stride.name not in (cascade.params or {}):
            raise _refuse(cascade, None, f"the key tile {key} is not set by a param", "partition M by a param M0")
        params[part.stride.name] = hw_rows
    binding = {e.name: ("2d" if e in products else "1d") for e in view.compute_einsums}
    # a stage of products alone (a prologue, QL = QC . WUK) binds nothing to the lanes: they only pass the
    # weights through; its query rank is then the 2D columns' only
    on_lanes = {"1d": {"lanes": (query,)}} if "1d" in binding.values() else {}
    return Mapping(
        name="lanes", cascade=cascade.name, params=params,
        description="2D products on the 2D array (key tile on the rows, queries on the columns), the rest on "
                    "the 1D lanes, one per query column",
        binding=binding, spatial={"2d": {"rows": (key,), "cols": (query,) if scan is None else ()}, **on_lanes},
        tiling={key: {"spatial": hw_rows}, query: {"spatial": min(hw_cols, view.sizes[query])}},
        groups=(FusionGroup(("all",), "sequential"),))


def _weight_lane_rank(cascade: Cascade, name: str, keys: frozenset[str]) -> str:
    """The lane rank of a cascade without a score product: the non-key rank of the value product's
    factor the lanes compute (its weights, e.g. ``FK[e, m]`` of ``KV[e, f] = FK[e, m] * V[f, m]``)."""
    e = cascade.einsum(name)
    body = e.expr.body if isinstance(e.expr, Reduce) else e.expr
    computed = {x.name for x in cascade.einsums}
    factors = [f for f in _product_factors(body) if isinstance(f, Access)]
    for f in factors:
        if f.tensor in computed:
            ranks = [r for r in cascade.tensors[f.tensor].ranks if r not in keys]
            if len(ranks) == 1:
                return ranks[0]
    # no computed factor (a stage's product of inputs or handed tensors, QL = QC . WUK): the first factor
    # is the weights (read by the lanes at [key, lane]); its rank the other factor lacks is the lane rank
    # (the ranks both carry are heads)
    if len(factors) == 2 and not any(f.tensor in computed for f in factors):
        mine, other = (set(cascade.tensors[f.tensor].ranks) - keys for f in factors)
        own = [r for r in cascade.tensors[factors[0].tensor].ranks if r in mine - other]
        if len(own) == 1:
            return own[0]
    raise _refuse(cascade, e, f"no multiply-accumulate product outputs the key rank (no score product) and the "
                  "value product has no computed factor [key, lane] the lanes could supply as its weights",
                  "the lanes run attention-like cascades: scores or per-key weights, weights x V")


def _is_sum_product(cascade: Cascade, name: str) -> bool:
    e = cascade.einsum(name)
    if isinstance(e.expr, Reduce):
        return e.expr.op == "sum" and not e.implicit_vars and isinstance(e.expr.body, BinOp) and \
            e.expr.body.op == "*"
    return bool(e.implicit_vars) and isinstance(e.expr, BinOp) and e.expr.op == "*"


# ------------------------------------------------------------------------------------------------
# Structure
# ------------------------------------------------------------------------------------------------

@dataclass
class Structure:
    """The ranks and 2D products of a cascade as the lanes see them (see the module docstring)."""

    key: str                                   # K0: the key tile rank (M0, or M unpartitioned)
    outer: str | None                          # K1: the tile rank of a 1-pass cascade (M1) or None
    lane: str                                  # the query rank on the lanes
    instances: tuple[str, ...]                 # other ranks of the score products' outputs (heads)
    value: str | None                          # the value products' feature rank (F)
    tile: int                                  # R
    values: int                                # F
    tiles: int                                 # key tiles per query block
    scores: tuple[str, ...]
    value_products: tuple[str, ...]
    input_side: frozenset[str] = frozenset()
    consts: dict[str, tuple[float, ...]] = field(default_factory=dict)
    weight_of: dict[str, tuple[str, bool, Expr]] = field(default_factory=dict)   # product -> (lane tensor, first?, other factor)
    direct: frozenset[str] = frozenset()       # inputs read by the lanes per key (entries of ``scores``)

    def coord_of(self, var: str) -> str | None:
        """Coordinate name of a rank variable (``k0``, ``k1``, ``k``, ``q`` or an instance variable)."""
        rank = rank_of(var)
        if rank == self.key:
            return "k" if self.outer is None else "k0"
        if rank == self.outer:
            return "k1"
        if rank == self.lane:
            return "q"
        if rank in self.instances:
            return var
        return None


def analyse(cascade: Cascade, schedule: Any) -> Structure:
    """The :class:`Structure` of ``cascade`` under ``schedule`` (refusals name the Einsum)."""
    on_2d = [n for n, e in schedule.einsums.items() if e.array == "2d"]
    on_1d = [n for n, e in schedule.einsums.items() if e.array != "2d"]
    for name in on_2d:
        if not _is_sum_product(cascade, name):
            ops = ", ".join(sorted(schedule.einsums[name].ops_per_point))
            raise _refuse(cascade, cascade.einsum(name), f"it is bound to the 2D array but is not a "
                          f"multiply-accumulate with a sum reduction (ops: {ops})",
                          "bind it to the 1d array: the 2D array runs only the products")
    rows = {r for n in on_2d for r, dim, f in schedule.einsums[n].spatial if dim.endswith(".rows")}
    lanes = {r for n in on_1d for r, dim, f in schedule.einsums[n].spatial if dim.startswith("1d")}
    if not on_1d:       # nothing bound to the lanes (a stage of products alone): the 2D columns' rank
        lanes = {r for n in on_2d for r, dim, f in schedule.einsums[n].spatial if dim.endswith(".cols")}
    if len(rows) != 1:
        raise MappingError(f"the lanes need one key rank on the 2D rows; the mapping puts {sorted(rows) or 'none'} "
                           "there", location=schedule.mapping.where("spatial"), hint="spatial: {2d: {rows: [M0]}}")
    if len(lanes) != 1:
        raise MappingError(f"the lanes need one query rank on the 1D lanes; the mapping puts {sorted(lanes) or 'none'} "
                           "there", location=schedule.mapping.where("spatial"), hint="spatial: {1d: {lanes: [P]}}")
    key, lane = rows.pop(), lanes.pop()
    sizes = schedule.sizes
    part = next((p for p in cascade.partitions if p.inner == key), None)
    outer = part.outer if part is not None else None
    values = tuple(n for n in on_2d if key in cascade.einsum(n).reduced_ranks)
    scores = tuple(n for n in on_2d if n not in values and key in cascade.einsum(n).iteration_ranks)
    for n in on_2d:
        if n not in values and n not in scores:
            e = cascade.einsum(n)
            proj = " (a projection of its inputs before attention, e.g. per-head keys from a latent cache)" \
                if set(e.inputs) <= set(cascade.inputs) else ""
            raise _refuse(cascade, e, f"this 2D product neither outputs nor reduces the key tile {key}{proj}",
                          "the lanes exchange per-key scores and per-tile value sums with the 2D array"
                          + ("; give the projected tensor as an input" if proj else ""))
    input_side = set(cascade.inputs)
    for e in cascade.einsums:        # views of the inputs (BK = K[m1*M0 + m0]) feed the 2D array
        if e.name not in schedule.einsums and set(e.inputs) <= input_side:
            input_side.add(e.name)
    weights_in = _input_weights(cascade, values, on_1d, input_side, key, outer, lane)
    instances = () if not scores else tuple(rank_of(v) for v in cascade.einsum(scores[0]).output_vars
                                            if rank_of(v) not in (key, outer, lane))
    if not scores and values:       # heads of a stage without scores: the weights' other ranks, and the
        # value products' output ranks before the last ([..., f, query]: KH[h, e, m] = CKV[c, m] . WUK[h, c, e])
        extra = [r for r in cascade.tensors[values[0]].ranks if r not in (key, outer, lane)]
        instances = tuple(dict.fromkeys([r for t in weights_in.values() for r in cascade.tensors[t].ranks
                                         if r not in (key, outer, lane)] + extra[:-1]))
    direct = _direct_inputs(cascade, [n for n in on_1d if n not in input_side], input_side, key, outer, lane,
                            instances)
    direct += tuple(t for t in dict.fromkeys(weights_in.values()) if t not in direct)
    scan = scan_ranks(cascade) if not values else None
    if not (scores or direct) or not (values or scan):
        raise _refuse(cascade, None, "it needs a score product (or per-key inputs the lanes read) and a value "
                      "product on the 2D array", "bind the multiply-accumulate products to the 2d array")
    vranks = set()
    for n in values:
        e = cascade.einsum(n)
        vranks |= {rank_of(v) for v in e.output_vars} - {key, outer, lane, *instances}
    if scan is not None:                # a scan on the lanes (scan.py): no value rank, one value column
        vranks = {None}
    if len(vranks) != 1:
        raise _refuse(cascade, cascade.einsum(values[0]), f"the value products' outputs have feature ranks "
                      f"{sorted(vranks) or 'none'}; the lane handles exactly one", "value products are [f, query]")
    vrank = vranks.pop()
    if outer is not None:
        tile, tiles = sizes[key], sizes[outer]
    else:
        spatial = {r: f for n in on_2d for r, dim, f in schedule.einsums[n].spatial if dim.endswith(".rows")}
        tile = spatial[key]
        tiles = -(-sizes[key] // tile)
    st = Structure(key, outer, lane, instances, vrank, tile, sizes[vrank] if vrank else 1, tiles, scores + direct,
                   values, frozenset(input_side), direct=frozenset(direct))
    params = _params(cascade, schedule)
    interp = Interpreter(cascade, dict(sizes), params)
    for n in direct:
        st.consts[n] = ()
    for n in scores + values:
        e = cascade.einsum(n)
        body = e.expr.body if isinstance(e.expr, Reduce) else e.expr
        factors = _product_factors(body)
        consts = []
        ranked = []
        for f in factors:
            if is_constant(f, params):
                consts.append(float(interp.eval(f, {}).data))
            else:
                ranked.append(f)
        st.consts[n] = tuple(consts)
        if n in values:
            lane_side = [k for k, f in enumerate(ranked) if isinstance(f, Access) and f.tensor in on_1d]
            if n in weights_in and len(ranked) == 2 and not lane_side:
                lane_side = [0]         # the weights are an input the lanes read directly (first factor)
            if len(ranked) != 2 or len(lane_side) != 1:
                raise _refuse(cascade, e, "a value product must multiply one lane tensor (the weights) by one "
                              "input-side tensor", "write it as W[k, q] * V[f, k] with constant factors only besides")
            k = lane_side[0]
            st.weight_of[n] = (ranked[k].tensor, k == 0, ranked[1 - k])
        elif any(isinstance(f, Access) and f.tensor in on_1d for f in ranked):
            raise _refuse(cascade, e, "a score product reads a lane tensor", "score products read inputs only")
    return st


def _input_weights(cascade: Cascade, values: tuple[str, ...], on_1d: list[str], input_side: set[str], key: str,
                   outer: str | None, lane: str) -> dict[str, str]:
    """Value products whose weights are an input (or a tensor an earlier stage hands over) rather than a
    lane Einsum: ``QL[h, c, p] = QC[h, e, p] * WUK[h, c, e]``, ``AV = AL[h, c, p] * WUV[h, c, f]``.  The
    first factor is the weights: read at its own coordinates, over the key rank and the lane rank (and
    heads), the lanes get it like a direct input (R values per tile into an ``in.score`` buffer) and emit
    it as the weights.  Product -> weights tensor."""
    out = {}
    for n in values:
        e = cascade.einsum(n)
        body = e.expr.body if isinstance(e.expr, Reduce) else e.expr
        factors = [f for f in _product_factors(body) if isinstance(f, Access)]
        if len(factors) != 2 or any(f.tensor in on_1d for f in factors):
            continue
        w = factors[0]
        ranks = cascade.tensors[w.tensor].ranks
        own = all(isinstance(i, Name) and i.name == var_of(r) for i, r in zip(w.indices, ranks))
        if w.tensor in input_side and own and key in ranks and lane in ranks:
            out[n] = w.tensor
    return out


def _direct_inputs(cascade: Cascade, lane_einsums: list[str], input_side: set[str], key: str, outer: str | None,
                   lane: str, instances: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Input tensors the lane Einsums read element by element (``FK[e, m] = phi(K[e, m])``): each is
    delivered like a score product's sums, R per tile into an ``in.score`` buffer, straight from an
    operand memory (no multiply-accumulate).  Its ranks must be the key rank (and the tile rank) and
    at most the lane rank, each read at its own coordinate."""
    out = []
    for n in lane_einsums:
        e = cascade.einsum(n)
        for a in walk(e.expr):
            if not isinstance(a, Access) or a.tensor not in input_side or a.tensor in out:
                continue
            ranks = cascade.tensors[a.tensor].ranks
            own = all(isinstance(i, Name) and i.name == var_of(r) for i, r in zip(a.indices, ranks))
            if not own or key not in ranks or not set(ranks) <= {key, outer, lane, *instances}:
                raise _refuse(cascade, e, f"it reads the input {a.tensor}[{', '.join(ranks)}] directly; the lanes "
                              f"read an input only at [key, lane] coordinates ({key}"
                              f"{', ' + outer if outer else ''}, {lane})",
                              "compute what the lanes need from the 2D products or inputs indexed by key and lane")
            out.append(a.tensor)
    return tuple(out)


def is_constant(x: Expr, params: Any) -> bool:
    """True for an expression of params and numbers only (no tensor, no rank variable)."""
    return not any(isinstance(n, Access) or isinstance(n, Name) and n.name.islower() and n.name not in params
                   and n.name != "inf" for n in walk(x))


def _params(cascade: Cascade, schedule: Any) -> dict[str, float]:
    from einloom.einsum.ranks import resolve
    _, params = resolve(cascade, dict(schedule.sizes))
    return params


# ------------------------------------------------------------------------------------------------
# The compiler
# ------------------------------------------------------------------------------------------------

@dataclass
class _Val:
    """A compiled subexpression: ``fmt`` (an operand of the format), ``const`` (a number),
    ``coord`` (a coordinate register: exact), or ``pred`` (a predicate register)."""

    kind: str
    operand: Operand | None = None
    value: float | None = None
    reg: Reg | None = None


@dataclass
class PassContext:
    """What the compilation of one pass of a multi-pass program (``passes.py``) shares with the others:
    ``only`` the lane Einsums it computes, ``resident`` the per-query tensors earlier passes left in
    registers, ``outputs`` the cascade outputs it emits, global score / value-product slots, one
    register list and name space (``suffix`` on its tensors' registers)."""

    only: frozenset[str]
    resident: dict[str, Reg]
    outputs: tuple[str, ...]
    score_slot: dict[str, int]
    chain_slot: dict[str, int]
    regs: list[Reg]
    buffers: dict[str, Reg]
    suffix: str = ""
    temp: list[int] = field(default_factory=lambda: [0])


class _Compiler:
    def __init__(self, cascade: Cascade, schedule: Any, st: Structure, ctx: PassContext | None = None):
        self.cascade, self.schedule, self.st, self.ctx = cascade, schedule, st, ctx
        self.params = _params(cascade, schedule)
        self.interp = Interpreter(cascade, dict(schedule.sizes), self.params)
        self.lane_einsums = [e for e in cascade.einsums if e.name not in st.input_side and
                             (e.name not in schedule.einsums or schedule.einsums[e.name].array != "2d") and
                             (ctx is None or e.name in ctx.only)]
        self.names = {e.name for e in self.lane_einsums}
        self.outputs = tuple(cascade.outputs) if ctx is None else ctx.outputs
        self.code: dict[str, list[Instr]] = {s: [] for s in SECTIONS}
        self.regs: list[Reg] = [] if ctx is None else ctx.regs
        self.temp = 0
        self.stage: dict[str, str] = {}
        self.tensor_reg: dict[tuple[str, str], Reg] = {}   # (tensor, version) -> register
        self.current: str = ""
        self.source: Any = None
        self.cse: dict[tuple, Reg] = {}
        # a per-key scan (scan.py): states over the key rank itself, carried from element to element of the
        # score section (old and new iterate, the copy after the old one's last read), an output at every key
        self.scan = not st.value_products and st.outer is None and scan_ranks(cascade) is not None
        self.key_commits: list[tuple[Reg, Reg, Any]] = []
        if ctx is not None:
            for t, r in ctx.resident.items():
                self.tensor_reg[(t, "plain")] = self.tensor_reg[(t, "final")] = r

    # ---------------------------------------------------------------- registers
    def new_reg(self, kind: str, tensor: str | None = None, name: str | None = None) -> Reg:
        ctx = self.ctx
        if name is None:
            if ctx is not None:
                ctx.temp[0] += 1
                self.temp = ctx.temp[0]
            else:
                self.temp += 1
            name = f"{kind[0]}{self.temp}"
        elif ctx is not None and name.startswith("in."):      # the 2D array's buffers: one per slot
            if name not in ctx.buffers:
                ctx.buffers[name] = Reg(name, kind, tensor, len(self.regs))
                self.regs.append(ctx.buffers[name])
            return ctx.buffers[name]
        elif ctx is not None:
            name += ctx.suffix
        r = Reg(name, kind, tensor, len(self.regs))
        self.regs.append(r)
        return r

    def emit(self, section: str, op: str, dst: Reg | None, srcs=(), imm=None, imm2=None) -> None:
        self.code[section].append(Instr(op, dst, tuple(srcs), imm, imm2, getattr(self.source, "name", "") or ""))

    def refuse(self, what: str, hint: str) -> SpecError:
        return _refuse(self.cascade, self.source, what, hint)

    # ---------------------------------------------------------------- classification
    def var_role(self, var: str) -> str:
        st = self.st
        rank = rank_of(var)
        if rank == st.key:
            return "elem"
        if rank == st.outer:
            return "tile"
        if rank == st.value:
            return "value"
        if rank == st.lane or rank in st.instances:
            return "lane"
        return "other"

    def level(self, einsum: Any) -> str:
        """``elem``, ``value`` or ``scalar`` by the Einsum's output variables; ``per_tile`` separately."""
        roles = {self.var_role(v) for v in einsum.output_vars}
        if "other" in roles:
            bad = next(v for v in einsum.output_vars if self.var_role(v) == "other")
            raise _refuse(self.cascade, einsum, f"its rank {rank_of(bad)} is neither the key tile, the tile index, "
                          "the value rank nor a lane rank", "the lane iterates keys, value columns and tiles only")
        if "elem" in roles and "value" in roles:
            raise _refuse(self.cascade, einsum, "it iterates both the key tile and the value rank (a product "
                          "for the 2D array)", "bind it to the 2d array as a multiply-accumulate")
        return "elem" if "elem" in roles else "value" if "value" in roles else "scalar"

    def per_tile(self, einsum: Any) -> bool:
        st = self.st
        if st.outer is None:
            return self.level(einsum) == "elem"
        return any(rank_of(v) == st.outer for v in einsum.output_vars)

    # ---------------------------------------------------------------- staging
    def reads(self, einsum: Any) -> list[tuple[str, str]]:
        """(tensor, version) pairs an Einsum reads: version ``old``, ``new``, ``final``, ``init``, ``plain``."""
        out = []
        for a in walk(einsum.expr):
            if isinstance(a, Access):
                out.append((a.tensor, self.version(a)))
        return out

    def access_sections(self, e: Any):
        """(tensor, version, section) of each access of ``e``: inside a reduction over the key tile the
        section of the reduction's element pass, else the Einsum's own section."""
        stage = self.stage[e.name]
        inner = {"tile": "score", "merge": "weight"}.get(stage, "score")

        def visit(x: Expr, sec: str):
            if isinstance(x, Access):
                yield x.tensor, self.version(x), sec
                return
            if isinstance(x, Reduce):
                roles = {self.var_role(v) for v in x.vars}
                if "elem" in roles:
                    sec = inner if self.st.outer is not None else "score"
                elif "tile" in roles:
                    sec = self.body_stage(x.body)
            for child in _children(x):
                yield from visit(child, sec)
        yield from visit(e.expr, stage)

    def version(self, a: Access) -> str:
        decl = self.cascade.tensors.get(a.tensor)
        it = getattr(decl, "iterative_rank", None)
        if not it:
            return "plain"
        idx = a.indices[decl.ranks.index(it)]
        v = var_of(it)
        if isinstance(idx, Name) and idx.name == v:
            return "old"
        if isinstance(idx, BinOp) and idx.op == "+" and isinstance(idx.left, Name) and idx.left.name == v:
            return "new"
        if isinstance(idx, Name) and idx.name == it:
            return "final"
        if isinstance(idx, Num) and idx.value == 0:
            return "init"
        raise self.refuse(f"it reads {a.tensor} at an iterate other than {v}, {v}+1, 0 or {it}",
                          "the lane keeps the current and the next iterate only")

    def compute_stages(self) -> None:
        st = self.st
        done: dict[str, str] = {}
        by_name = {e.name: e for e in self.lane_einsums}

        def avail(tensor: str, version: str, user: Any) -> int:
            if self.ctx is not None and tensor in self.ctx.resident:
                return _STAGE["state"]          # left in a register by an earlier pass
            if tensor in st.scores:
                return _STAGE["state"]
            if tensor in st.value_products:
                return _STAGE["value"] if st.outer is not None else _STAGE["final"]
            if tensor not in by_name:
                self.source = user
                raise self.refuse(f"it reads {tensor}, which is neither a 2D product nor computed on the lanes",
                                  "the lane sees only the 2D array's score and value sums")
            if version in ("old", "init"):
                return _STAGE["state"]
            if version == "final":
                return _STAGE["final"]
            if done.get(tensor) == "__pending__":
                self.source = user
                raise self.refuse(f"it depends on itself through {tensor}", "break the cycle with an iterate")
            return _STAGE[stage_of(by_name[tensor])]

        def stage_of(e: Any) -> str:
            if e.name in done:
                return done[e.name]
            done[e.name] = "__pending__"
            self.source = e
            level = self.level(e)
            per_tile = self.per_tile(e)
            reduced = {self.var_role(v) for v in e.reduced_vars}
            if e.implicit_vars and not self.lane_mac(e):
                raise self.refuse("it has an implicit sum (a multiply-accumulate) but is bound to the 1D array",
                                  "bind it to the 2d array")
            if "value" in reduced or "lane" in reduced or "other" in reduced:
                raise self.refuse("it reduces a rank other than the key tile or the tile index",
                                  "the lane reduces over a tile's keys and over tiles only")
            reads = [(t, v) for t, v in self.reads(e) if (t, v) != (e.name, "old")]
            deps = [avail(t, v, e) for t, v in reads]
            if (level == "elem" or per_tile) and max(deps, default=-1) >= _STAGE["final"]:
                late = next(t for (t, v), d in zip(reads, deps) if d >= _STAGE["final"])
                raise self.refuse(f"it runs per key tile but reads {late}, complete only after the last tile (a "
                                  "second pass over the keys, with per-query state kept between the passes: the "
                                  "lane core makes one pass over the keys per run)",
                                  "write the 1-pass form (a running max with rescaling, as fusemax-1pass or "
                                  "causal-1pass), which the lane core runs")
            need = max(deps, default=-1)
            elem_red = "elem" in reduced
            tile_red = "tile" in reduced or (st.outer is None and elem_red)
            if tile_red and per_tile:
                raise self.refuse("it reduces over tiles inside the pass over tiles", "read it after the last tile")
            if st.outer is None and elem_red and need > _STAGE["score"]:
                raise self.refuse("it reduces over all keys a value that the first pass over the keys cannot "
                                  "compute (a second pass over the keys)", "the lane makes one pass over the keys")
            if level == "elem" and not tile_red:
                if need <= _STAGE["score"]:
                    s = "score"
                elif need <= _STAGE["tile"]:
                    s = "weight"
                else:
                    raise self.refuse("it needs a third pass over the tile's scores (it reads a value that only "
                                      "the weight pass completes)", "the lane makes two passes over a tile")
            elif per_tile and level == "scalar":
                limit = 0 if elem_red else 1
                s = "tile" if need <= limit else "merge" if need <= limit + 2 else None
                if s is None:
                    raise self.refuse("a per-tile scalar reads a value the weight pass or the value columns "
                                      "complete (a third pass over the tile)", "two passes per tile")
            elif per_tile and level == "value":
                if any(by_name.get(t) is not None and self.level(by_name[t]) == "elem" for t, _ in self.reads(e)):
                    raise self.refuse("a per-value-column Einsum reads a per-key tensor (a product for the 2D array)",
                                      "bind the product to the 2d array")
                s = "value"
            elif level == "value":
                s = "output"
            else:
                s = "final"
            done[e.name] = s
            return s

        for e in self.lane_einsums:
            self.stage[e.name] = stage_of(e)

    # ---------------------------------------------------------------- compile
    def compile(self) -> Program:
        st = self.st
        for e in self.lane_einsums:        # the lanes keep their tensors in registers: no spill to DRAM
            if e.name in (self.schedule.mapping.spill or ()):
                raise MappingError(f"the mapping spills {e.name} to DRAM; the 1D lanes keep it in their registers",
                                   location=self.schedule.mapping.where("spill"),
                                   hint=f"remove {e.name} from spill")
        self.compute_stages()
        by_name = {e.name: e for e in self.lane_einsums}
        # tensors' registers and where they are read
        readers: dict[str, set[str]] = {}
        for e in self.lane_einsums:
            for t, v, sec in self.access_sections(e):
                readers.setdefault(t, set()).add(sec)
        for n in st.value_products:
            t = st.weight_of[n][0]
            readers.setdefault(t, set()).add("weight")
        for o in self.outputs:
            readers.setdefault(o, set()).add("output" if o in by_name and self.level(by_name[o]) == "value"
                                             else "score" if self.scan and self.stage.get(o) == "score"
                                             else "final")
        self.readers = readers
        # score products: the element's sum (an R-entry input buffer the 2D array drains into) times the
        # constant factors; value products: F-entry input buffers of the tile's column sums
        self.score_regs = {}
        for i, n in enumerate(st.scores):
            i = i if self.ctx is None else self.ctx.score_slot[n]
            self.source = None if n in st.direct else self.cascade.einsum(n)
            buf = self.new_reg("tile", n, f"in.score{i}")
            r = buf
            if st.consts[n]:
                r = self.new_reg("tile" if readers.get(n, set()) - {"score"} else "scalar", n, n)
                self.emit_scaled("score", r, reg(buf), st.consts[n])
            self.score_regs[n] = r
        self.chains = []
        self.value_regs = {}
        for i, n in enumerate(st.value_products):
            i = i if self.ctx is None else self.ctx.chain_slot[n]
            self.source = self.cascade.einsum(n)
            buf = self.new_reg("value", n, f"in.value{i}")
            if st.outer is not None:
                r = buf
                if st.consts[n]:
                    r = self.new_reg("value" if readers.get(n, set()) - {"value"} else "scalar", n, n)
                    self.emit_scaled("value", r, reg(buf), st.consts[n])
                self.chains.append(Chain(n, i, None))
            else:
                carry = self.new_reg("value", n, n + ".sum")
                self.emit("init", "init", carry, (), 0.0, False)
                self.emit("value", "mov", carry, (reg(buf),))
                r = carry
                if st.consts[n]:
                    r = self.new_reg("value", n, n)
                    self.emit_scaled("output", r, reg(carry), st.consts[n])
                self.chains.append(Chain(n, i, carry))
            self.value_regs[n] = r
        # iterative state
        order = self.topological()
        for e in order:
            if self.cascade.tensors[e.name].iterative_rank:
                self.alloc_iterative(e, order)
        initialised: set[Reg] = set()
        for init in self.cascade.init:
            if init.tensor not in by_name:
                continue                   # a pass that does not compute this iterate
            self.source = by_name.get(init.tensor)
            r = self.tensor_reg[(init.tensor, "old")]
            initialised.add(r)
            val = self.interp.eval(init.value, {})
            if getattr(val, "vars", ()):
                raise self.refuse("its init value depends on coordinates", "initialise with a constant")
            self.emit("init", "init", r, (), float(val.data), True)
        for e in order:
            self.source = e
            self.compile_einsum(e)
        for o in self.outputs:
            self.source = by_name.get(o) or self.cascade.einsum(o)
            if o in self.value_regs:
                sec = "output"
                src = reg(self.value_regs[o])
            elif self.scan and self.stage.get(o) == "score":       # an output at every key
                sec = "score"
                src = reg(self.tensor_reg[(o, "plain")])
            else:
                r = self.tensor_reg.get((o, "final")) or self.tensor_reg.get((o, "plain"))
                sec = "output" if r.kind == "value" or self.stage.get(o) == "output" else "final"
                src = reg(r)
            self.emit(sec, "out", None, (src,), o)
        for cur, nxt, e in self.key_commits:  # the key's new iterates become current: each copy right after
            self.source = e                   # the last read of the old iterate and the write of the new one
            code = self.code["score"]
            after = max([k for k, i in enumerate(code) if cur in i.reads() or i.dst == nxt], default=-1)
            code.insert(after + 1, Instr("mov", cur, (reg(nxt),), None, None, e.name))
        self.emit_weights()
        sections = {n: Section(n, tuple(self.code[n])) for n in SECTIONS}
        used = {r for sec in sections.values() for i in sec.instrs
                for r in [i.dst, *(o.reg for o in i.srcs if o.kind == "reg")] if r is not None}
        if self.ctx is None:           # a pass's registers are pruned over the whole program (passes.py)
            self.regs = [r for r in self.regs if r in used]
        outputs = {}
        for o in self.outputs:
            outputs[o] = "value" if any(i.imm == o for i in self.code["output"] if i.op == "out") else \
                "key" if any(i.imm == o for i in self.code["score"] if i.op == "out") else "scalar"
        return Program(self.cascade.name, sections, tuple(self.regs), st.scores, tuple(self.chains), outputs,
                       st.tile, st.values, st.key, st.lane, units_of(sections.values()), dict(st.consts), st)

    def emit_scaled(self, section: str, dst: Reg, src: Operand, consts: tuple[float, ...]) -> None:
        if not consts:
            self.emit(section, "mov", dst, (src,))
            return
        cur = src
        for k, c in enumerate(consts):
            self.emit(section, "mul", dst, (cur, const(c)))
            cur = reg(dst)

    def emit_weights(self) -> None:
        for i, n in enumerate(self.st.value_products):
            i = i if self.ctx is None else self.ctx.chain_slot[n]
            t = self.st.weight_of[n][0]
            r = self.tensor_reg.get((t, "plain"))
            self.source = self.cascade.einsum(n)
            if t in self.st.direct:             # an input read per key is the weights
                self.emit("weight", "wout", None, (reg(self.score_regs[t]),), i)
                continue
            if r is None or self.stage.get(t) not in ("score", "weight"):
                raise self.refuse(f"its weights {t} are not computed per key on the lanes",
                                  "the value product's lane factor must iterate the key tile")
            self.emit("weight", "wout", None, (reg(r),), i)

    def alloc_iterative(self, e: Any, order: list[Any]) -> None:
        st = self.st
        decl = self.cascade.tensors[e.name]
        if self.scan and decl.iterative_rank == st.key:     # per key: carried through the score section
            self.source = e
            if self.stage[e.name] != "score":
                raise self.refuse("a per-key state outside the pass over the keys", "update it from the key's scores")
            cur = self.new_reg("scalar", e.name, e.name)
            nxt = self.new_reg("scalar", e.name, e.name + "'")
            self.key_commits.append((cur, nxt, e))
            for v, r in (("old", cur), ("init", cur), ("new", nxt), ("plain", nxt), ("final", cur)):
                self.tensor_reg[(e.name, v)] = r
            return
        if decl.iterative_rank != st.outer:
            raise self.refuse(f"its iterative rank {decl.iterative_rank} is not the tile rank {st.outer}",
                              "the lane iterates over key tiles only")
        level = self.level(e)
        if level == "elem":
            raise self.refuse("an iterate over tiles that is indexed by the key tile", "iterate per-query state")
        kind = "value" if level == "value" else "scalar"
        self.source = e
        cur = self.new_reg(kind, e.name, e.name)
        position = {x.name: k for k, x in enumerate(order)}
        stage = self.stage[e.name]
        late = [o.name for o in self.lane_einsums if o.name != e.name and (e.name, "old") in self.reads(o)
                and (self.stage[o.name] != stage or position[o.name] > position[e.name])]
        if kind == "value":
            if late:
                raise self.refuse(f"its previous iterate is read by {late[0]} after the new one is written",
                                  "read the previous per-column iterate before updating it, in the same section")
            nxt = cur                                      # updated in place, column by column
        else:
            nxt = self.new_reg(kind, e.name, e.name + "'")
            self.emit("commit", "mov", cur, (reg(nxt),))
        self.tensor_reg[(e.name, "old")] = cur
        self.tensor_reg[(e.name, "init")] = cur
        self.tensor_reg[(e.name, "new")] = nxt
        self.tensor_reg[(e.name, "plain")] = nxt
        self.tensor_reg[(e.name, "final")] = cur

    def topological(self) -> list[Any]:
        by_name = {e.name: e for e in self.lane_einsums}
        out, seen = [], set()

        def visit(e):
            if e.name in seen:
                return
            seen.add(e.name)
            for t, v in self.reads(e):
                if t in by_name and t != e.name and v not in ("old", "init", "final"):
                    visit(by_name[t])
            out.append(e)
        for e in self.lane_einsums:
            visit(e)
        rank = {s: k for k, s in enumerate(SECTIONS)}
        return sorted(out, key=lambda e: rank[self.stage[e.name]])    # stable: topological within a section

    def dst_reg(self, e: Any) -> Reg:
        decl = self.cascade.tensors[e.name]
        if decl.iterative_rank:
            return self.tensor_reg[(e.name, "new")]
        stage = self.stage[e.name]
        later = self.readers.get(e.name, set()) - {stage}
        level = self.level(e)
        if level == "elem":
            kind = "tile" if later else "scalar"
        elif level == "value":
            kind = "value" if later else "scalar"
        else:
            kind = "scalar"
        r = self.new_reg(kind, e.name, e.name)
        self.tensor_reg[(e.name, "plain")] = r
        self.tensor_reg[(e.name, "final")] = r
        return r

    def lane_mac(self, e: Any) -> bool:
        """Whether ``e`` is a multiply-accumulate of lane tensors over the tile rank (split-KV's merge
        ``WO[f, p] = W[m1, p] * O[m1, f, p]``): the lanes run it as the golden ``mac`` chain over the
        tiles, ``acc + a * b`` with the product a ``mac`` adds (``mulx``: in bf16 the exact fp32 product of the
        bf16-rounded operands, in fixed point the exact product at ``fa + fb`` fraction bits), ``acc add``."""
        return bool(e.implicit_vars) and _is_sum_product(self.cascade, e.name) and \
            {self.var_role(v) for v in e.implicit_vars} == {"tile"}

    def compile_einsum(self, e: Any) -> None:
        self.current = self.stage[e.name]
        dst = self.dst_reg(e)
        val = self.expr(Reduce("sum", tuple(e.implicit_vars), e.expr) if self.lane_mac(e) else e.expr)
        if val.kind == "fmt":
            self.emit(self.current, "mov", dst, (val.operand,))
        elif val.kind == "const":
            self.emit(self.current, "mov", dst, (const(val.value),))
        elif val.kind == "coord":
            self.emit(self.current, "cvt", dst, (val.operand,))
        else:
            self.emit(self.current, "sel", dst, (reg(val.reg), const(1.0), const(0.0)))
        self._fold_mov(dst)

    def _fold_mov(self, dst: Reg) -> None:
        """``op t, ...; mov dst, t`` -> ``op dst, ...`` when ``t`` is this Einsum's own temporary."""
        code = self.code[self.current]
        if len(code) >= 2 and code[-1].op == "mov" and code[-1].srcs[0].kind == "reg":
            t = code[-1].srcs[0].reg
            prev = code[-2]
            if prev.dst == t and t.tensor is None and prev.op != "acc":
                code[-2:] = [Instr(prev.op, dst, prev.srcs, prev.imm, prev.imm2, prev.source)]

    # ---------------------------------------------------------------- expressions
    def fmt(self, v: _Val) -> Operand:
        if v.kind == "fmt":
            return v.operand
        if v.kind == "const":
            return const(v.value)
        if v.kind == "coord":
            t = self.new_reg("scalar")
            self.emit(self.current, "cvt", t, (v.operand,))
            return reg(t)
        t = self.new_reg("scalar")
        self.emit(self.current, "sel", t, (reg(v.reg), const(1.0), const(0.0)))
        return reg(t)

    def coord(self, v: _Val) -> Operand:
        if v.kind == "coord":
            return v.operand
        if v.kind == "const":
            return const(v.value)
        raise self.refuse("a format value meets coordinate arithmetic", "compare format values with cmp")

    def pred(self, v: _Val) -> Operand:
        if v.kind == "pred":
            return reg(v.reg)
        if v.kind in ("coord", "const"):
            return self.coord(v)
        raise self.refuse("a format value is used as a condition", "compare it, e.g. where(x > 0, ...)")

    def coord_op(self, op: str, a: _Val, b: _Val | None, imm: Any = None) -> _Val:
        """A coordinate instruction, folded (``x + 0``, ``x * 1``) and shared within the section (CSE)."""
        srcs = (self.coord(a),) + (() if b is None else (self.coord(b),))
        if op in ("cadd", "csub") and srcs[-1].kind == "const" and srcs[-1].value == 0:
            return _Val("coord", operand=srcs[0])
        if op == "cadd" and srcs[0].kind == "const" and srcs[0].value == 0:
            return _Val("coord", operand=srcs[1])
        if op == "cmul" and srcs[-1].kind == "const" and srcs[-1].value == 1:
            return _Val("coord", operand=srcs[0])
        key = (self.current, op, tuple(str(x) for x in srcs), imm)
        if key not in self.cse:
            t = self.new_reg("coord")
            self.emit(self.current, op, t, srcs, imm)
            self.cse[key] = t
        return _Val("coord", operand=reg(self.cse[key]))

    def temp_for(self, kind: str = "scalar") -> Reg:
        return self.new_reg(kind)

    def expr(self, x: Expr) -> _Val:
        if not any(isinstance(n, (Access, Reduce)) or (isinstance(n, Name) and self.is_var(n.name))
                   for n in walk(x)):
            val = self.interp.eval(x, {})
            return _Val("const", value=float(val.data))
        if isinstance(x, Name):
            c = self.st.coord_of(x.name)
            if c is None:
                raise self.refuse(f"it uses the rank variable {x.name}, which the lane has no coordinate for",
                                  "coordinates: the key index, the tile index, the query index, head indices")
            return _Val("coord", operand=port(c))
        if isinstance(x, Access):
            return _Val("fmt", operand=self.access(x))
        if isinstance(x, BinOp):
            return self.binop(x)
        if isinstance(x, Unary):
            v = self.expr(x.operand)
            if x.op == "not":
                if v.kind == "coord":
                    return self.coord_op("cnot", v, None)
                t = self.new_reg("pred")
                self.emit(self.current, "not", t, (self.pred(v),))
                return _Val("pred", reg=t)
            if v.kind == "coord":
                return self.coord_op("csub", _Val("const", value=0.0), v)
            t = self.temp_for()
            self.emit(self.current, "neg", t, (self.fmt(v),))
            return _Val("fmt", operand=reg(t))
        if isinstance(x, Call):
            return self.call(x)
        if isinstance(x, Reduce):
            return self.reduce(x)
        raise self.refuse(f"unsupported expression {x!r}", "")

    def is_var(self, name: str) -> bool:
        return name.islower() and name not in self.params and name != "inf"

    def access(self, a: Access) -> Operand:
        for idx, rank in zip(a.indices, self.cascade.tensors[a.tensor].ranks):
            ok = isinstance(idx, Name) and (idx.name == var_of(rank) or idx.name == rank) or \
                isinstance(idx, Num) and idx.value == 0 or \
                isinstance(idx, BinOp) and idx.op == "+" and isinstance(idx.left, Name) and \
                idx.left.name == var_of(rank) and isinstance(idx.right, Num) and idx.right.value == 1
            if not ok:
                raise self.refuse(f"it reads {a.tensor} at a shifted or reversed index",
                                  "the lane reads its tensors at the iteration's own coordinates")
        if a.tensor in self.score_regs:
            r = self.score_regs[a.tensor]
        elif a.tensor in self.value_regs:
            r = self.value_regs[a.tensor]
        else:
            version = self.version(a)
            r = self.tensor_reg.get((a.tensor, version)) or self.tensor_reg.get((a.tensor, "plain"))
            if r is None:
                raise self.refuse(f"it reads {a.tensor} before it is computed", "order the Einsums")
        return reg(r)

    def binop(self, x: BinOp) -> _Val:
        a, b = self.expr(x.left), self.expr(x.right)
        op = x.op
        if op in ("and", "or"):
            if a.kind in ("coord", "const") and b.kind in ("coord", "const"):
                return self.coord_op("c" + op, a, b)
            t = self.new_reg("pred")
            self.emit(self.current, op, t, (self.pred(a), self.pred(b)))
            return _Val("pred", reg=t)
        if a.kind in ("coord", "const") and b.kind in ("coord", "const"):
            copname = {"+": "cadd", "-": "csub", "*": "cmul"}.get(op) or ("ccmp" if op in _CMP else None)
            if copname is None:
                raise self.refuse(f"coordinate arithmetic with {op!r}", "coordinates take + - * and comparisons")
            return self.coord_op(copname, a, b, op if op in _CMP else None)
        if op in _CMP:
            t = self.new_reg("pred")
            self.emit(self.current, "cmp", t, (self.fmt(a), self.fmt(b)), op)
            return _Val("pred", reg=t)
        if op not in _ARITH:
            raise self.refuse(f"operator {op!r} has no lane unit", "use + - * / and comparisons")
        t = self.temp_for()
        self.emit(self.current, _ARITH[op], t, (self.fmt(a), self.fmt(b)))
        return _Val("fmt", operand=reg(t))

    def call(self, x: Call) -> _Val:
        if x.func == "where":
            p = self.pred(self.expr(x.args[0]))
            branches = [self.expr(a) for a in x.args[1:]]
            if not any(b.kind == "fmt" for b in branches):
                raise self.refuse("a where() whose branches are both constants or coordinates",
                                  "select between format values")
            t = self.temp_for()
            if len(branches) == 1:
                self.emit(self.current, "sel0", t, (p, self.fmt(branches[0])))
            else:
                self.emit(self.current, "sel", t, (p, self.fmt(branches[0]), self.fmt(branches[1])))
            return _Val("fmt", operand=reg(t))
        if x.func == "exp" and len(x.args) == 1 and isinstance(x.args[0], BinOp) and x.args[0].op == "*":
            left, right = self.expr_peek(x.args[0].left), self.expr_peek(x.args[0].right)
            for c_expr, v_expr, c in ((x.args[0].left, x.args[0].right, left), (x.args[0].right, x.args[0].left, right)):
                if c is not None:
                    v = self.expr(v_expr)
                    if v.kind == "fmt":
                        t = self.temp_for()
                        self.emit(self.current, "exp", t, (v.operand,), c)
                        return _Val("fmt", operand=reg(t))
                    break
        op = operators.map_operator(x.func)
        if op is None:
            raise self.refuse(f"function {x.func} is unknown", "register it with einloom.einsum.operators")
        args = [self.expr(a) for a in x.args]
        if not any(a.kind == "fmt" for a in args):
            raise self.refuse(f"{x.func}() of coordinates or constants only", "the lane computes it in the format")
        t = self.temp_for()
        srcs = tuple(self.fmt(a) for a in args)
        if x.func in ("max", "min"):
            self.emit(self.current, x.func, t, srcs)
        elif x.func in _UNARY_FN:
            self.emit(self.current, _UNARY_FN[x.func], t, srcs, None)
        else:
            self.emit(self.current, "fn", t, srcs, x.func)
        return _Val("fmt", operand=reg(t))

    def expr_peek(self, x: Expr) -> float | None:
        """The value of a constant (var-free, not boolean) subexpression, else None."""
        if any(isinstance(n, (Access, Reduce)) or (isinstance(n, Name) and self.is_var(n.name)) for n in walk(x)):
            return None
        val = self.interp.eval(x, {})
        if val.data.dtype == bool:
            return None
        return float(val.data)

    def reduce(self, x: Reduce) -> _Val:
        st = self.st
        roles = {self.var_role(v) for v in x.vars}
        if x.op not in ("sum", "max", "min", "prod"):
            raise self.refuse(f"reduction {x.op} has no lane unit", "reduce with sum, max, min or prod")
        mac = x.op == "sum" and isinstance(x.body, BinOp) and x.body.op == "*"
        if mac and roles != {"tile"}:
            raise self.refuse("it sums products over the key tile (a multiply-accumulate)",
                              "bind it to the 2d array")
        if len(x.vars) != 1 or not roles <= {"elem", "tile"}:
            raise self.refuse("it reduces over ranks other than one key tile or tile rank",
                              "reduce over the key tile or over tiles")
        acc_op = {"sum": "add", "max": "max", "min": "min", "prod": "mul"}[x.op]
        identity = operators.reduction(x.op).identity
        role = roles.pop()
        outer_section = self.current
        if role == "elem" and st.outer is not None:
            body_section = {"tile": "score", "merge": "weight"}.get(outer_section)
            init_section = {"tile": "begin", "merge": "tile"}.get(outer_section)
        else:
            # a reduction over all tiles (or the whole key rank): the body runs per tile / per element
            body_section = "score" if role == "elem" else self.body_stage(x.body)
            init_section = "init"
        if body_section is None:
            raise self.refuse("a reduction over the key tile outside a per-tile Einsum", "")
        acc = self.new_reg("value" if body_section == "value" else "scalar")   # per value column, or one
        self.emit(init_section, "init", acc, (), identity, False)
        self.current = body_section
        if mac:                          # the golden mac: the product it adds (mulx), then the add
            factors = tuple(self.fmt(self.expr(f)) for f in (x.body.left, x.body.right))
            prod = self.new_reg("scalar")
            self.emit(body_section, "mulx", prod, factors)
            v = _Val("fmt", operand=reg(prod))
        else:
            v = self.expr(x.body)
        self.emit(body_section, "acc", acc, (self.fmt(v),), acc_op)
        self.current = outer_section
        return _Val("fmt", operand=reg(acc))

    def body_stage(self, body: Expr) -> str:
        stages = [self.stage[a.tensor] for a in walk(body) if isinstance(a, Access) and a.tensor in self.stage]
        rank = {s: k for k, s in enumerate(SECTIONS)}
        return max(stages, key=lambda s: rank[s], default="tile") if stages else "tile"


def _children(x: Expr) -> tuple[Expr, ...]:
    if isinstance(x, BinOp):
        return (x.left, x.right)
    if isinstance(x, Unary):
        return (x.operand,)
    if isinstance(x, Call):
        return tuple(x.args)
    if isinstance(x, Reduce):
        return (x.body,)
    return ()


def compile_lanes(cascade: Cascade, schedule: Any) -> Program:
    """Compile the Einsums ``schedule`` binds to the 1D array into a lane :class:`Program`."""
    from einloom.rtl.lanes.passes import compile_passes
    st = analyse(cascade, schedule)
    program = compile_passes(cascade, schedule, st)      # several passes over the keys (None: one)
    return program if program is not None else _Compiler(cascade, schedule, st).compile()


def arch_latency(arch: Any) -> dict[str, int]:
    """Op class -> cycles from issue to result from the architecture's 1D units (``latency``, else
    ``cycles``; a composed unit such as ``div: {as_recip: 1, mul: 1}`` is its parts in series); the
    move path, compares and the coordinate unit take 1 cycle."""
    units = arch.array_1d.units
    out: dict[str, int] = {"select": 1, "cmp": 1, "coord": 1, "cvt": 1}

    def of(op: str) -> int:
        u = units[op]
        if u.parts:
            return sum(of(p) * int(n) for p, n in u.parts)
        return int(u.latency if u.latency is not None else (u.cycles or 1))
    for op in units:
        out[op] = of(op)
    return out
