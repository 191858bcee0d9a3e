"""Reference executor: a lane :class:`~einloom.rtl.lanes.isa.Program` run on a number format's
:class:`~einloom.sim.formats.arith.Arith`, with the 2D array's products computed by the golden model.

This is the bit-exact model the RTL lane is tested against, and it is itself tested against
:func:`~einloom.sim.formats.interpret.run_in_format` of the whole cascade (same outputs, bit for bit).
Every lane (query column, and every head: the instance ranks) runs the same program on NumPy
arrays, one element per lane.  The 2D array is modelled as the golden model computes it:

* a score product's raw sum per key (``sum[e] Q[e, p] * K[e, m]``, a ``mac`` chain over its reduced
  rank in the format interpreter's order; its constant factors are the lane's first instructions);
* a value product per tile and value column: a ``mac`` chain over the tile's keys 0 .. R-1 of
  ``mac(acc, weight, v)`` (the factors in the order the cascade writes them), skipping keys whose
  weight or value is absent, started from 0 (a per-tile product) or from the lane's carry register (a
  product over the whole key rank, continued from tile to tile).

Coordinates are exact; ``cvt`` rounds a coordinate value with ``Arith.const`` (the format
interpreter does the same for constants and for grids of at most 64 distinct coordinate values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, var_of
from einloom.einsum.expr import Access, BinOp, Name, Reduce
from einloom.einsum.interpret import _align, _product_factors, input_sizes
from einloom.einsum.ranks import resolve
from einloom.base.errors import Location
from einloom.rtl.lanes.compile import is_constant
from einloom.rtl.lanes.isa import SECTIONS, TILE_SECTIONS, Instr, Operand, Program, Reg, section_name
from einloom.sim.formats.arith.base import Arith
from einloom.sim.formats.interpret import FormatInterpreter

_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
        "!=": np.not_equal}


@dataclass
class Products:
    """The 2D array's side, per tile: raw score sums ``scores[i]`` (data, valid) shaped [T, R, L] and
    the value products' input-side factors ``values[i]`` shaped [F, T, R, L] (L lanes)."""

    scores: list[tuple[np.ndarray, np.ndarray]]
    values: list[tuple[np.ndarray, np.ndarray]]
    lanes: int
    lane_vars: tuple[str, ...]
    lane_sizes: tuple[int, ...]
    coords: dict[str, np.ndarray]
    tiles: int
    sizes: dict[str, int]


