"""Rank sizes and param values of a cascade for one workload.

Sizes come, in order of precedence, from the caller (``--ranks P=512,M=512``), from params named like
a rank (``M0: 64``), from the spec's ``ranks:`` defaults, and for the outer rank of a partition
(``K[e, m1*M0 + m0]``) from ``ceil(M / M0)``.  Inconsistent or missing sizes are :class:`SpecError`.
"""
from __future__ import annotations

import math
import re

import numpy as np

from einloom.base.errors import Location, SpecError
from einloom.base.limits import MAX_RANK_SIZE
from einloom.einsum import operators
from einloom.einsum.cascade import Cascade
from einloom.einsum.expr import BinOp, Call, Expr, Name, Num, Unary, to_text


def parse_rank_assignments(text: str, what: str = "--ranks") -> dict[str, int]:
    """``"P=512,M=512"`` -> ``{"P": 512, "M": 512}`` with clear errors."""
    sizes: dict[str, int] = {}
    if not text:
        return sizes
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)\s*=\s*(\d{1,12})([kKmM]?)", item)
        if not match:
            raise SpecError(f"{what}: cannot read {item!r}", location=Location(None, None, what),
                            hint="write RANK=SIZE pairs, e.g. P=512,M=512,E=64 (or P=4K)")
        name = match.group(1)
        value = int(match.group(2)) * {"": 1, "K": 1024, "M": 1024 ** 2}[match.group(3).upper()]
        if value <= 0:
            raise SpecError(f"{name} must be a positive size, got {value}", location=Location(None, None, what))
        if value > MAX_RANK_SIZE:
            raise SpecError(f"{name}={value} is over the limit of {MAX_RANK_SIZE} (2**24) for a rank size",
                            location=Location(None, None, what), hint="see the README's limits")
        if name in sizes:
            raise SpecError(f"{name} is given twice", location=Location(None, None, what))
        sizes[name] = value
    return sizes


