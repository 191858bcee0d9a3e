"""Rank sizes and param values of a cascade for one workload.

Sizes come, in order of precedence, from the caller (``--ranks P=512,M=512``), from params named like
a rank (``M0: 64``), from the spec's ``ranks:`` defaults, and for the outer rank of a partition
(``K[e, m1*M0 + m0]``) from ``ceil(M / M0)``.  Inconsistent or missing sizes are :class:`SpecError`.
"""
from __future__ import annotations

import math
import re

from einloom.einsum import operators
from einloom.einsum.cascade import Cascade
from einloom.einsum.errors import Location, SpecError
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
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)\s*=\s*(\d+)", item)
        if not match:
            raise SpecError(f"{what}: cannot read {item!r}", hint="write RANK=SIZE pairs, e.g. P=512,M=512,E=64")
        name, value = match.group(1), int(match.group(2))
        if value <= 0:
            raise SpecError(f"{what}: {name} must be a positive size, got {value}")
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
        return float(operators.BINARY_SYMBOLS[expr.op].function(left, right))
    if isinstance(expr, Call):
        op = operators.map_operator(expr.func)
        args = [evaluate_scalar(a, env, what, location) for a in expr.args]
        value = float(op.function(*args))
        if math.isnan(value):
            raise SpecError(f"{what}: {to_text(expr)} is not a number", location=location)
        return value
    raise SpecError(f"{what}: {to_text(expr)} is not a scalar expression", location=location)


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
                            location=Location(cascade.file, None, "--ranks"))
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
