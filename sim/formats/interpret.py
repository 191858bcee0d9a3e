"""The format interpreter: any cascade executed on a number format's op-class primitives.

:func:`run_in_format` runs a :class:`~einloom.einsum.cascade.Cascade` with every value in a format
(:class:`~einloom.sim.formats.arith.Arith`: fixed point, or bf16 operands with fp32 arithmetic) instead
of float64.  It keeps the float64 interpreter's semantics (:mod:`einloom.einsum.interpret`, whose plan and
tensor store it reuses): absent coordinates (outside a tensor, removed by ``where(c, x)``) are skipped by
reductions and act as the identity of ``+``/``max``/``min``; ``init`` values; iterative ranks run as a
loop over their iterations; final iterates.  What it adds is an *order*, which is what fixes the bits:

* a reduction (``sum``/``max``/``min``/``prod``, explicit or implicit) is a sequential chain from the
  identity over its reduced coordinates, in the loop order of the ranks given by ``loop_order``
  (outermost first; e.g. a schedule's nest, :func:`schedule_loop_order`) and ascending along each; an
  index such as ``X[M0-1-m0]`` in the cascade reverses a rank's direction (a datapath that drains rows
  last to first);
* ``sum[...] a * b`` is a chain of ``mac(acc, a, b)`` (a 2D array's PE); with more than two rank-indexed
  factors the leading ones are multiplied first (``mul``, left to right); constant factors (``scale``)
  multiply the finished sum once (``mul``);
* ``exp(c * x)`` with a constant ``c`` is one exp with ``c`` folded in (the exp unit's constant);
* ``a / b`` is ``mul(a, recip(b))`` (deferred division); a map operator the format has a unit for
  (``Arith.UNIT_OPERATORS``: ``sigmoid``) runs as that unit; other map operators (``sqrt``, user
  operators, ...) are computed in float64 on the exact values and rounded once (:meth:`Arith.apply_float`);
* index arithmetic, masks' conditions on coordinates and params are exact (float64/integers); a
  constant meets a format value through :meth:`Arith.const`.

Cascade outputs are converted to the format's output codes (:meth:`Arith.to_output`).  Limits: values
are NumPy arrays of the whole iteration space per step (as the float64 interpreter), so this is for
checking, not for full workloads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, rank_of
from einloom.einsum.expr import BinOp, Call, Expr, Reduce
from einloom.einsum.interpret import Interpreter, Val, _align, _product_factors, input_sizes, merge_absent, where_valid
from einloom.einsum.ranks import resolve
from einloom.base.errors import Location, SpecError
from einloom.sim.formats.arith.base import Arith

_REDUCE = {"sum": "add", "max": "maximum", "min": "minimum", "prod": "mul"}
_MAP = {"+": "add", "-": "sub", "*": "mul", "/": "div", "max": "maximum", "min": "minimum",
        "neg": "neg", "exp": "exp", "log": "log", "reciprocal": "recip"}
_CMP = {"<", "<=", ">", ">=", "==", "!="}


@dataclass
class FormatRunResult:
    """Outputs of :func:`run_in_format`: output codes, their float64 values, absent counts."""

    codes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    absent: dict[str, int]
    ranks: dict[str, int]
    params: dict[str, float]
    valid: dict[str, np.ndarray | None] = field(default_factory=dict)
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)


class FormatInterpreter(Interpreter):
    """The float64 :class:`Interpreter`'s plan and store, with values of an :class:`Arith`."""

    def __init__(self, cascade: Cascade, sizes: dict[str, int], params: dict[str, float], arith: Arith,
                 loop_order: Sequence[str] = ()):
        super().__init__(cascade, sizes, params)
        self.arith = arith
        self.loop_rank = {r: k for k, r in enumerate(loop_order)}

    # ----------------------------------------------------------------- values
    def _is_fmt(self, val: Val) -> bool:
        return val.data.dtype == self.arith.dtype

    def _fmt(self, val: Val) -> np.ndarray:
        """The data of ``val`` as format values (exact numbers and booleans through ``const``)."""
        if self._is_fmt(val):
            return val.data
        data = np.asarray(val.data, dtype=np.float64)
        uniq = np.unique(data)
        if uniq.size <= 64:
            out = np.empty(data.shape, dtype=self.arith.dtype)
            for u in uniq:
                out[data == u] = self.arith.const(float(u))
            return out
        return self.arith.from_float(data)

    def allocate(self, tensor: str) -> None:
        self.store[tensor] = (self.arith.fill(self.shape_of(tensor)), None)

    def stored_value(self, value: Val) -> Val:
        return Val(self._fmt(value), value.vars, value.valid)

    # ------------------------------------------------------------------ eval
    def eval(self, expr: Expr, fixed: dict[str, int]) -> Val:
        if isinstance(expr, Call) and expr.func == "exp" and len(expr.args) == 1 and \
                isinstance(expr.args[0], BinOp) and expr.args[0].op == "*":
            left, right = self.eval(expr.args[0].left, fixed), self.eval(expr.args[0].right, fixed)
            for c, x in ((left, right), (right, left)):
                if not self._is_fmt(c) and c.data.dtype != bool and c.vars == () and self._is_fmt(x):
                    return Val(self.arith.exp(x.data, premul=float(c.data)), x.vars, x.valid)
            return self.combine(operators.map_operator("exp"),
                                [self.combine(operators.BINARY_SYMBOLS["*"], [left, right])])
        return super().eval(expr, fixed)

    def combine(self, op: operators.MapOperator, vals: list[Val], logical: bool = False) -> Val:
        if logical or not any(self._is_fmt(v) for v in vals):
            return super().combine(op, vals, logical)
        want = self.union_vars(vals)
        datas = [_align(self._fmt(v), v.vars, want) for v in vals]
        identity = self.arith.const(op.identity) if op.merge == "union" else None
        datas, valid = merge_absent(op, vals, want, datas, identity)
        if op.name in _CMP:
            data = self.arith.compare(op.name, *datas)
        elif op.name in _MAP:
            data = getattr(self.arith, _MAP[op.name])(*datas)
        else:
            data = self.arith.apply_operator(op.name, op.function, *datas)
        return Val(np.asarray(data), want, valid)

    def where(self, vals: list[Val]) -> Val:
        branches = vals[1:]
        if not any(self._is_fmt(v) for v in branches):
            return super().where(vals)
        cond = vals[0]
        want = self.union_vars(vals)
        c = _align(cond.data, cond.vars, want).astype(bool)
        a = _align(self._fmt(vals[1]), vals[1].vars, want)
        valid = where_valid(vals, want, c)
        if len(vals) == 3:
            b = _align(self._fmt(vals[2]), vals[2].vars, want)
        else:
            b = self.arith.const(0.0)
        return Val(np.asarray(self.arith.select(c, a, b)), want, valid)

    # ------------------------------------------------------------- reductions
    def _reduction_axes(self, reduced: Sequence[str]) -> list[str]:
        """Reduced variables, outermost loop first (``loop_order``; else as written)."""
        written = list(dict.fromkeys(reduced))
        return sorted(written, key=lambda v: (self.loop_rank.get(rank_of(v), len(self.loop_rank)),
                                              written.index(v)))

    def _steps(self, vars_: tuple[str, ...], reduced: list[str]):
        """Index tuples over the reduced axes of arrays laid out as ``vars_``, in chain order."""
        extents = [self.sizes[rank_of(v)] for v in reduced]
        axes = [vars_.index(v) for v in reduced]
        for flat in np.ndindex(*extents):
            index = [slice(None)] * len(vars_)
            for ax, i in zip(axes, flat):
                index[ax] = i
            yield tuple(index)

    def reduce(self, expr: Reduce, fixed: dict[str, int]) -> Val:
        red = operators.reduction(expr.op)
        if expr.op not in _REDUCE:
            raise SpecError(f"reduction {expr.op!r} has no number-format model",
                            location=Location(self.cascade.file),
                            hint=f"the format interpreter reduces with {', '.join(_REDUCE)}")
        if expr.op == "sum" and isinstance(expr.body, BinOp) and expr.body.op == "*":
            return self.contract(expr, fixed)
        if expr.op == "sum" and isinstance(expr.body, Call) and expr.body.func == "where" and \
                len(expr.body.args) == 2 and isinstance(expr.body.args[1], BinOp) and expr.body.args[1].op == "*":
            # sum[...] where(c, a * b): the MAC chain over the coordinates where c holds
            cond = self.eval(expr.body.args[0], fixed)
            return self.contract(Reduce("sum", expr.vars, expr.body.args[1]), fixed, cond)
        body = self.eval(expr.body, fixed)
        data = self._fmt(body)
        reduced = self._reduction_axes(expr.vars)
        want = body.vars + tuple(v for v in reduced if v not in body.vars)
        full = tuple(self.sizes[rank_of(v)] for v in want)
        data = np.broadcast_to(_align(data, body.vars, want), full)
        mask = None if body.valid is None else np.broadcast_to(_align(body.valid, body.vars, want), full)
        rest = tuple(v for v in want if v not in reduced)
        op = getattr(self.arith, _REDUCE[expr.op])
        acc = self.arith.fill(tuple(self.sizes[rank_of(v)] for v in rest), red.identity)
        any_valid = None if mask is None else np.zeros(acc.shape, dtype=bool)
        for index in self._steps(want, reduced):
            step = op(acc, data[index])
            if mask is None:
                acc = step
            else:
                acc = np.where(mask[index], step, acc)
                any_valid |= mask[index]
        return Val(acc, rest, any_valid)

    def contract(self, expr: Reduce, fixed: dict[str, int], cond: Val | None = None) -> Val:
        """``sum[vars] a * b * ...`` as a chain of ``mac`` (constant factors multiply the sum once);
        ``cond`` (from ``sum[...] where(cond, a * b)``) removes the coordinates where it is false."""
        factors = [self.eval(f, fixed) for f in _product_factors(expr.body)]
        consts = [f for f in factors if not self._is_fmt(f) and f.vars == () and f.valid is None]
        ranked = [f for f in factors if not any(f is c for c in consts)]
        if not ranked:
            ranked, consts = [consts[0]], consts[1:]
        reduced = self._reduction_axes(expr.vars)
        present = [v for f in ranked + ([cond] if cond is not None else []) for v in f.vars]
        out_vars = tuple(dict.fromkeys(v for v in self.order if v in present and v not in reduced)) + tuple(
            sorted(set(present) - set(self.order) - set(reduced)))
        want = out_vars + tuple(reduced)
        full = tuple(self.sizes[rank_of(v)] for v in want)
        datas = [np.broadcast_to(_align(self._fmt(f), f.vars, want), full) for f in ranked]
        mask = None
        for f in ranked:
            if f.valid is not None:
                m = np.broadcast_to(_align(f.valid, f.vars, want), full)
                mask = m if mask is None else mask & m
        if cond is not None:
            m = np.broadcast_to(_align(np.asarray(cond.data).astype(bool), cond.vars, want), full)
            if cond.valid is not None:
                m = m & np.broadcast_to(_align(cond.valid, cond.vars, want), full)
            mask = m if mask is None else mask & m
        if len(datas) == 1:
            datas.append(np.broadcast_to(self.arith.const(1.0), full))
        acc = self.arith.fill(tuple(self.sizes[rank_of(v)] for v in out_vars), 0.0)
        any_valid = None if mask is None else np.zeros(acc.shape, dtype=bool)
        for index in self._steps(want, reduced):
            a = datas[0][index]
            for d in datas[1:-1]:
                a = self.arith.mul(a, d[index])
            step = self.arith.mac(acc, a, datas[-1][index])
            if mask is None:
                acc = step
            else:
                acc = np.where(mask[index], step, acc)
                any_valid |= mask[index]
        for c in consts:
            acc = self.arith.mul(acc, self._fmt(c))
        return Val(acc, out_vars, any_valid)