@dataclass
class LaneRun:
    """Outputs of :func:`execute`: codes in the cascade's output rank order, their validity, and per
    tile the weights each value product received (``weights[i][t]``: data, valid [R, L])."""

    codes: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    weights: list[list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    sums: list[list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    scores: list[list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    per_lane: dict[str, np.ndarray] = field(default_factory=dict)    # output codes [beats, lanes]


def _full(arith: Arith, val, vars_: tuple[str, ...], want: tuple[str, ...], sizes: Mapping[str, int]):
    shape = tuple(sizes[v] for v in want)
    data = np.broadcast_to(_align(arith_data(arith, val.data), vars_, want), shape)
    valid = np.ones(shape, dtype=bool) if val.valid is None else \
        np.broadcast_to(_align(val.valid, vars_, want), shape)
    return data, valid


def arith_data(arith: Arith, data: np.ndarray) -> np.ndarray:
    return data if data.dtype == arith.dtype else np.asarray(arith.from_float(np.asarray(data, float)))


def input_side(program: Program, cascade: Cascade, arith: Arith, inputs: Mapping[str, np.ndarray],
               params: Mapping[str, float] | None = None) -> tuple[FormatInterpreter, dict, dict]:
    """A format interpreter of ``cascade`` holding ``inputs`` (codes) and every Einsum on the input
    side of the 2D products (``program.structure.input_side``: key-tile views, scaled operands), and
    the resolved rank sizes and param values: what the 2D array's operands are computed from."""
    st = program.structure
    given = input_sizes(cascade, dict(inputs), dict(params or {}),
                        lambda name: Location(cascade.file, None, f"inputs.{name}"))
    sizes, pvals = resolve(cascade, given)
    fi = FormatInterpreter(cascade, sizes, pvals, arith)
    for name in cascade.inputs:
        fi.store[name] = (arith.from_input(np.asarray(inputs[name])), None)
    for e in cascade.einsums:
        if e.name in st.input_side and e.name not in cascade.inputs:
            fi.evaluate_einsum(e, {})
    return fi, sizes, pvals


def golden_products(program: Program, cascade: Cascade, arith: Arith, inputs: Mapping[str, np.ndarray],
                    params: Mapping[str, float] | None = None) -> Products:
    """The 2D array's score sums and value-side operands of ``inputs`` (codes) in ``arith``."""
    st = program.structure
    fi, sizes, pvals = input_side(program, cascade, arith, inputs, params)
    vsize = {var_of(r): n for r, n in sizes.items()}
    lane_vars = tuple(var_of(r) for r in st.instances) + (var_of(st.lane),)
    lane_sizes = tuple(vsize[v] for v in lane_vars)
    lanes = int(np.prod(lane_sizes))
    R, T = st.tile, st.tiles
    key, outer = var_of(st.key), (var_of(st.outer) if st.outer else None)
    elem = (outer, key) if outer else (key,)

    def tiled(data: np.ndarray, valid: np.ndarray, lead: int) -> tuple[np.ndarray, np.ndarray]:
        """[..lead.., elem vars, lanes...] -> [..lead.., T, R, L] (the whole key rank padded to T*R)."""
        shape = data.shape
        data = data.reshape(shape[:lead] + (-1, lanes))
        valid = valid.reshape(shape[:lead] + (-1, lanes))
        pad = T * R - data.shape[lead]
        if pad:
            widths = [(0, 0)] * lead + [(0, pad), (0, 0)]
            data = np.concatenate([data, np.broadcast_to(arith.const(0.0), data.shape[:lead] + (pad, lanes))],
                                  axis=lead)
            valid = np.pad(valid, widths, constant_values=False)
        return data.reshape(shape[:lead] + (T, R, lanes)), valid.reshape(shape[:lead] + (T, R, lanes))

    scores = []
    for n in st.scores:
        want = elem + lane_vars
        if n in st.direct:              # an input the lanes read per key: straight from its memory
            val = fi.eval(Access(n, tuple(Name(var_of(r)) for r in cascade.tensors[n].ranks)), {})
            data, valid = _full(arith, val, val.vars, want, vsize)
            scores.append(tiled(np.ascontiguousarray(data), np.ascontiguousarray(valid), 0))
            continue
        e = cascade.einsum(n)
        fi.order = tuple(e.iteration_vars)
        body = e.expr.body if isinstance(e.expr, Reduce) else e.expr
        red = e.expr.vars if isinstance(e.expr, Reduce) else e.implicit_vars
        ranked = [f for f in _product_factors(body) if not is_constant(f, pvals)]
        prod = ranked[0]
        for f in ranked[1:]:
            prod = BinOp("*", prod, f)
        val = fi.contract(Reduce("sum", tuple(red), prod), {})
        want = elem + lane_vars
        data, valid = _full(arith, val, val.vars, want, vsize)
        scores.append(tiled(np.ascontiguousarray(data), np.ascontiguousarray(valid), 0))
    values = []
    f_var = var_of(st.value) if st.value else None
    for n in st.value_products:
        e = cascade.einsum(n)
        fi.order = tuple(e.iteration_vars)
        _, _, other = st.weight_of[n]
        val = fi.eval(other, {})
        want = (f_var,) + elem + lane_vars
        data, valid = _full(arith, val, val.vars, want, vsize)
        values.append(tiled(np.ascontiguousarray(data), np.ascontiguousarray(valid), 1))
    coords = {}
    grids = np.meshgrid(*[np.arange(n) for n in lane_sizes], indexing="ij")
    for v, g in zip(lane_vars, grids):
        coords["q" if v == var_of(st.lane) else v] = g.reshape(-1).astype(np.float64)
    return Products(scores, values, lanes, lane_vars, lane_sizes, coords, T, dict(sizes))


class _Machine:
    """Register state of all lanes and the instruction semantics (validity rules: module :mod:`.isa`)."""

    def __init__(self, program: Program, arith: Arith, products: Products):
        self.p, self.a, self.prod = program, arith, products
        L, R, F = products.lanes, program.tile, program.values
        self.data: dict[Reg, np.ndarray] = {}
        self.valid: dict[Reg, np.ndarray] = {}
        for r in program.regs:
            rows = {"tile": (R,), "value": (F,)}.get(r.kind, ())
            if r.kind == "coord":
                self.data[r] = np.zeros(rows + (L,))
            elif r.kind == "pred":
                self.data[r] = np.zeros(rows + (L,), dtype=bool)
            else:
                self.data[r] = np.full(rows + (L,), arith.const(0.0), dtype=arith.dtype)
            self.valid[r] = np.zeros(rows + (L,), dtype=bool)
        self.k = 0
        self.f = 0
        self.t = 0
        self.weights: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in program.chains]
        self.outputs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    # operands
    def slot(self, r: Reg):
        if r.kind == "tile":
            return self.k
        if r.kind == "value":
            return self.f
        return slice(None)

    def read(self, o: Operand) -> tuple[np.ndarray, np.ndarray]:
        L = self.prod.lanes
        if o.kind == "const":
            return np.broadcast_to(self.a.const(o.value), (L,)), np.ones(L, dtype=bool)
        if o.kind == "port":
            return self.coord(o.port), np.ones(L, dtype=bool)
        r = o.reg
        i = self.slot(r)
        return self.data[r][i], self.valid[r][i]

    def read_coord(self, o: Operand) -> np.ndarray:
        if o.kind == "const":
            return np.full(self.prod.lanes, o.value)
        return np.asarray(self.read(o)[0], dtype=np.float64)

    def coord(self, name: str) -> np.ndarray:
        L = self.prod.lanes
        R = self.p.tile
        if name == "k0":
            return np.full(L, float(self.k))
        if name == "k1":
            return np.full(L, float(self.t))
        if name == "k":
            return np.full(L, float(self.t * R + self.k))
        return self.prod.coords[name]

    def write(self, r: Reg, data, valid) -> None:
        i = self.slot(r)
        self.data[r][i] = data
        self.valid[r][i] = valid

    # instructions
    def step(self, ins: Instr) -> None:
        a, op = self.a, ins.op
        if op.startswith("c") and op not in ("cmp", "cvt"):
            self.coord_op(ins)
            return
        if op == "init":
            self.write(ins.dst, a.const(ins.imm), bool(ins.imm2))
            return
        srcs = [self.read(s) for s in ins.srcs]
        datas = [d for d, _ in srcs]
        valids = [v for _, v in srcs]
        if op == "acc":
            x, vx = srcs[0]
            acc, vacc = self.read(Operand("reg", reg=ins.dst))
            fn = {"add": a.add, "max": a.maximum, "min": a.minimum, "mul": a.mul}[ins.imm]
            self.write(ins.dst, np.where(vx, fn(acc, x), acc), vacc | vx)
            return
        if op == "wout":
            self.weights[ins.imm].append((datas[0].copy(), valids[0].copy()))
            return
        if op == "out":
            self.outputs.setdefault(ins.imm, []).append((datas[0].copy(), valids[0].copy()))
            return
        if op == "mov":
            self.write(ins.dst, datas[0], valids[0])
            return
        if op == "mulx":                                   # the product a mac adds (the 2D array's PE)
            self.write(ins.dst, a.product(datas[0], datas[1]), valids[0] & valids[1])
            return
        if op == "cvt":
            x = np.asarray(datas[0], dtype=np.float64)
            out = np.empty(x.shape, dtype=a.dtype)
            for u in np.unique(x):
                out[x == u] = a.const(float(u))
            self.write(ins.dst, out, valids[0])
            return
        if op in ("add", "max", "min"):                     # union: an absent operand is the identity
            ident = a.const({"add": 0.0, "max": -np.inf, "min": np.inf}[op])
            datas = [np.where(v, d, ident) for d, v in zip(datas, valids)]
            fn = {"add": a.add, "max": a.maximum, "min": a.minimum}[op]
            self.write(ins.dst, fn(*datas), valids[0] | valids[1])
            return
        valid = np.logical_and.reduce(valids) if valids else True
        if op == "sel":
            self.write(ins.dst, a.select(np.asarray(datas[0], dtype=bool), datas[1], datas[2]), valid)
        elif op == "sel0":
            c = np.asarray(datas[0], dtype=bool)
            self.write(ins.dst, a.select(c, datas[1], a.const(0.0)), valid & c)
        elif op == "cmp":
            self.write(ins.dst, a.compare(ins.imm, datas[0], datas[1]), valid)
        elif op in ("and", "or"):
            fn = np.logical_and if op == "and" else np.logical_or
            self.write(ins.dst, fn(np.asarray(datas[0], bool), np.asarray(datas[1], bool)), valid)
        elif op == "not":
            self.write(ins.dst, ~np.asarray(datas[0], bool), valid)
        elif op == "exp":
            self.write(ins.dst, a.exp(datas[0], premul=ins.imm), valid)
        elif op == "fn":
            self.write(ins.dst, a.apply_operator(ins.imm, operators.map_operator(ins.imm).function, *datas), valid)
        else:
            fn = {"sub": a.sub, "mul": a.mul, "div": a.div, "neg": a.neg, "recip": a.recip, "log": a.log}[op]
            self.write(ins.dst, fn(*datas), valid)

    def coord_op(self, ins: Instr) -> None:
        xs = [self.read_coord(s) for s in ins.srcs]
        op = ins.op
        if op == "cadd":
            out = xs[0] + xs[1]
        elif op == "csub":
            out = xs[0] - xs[1]
        elif op == "cmul":
            out = xs[0] * xs[1]
        elif op == "ccmp":
            out = _CMP[ins.imm](xs[0], xs[1]).astype(np.float64)
        elif op == "cand":
            out = ((xs[0] != 0) & (xs[1] != 0)).astype(np.float64)
        elif op == "cor":
            out = ((xs[0] != 0) | (xs[1] != 0)).astype(np.float64)
        elif op == "cnot":
            out = (xs[0] == 0).astype(np.float64)
        else:
            raise ValueError(f"unknown coordinate op {op}")
        self.write(ins.dst, out, True)

    def run(self, name: str, n: int = 1) -> None:
        sec = self.p.section(name)
        for j in range(n if sec.index else 1):
            if sec.index == "k":
                self.k = j
            elif sec.index == "f":
                self.f = j
            for ins in sec.instrs:
                self.step(ins)


def execute(program: Program, cascade: Cascade, arith: Arith, inputs: Mapping[str, np.ndarray],
            params: Mapping[str, float] | None = None, products: Products | None = None) -> LaneRun:
    """Run ``program`` on every lane (bit-exact model of the RTL lane; see the module docstring).

    ``inputs`` are the cascade's input codes; ``params`` overrides (the mapping's tile param, e.g.
    ``{"M0": R}``; :func:`einloom.rtl.lanes.compile.lane_mapping` sets it to the 2D rows)."""
    prod = products or golden_products(program, cascade, arith, inputs, params)
    m = _Machine(program, arith, prod)
    st = program.structure
    R, F = program.tile, program.values
    run = LaneRun({}, {})
    run.weights = [[] for _ in program.chains]
    run.sums = [[] for _ in program.chains]
    run.scores = [[] for _ in program.scores]
    buffers = {r.name: r for r in program.regs}
    for k, ((s_lo, s_hi), (c_lo, c_hi)) in enumerate(program.pass_ranges()):   # passes over the keys
        m.run(section_name("init", k), F)
        for t in range(prod.tiles):
            m.t = t
            for i, (data, valid) in enumerate(prod.scores):
                if not s_lo <= i < s_hi:
                    continue
                r = buffers.get(f"in.score{i}")
                if r is not None:
                    m.data[r][:] = data[t]
                    m.valid[r][:] = valid[t]
                run.scores[i].append((data[t], valid[t]))
            for base in TILE_SECTIONS:
                name = section_name(base, k)
                if base == "value":
                    _value_products(m, program, prod, t, buffers, run, range(c_lo, c_hi))
                n = {"k": R, "f": F}.get(program.section(name).index, 1)
                m.run(name, n)
        m.run(section_name("final", k))
    m.run("output", F)
    for name, beats in m.outputs.items():
        decl = cascade.tensors[name]
        data = np.stack([d for d, _ in beats])        # [F or 1, L]
        valid = np.stack([v for _, v in beats])
        run.per_lane[name] = np.asarray(arith.to_output(data))
        if program.outputs[name] == "key":           # a scan's output at every key (scan.py): T x R beats
            M = int(prod.sizes[st.key])
            data, valid = data[:M], valid[:M]
        have = ((var_of(st.value),) if len(beats) == F and program.outputs[name] == "value" else
                (var_of(st.key),) if program.outputs[name] == "key" else ("_one",)) + prod.lane_vars
        shape = data.shape[:1] + prod.lane_sizes
        data, valid = data.reshape(shape), valid.reshape(shape)
        if have[0] == "_one":
            data, valid, have = data[0], valid[0], have[1:]
        want = tuple(var_of(r) for r in decl.ranks)
        run.codes[name] = np.asarray(arith.to_output(_align(data, have, want)))
        run.valid[name] = _align(valid, have, want)
    return run


def _value_products(m: _Machine, program: Program, prod: Products, t: int, buffers: dict, run: LaneRun,
                    chains: range | None = None) -> None:
    """The 2D array's column sums of tile ``t`` into the lanes' ``in.value<i>`` buffers (``chains``:
    the value products of this pass over the keys, default all)."""
    a = m.a
    st = program.structure
    for i, chain in enumerate(program.chains):
        if chains is not None and i not in chains:
            continue
        w = m.weights[i][-program.tile:]
        vdata, vvalid = prod.values[i]
        if chain.carry is not None:
            acc = m.data[chain.carry].copy()
            any_valid = m.valid[chain.carry].copy()
        else:
            acc = np.full(vdata.shape[:1] + (prod.lanes,), a.const(0.0), dtype=a.dtype)
            any_valid = np.zeros(acc.shape, dtype=bool)
        first = st.weight_of[chain.einsum][1]
        for k in range(program.tile):
            wd, wv = w[k]
            v, vv = vdata[:, t, k], vvalid[:, t, k]
            mask = wv[None, :] & vv
            wb = np.broadcast_to(wd, v.shape)
            step = a.mac(acc, wb, v) if first else a.mac(acc, v, wb)
            acc = np.where(mask, step, acc)
            any_valid |= mask
        r = buffers[f"in.value{i}"]
        m.data[r][:] = acc
        m.valid[r][:] = any_valid
        run.weights[i].append((np.stack([d for d, _ in w]), np.stack([v for _, v in w])))
        run.sums[i].append((acc, any_valid))


__all__ = ["Products", "LaneRun", "golden_products", "execute", "SECTIONS"]


def build(cascade: Cascade, arch: Any, sizes: Mapping[str, int] | None = None):
    """(program, schedule) of ``cascade`` on ``arch``'s 2D array and lanes (:func:`lane_mapping`)."""
    from einloom.mapper.lower import lower
    from einloom.rtl.lanes.compile import compile_lanes, lane_mapping
    mapping = lane_mapping(cascade, arch, sizes=sizes)
    schedule = lower(cascade, mapping, arch, None, sizes=sizes)
    return compile_lanes(cascade, schedule), schedule


def against_interpreter(program: Program, cascade: Cascade, schedule: Any, arith: Arith,
                        inputs: Mapping[str, np.ndarray]) -> tuple[LaneRun, Any]:
    """The lanes' run and :func:`~einloom.sim.formats.interpret.run_in_format` of the whole cascade in
    the schedule's loop order, on the same inputs (the test of this module's claim)."""
    from einloom.sim.formats.interpret import run_in_format, schedule_loop_order
    params = dict(schedule.mapping.params)
    ref = run_in_format(cascade, arith, inputs, params, loop_order=schedule_loop_order(schedule))
    return execute(program, cascade, arith, inputs, params), ref