def evaluate_scalar(expr: Expr, env: dict[str, float], what: str, location: Location | None = None) -> float:
    """Evaluate a param-like expression (numbers, names in ``env``, + - * /, functions)."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Name):
        if expr.name not in env:
            raise SpecError(f"{what}: {expr.name} has no value", location=location,
                            hint=f"give it with --ranks {expr.name}=N" if expr.name.isupper() else None)
        return env[expr.name]
    if isinstance(expr, Unary):
        value = evaluate_scalar(expr.operand, env, what, location)
        return -value if expr.op == "-" else float(not value)
    if isinstance(expr, BinOp):
        left = evaluate_scalar(expr.left, env, what, location)
        right = evaluate_scalar(expr.right, env, what, location)
        if expr.op == "/" and right == 0:
            raise SpecError(f"{what}: division by zero in {to_text(expr)}", location=location)
        with np.errstate(all="ignore"):
            value = float(operators.BINARY_SYMBOLS[expr.op].function(left, right))
        return _finite(value, expr, what, location)
    if isinstance(expr, Call):
        op = operators.map_operator(expr.func)
        args = [evaluate_scalar(a, env, what, location) for a in expr.args]
        with np.errstate(all="ignore"):
            value = float(op.function(*args))
        return _finite(value, expr, what, location)
    raise SpecError(f"{what}: {to_text(expr)} is not a scalar expression", location=location)


def _finite(value: float, expr: Expr, what: str, location: Location | None) -> float:
    if math.isnan(value):
        raise SpecError(f"{what}: {to_text(expr)} is not a number", location=location,
                        hint="check the arguments (sqrt and log of negative values, 0/0)")
    if math.isinf(value):
        raise SpecError(f"{what}: {to_text(expr)} is not finite", location=location,
                        hint="a param must evaluate to a finite value")
    return value


def _field_of(cascade: Cascade, rank: str) -> str:
    """Where a rank's size came from: a param, the spec's ranks:, or the command line."""
    if rank in cascade.params:
        return f"params.{rank}"
    if rank in cascade.rank_defaults:
        return f"ranks.{rank}"
    return "--ranks"


def resolve(cascade: Cascade, given: dict[str, int] | None = None) -> tuple[dict[str, int], dict[str, float]]:
    """Sizes of every rank and values of every param: ``(ranks, params)``.

    Raises :class:`SpecError` for an unknown rank in ``given``, a rank without a size, a non-integer or
    non-positive size, or partition sizes that do not cover their root (M1*M0 < M).
    """
    given = dict(given or {})
    where = Location(cascade.file)
    for name in given:
        if name not in cascade.ranks and name not in cascade.params:
            hint = f"ranks of {cascade.name}: {', '.join(cascade.ranks)}"
            raise SpecError(f"unknown rank {name!r}", location=Location(cascade.file, None, "--ranks"), hint=hint)
    env: dict[str, float] = {k: float(v) for k, v in given.items()}
    # rank defaults first (they may only use other rank sizes), then params in order
    pending = {r: e for r, e in cascade.rank_defaults.items() if r not in env}
    for _ in range(len(pending) + 1):
        for rank, expr in list(pending.items()):
            try:
                env[rank] = evaluate_scalar(expr, env, f"rank {rank}", where)
                del pending[rank]
            except SpecError:
                pass
    params: dict[str, float] = {}
    for name, expr in cascade.params.items():
        if name in given:
            params[name] = float(given[name])
            continue
        value = evaluate_scalar(expr, {**env, **params}, f"param {name}", Location(cascade.file, None,
                                                                                   f"params.{name}"))
        params[name] = value
        if name in cascade.ranks and name not in env:
            env[name] = value
    for rank, expr in pending.items():
        env[rank] = evaluate_scalar(expr, {**env, **params}, f"rank {rank}", where)
    # partitions: inner = stride, outer = ceil(root / stride)
    for _ in range(len(cascade.partitions) + 1):
        for part in cascade.partitions:
            scope = {**env, **params}
            try:
                stride = evaluate_scalar(part.stride, scope, f"stride of {part.root}", where)
            except SpecError:
                continue
            if stride != int(stride) or not 1 <= stride <= MAX_RANK_SIZE:
                field = f"params.{part.stride.name}" if isinstance(part.stride, Name) and \
                    part.stride.name in cascade.params else "--ranks"
                raise SpecError(f"the tile {to_text(part.stride)} of rank {part.root} must be a positive integer, "
                                f"got {stride:g}", location=Location(cascade.file, None, field),
                                hint=f"{part.root} is split into tiles of {to_text(part.stride)} elements")
            if part.inner not in env:
                env[part.inner] = stride
            if part.root in env and part.outer not in env:
                env[part.outer] = math.ceil(env[part.root] / stride)
    sizes: dict[str, int] = {}
    for rank in cascade.ranks:
        if rank not in env:
            raise SpecError(f"rank {rank} has no size", location=Location(cascade.file, None, "--ranks"),
                            hint=f"give it with --ranks {rank}=N or under ranks: in the spec")
        value = env[rank]
        if value != int(value) or value <= 0:
            raise SpecError(f"rank {rank} must have a positive integer size, got {value:g}",
                            location=Location(cascade.file, None, _field_of(cascade, rank)))
        if value > MAX_RANK_SIZE:
            raise SpecError(f"rank {rank} has size {value:g}, over the limit of {MAX_RANK_SIZE} (2**24)",
                            location=Location(cascade.file, None, _field_of(cascade, rank)),
                            hint="see the README's limits")
        sizes[rank] = int(value)
    for part in cascade.partitions:
        stride = evaluate_scalar(part.stride, {**env, **params}, f"stride of {part.root}", where)
        if part.root not in sizes:
            continue
        covered = sizes[part.outer] * stride
        needed = math.ceil(sizes[part.root] / stride)
        if covered < sizes[part.root]:
            raise SpecError(f"inconsistent rank sizes: {part.outer}*{to_text(part.stride)} = "
                            f"{sizes[part.outer]}*{stride:g} = {covered:g} < {part.root} = {sizes[part.root]}",
                            location=Location(cascade.file, None, "--ranks"),
                            hint=f"{part.outer} must be ceil({part.root}/{to_text(part.stride)}) = {needed}")
        if sizes[part.outer] > needed:
            raise SpecError(f"inconsistent rank sizes: {part.outer} = {sizes[part.outer]} but "
                            f"ceil({part.root}/{to_text(part.stride)}) = {needed}",
                            location=Location(cascade.file, None, "--ranks"),
                            hint=f"leave {part.outer} out; einloom derives it")
        if stride != sizes[part.inner]:
            raise SpecError(f"inconsistent rank sizes: {part.inner} = {sizes[part.inner]} but the partition of "
                            f"{part.root} uses a stride of {stride:g}", location=Location(cascade.file, None,
                                                                                          "--ranks"),
                            hint=f"set {part.inner} and the stride to the same value")
    return sizes, params