def run_in_format(cascade: Cascade, arith: Arith, inputs: dict[str, np.ndarray],
                  ranks: dict[str, int] | None = None, *, loop_order: Sequence[str] = (),
                  keep_intermediates: bool = False) -> FormatRunResult:
    """Execute ``cascade`` with values in ``arith``'s format (rules in the module docstring).

    ``inputs`` are the format's input codes (``NumberFormat.quantize``), arrays in the declared rank
    order; ``ranks`` gives sizes and param overrides as for :func:`~einloom.einsum.interpret.run_cascade`;
    ``loop_order`` lists ranks outermost first (the schedule's nest) and fixes the order of a reduction
    over several ranks.  Returns output codes, their float64 values (NaN where absent) and absent counts.
    """
    for name in cascade.inputs:
        if name not in inputs:
            raise SpecError(f"missing input {name!r}", location=Location(cascade.file, None, "inputs"),
                            hint=f"inputs of {cascade.name}: {', '.join(cascade.inputs)}")
    for name in inputs:
        if name not in cascade.inputs:
            raise SpecError(f"unexpected input {name!r}", location=Location(cascade.file, None, "inputs"),
                            hint=f"inputs of {cascade.name}: {', '.join(cascade.inputs)}")
    given = input_sizes(cascade, inputs, dict(ranks or {}),
                        lambda name: Location(cascade.file, None, f"inputs.{name}"))
    sizes, params = resolve(cascade, given)
    interpreter = FormatInterpreter(cascade, sizes, params, arith, loop_order)
    for name in cascade.inputs:
        interpreter.store[name] = (arith.from_input(np.asarray(inputs[name])), None)
    interpreter.run(inputs)
    codes, values, absent, valids = {}, {}, {}, {}
    for name in cascade.outputs:
        data, valid = interpreter.store[name]
        codes[name] = arith.to_output(data)
        values[name] = arith.to_float(data)
        valids[name] = valid
        if valid is not None and not valid.all():
            absent[name] = int((~valid).sum())
            values[name] = np.where(valid, values[name], np.nan)
    inter = {}
    if keep_intermediates:
        inter = {n: d for n, (d, _) in interpreter.store.items() if n not in cascade.inputs}
    return FormatRunResult(codes, values, absent, sizes, params, valids, inter)


def schedule_loop_order(schedule) -> tuple[str, ...]:
    """Ranks in the order of a :class:`~einloom.mapper.lower.Schedule`'s loop nests (outermost first,
    first group first), for :func:`run_in_format`'s ``loop_order``."""
    order: list[str] = []
    for group in schedule.groups:
        for loop in group.loops:
            if loop.rank not in order:
                order.append(loop.rank)
    return tuple(order)
