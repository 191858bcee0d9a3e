"""Map and reduction operators of the cascade language, with what each costs in hardware terms.

Every operator names the *op classes* it costs as (``{"exp": 1}``, ``{"exp": 1, "add": 1, "div": 1}``
for sigmoid, ...).  The op classes are the vocabulary shared with the architecture models
(:mod:`einloom.cost_models`): ``mac, mul, add, max, exp, div, recip, cmp, log, sqrt, select``.  An
architecture must have a unit for every op class a cascade uses, so no operator is ever free.

Users extend the language with :func:`register_operator` and :func:`register_reduction`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from einloom.einsum.errors import SpecError

OP_CLASSES = ("mac", "mul", "add", "max", "exp", "div", "recip", "cmp", "log", "sqrt", "select")


@dataclass(frozen=True)
class MapOperator:
    """An elementwise operator ``name(a, b, ...)``.

    ``merge`` is ``"union"`` when an absent operand acts as the operator's identity (``+``, ``max``,
    ``min``; EDGE's union merge) and ``"intersection"`` when any absent operand makes the result absent.
    """

    name: str
    arity: int
    function: Callable[..., np.ndarray]
    cost: dict[str, int]
    merge: str = "intersection"
    identity: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class ReduceOperator:
    """An associative, commutative reduction ``name[ranks] expr`` with its identity element."""

    name: str
    ufunc: np.ufunc | None
    identity: float
    cost: dict[str, int]
    reduce: Callable[[np.ndarray, tuple[int, ...]], np.ndarray] | None = None
    doc: str = ""

    def apply(self, data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        if self.reduce is not None:
            return self.reduce(data, axes)
        return self.ufunc.reduce(data, axis=axes) if axes else data


def _safe_sub(a, b):
    """``a - b`` with ``-inf - -inf = -inf`` (and ``inf - inf = inf``): masked minus masked stays masked."""
    with np.errstate(invalid="ignore"):
        result = np.subtract(a, b)
    both_inf = np.isinf(a) & (np.asarray(a) == np.asarray(b))
    if np.any(both_inf):
        result = np.where(both_inf, a, result)
    return result


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _softplus(x):
    x = np.asarray(x, dtype=float)
    return np.logaddexp(0.0, x)


def _div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def _log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


def _log2(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2(x)


def _exp(x):
    with np.errstate(over="ignore"):
        return np.exp(x)


def _exp2(x):
    with np.errstate(over="ignore"):
        return np.exp2(x)


def _mul(a, b):
    with np.errstate(invalid="ignore"):
        return np.multiply(a, b)


def _sqrt(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


def _reciprocal(x):
    with np.errstate(divide="ignore"):
        return np.divide(1.0, x)


_MAPS: dict[str, MapOperator] = {}
_REDUCTIONS: dict[str, ReduceOperator] = {}

#: Operators written as symbols; they are not callable by name.
BINARY_SYMBOLS: dict[str, MapOperator] = {
    "+": MapOperator("+", 2, np.add, {"add": 1}, "union", 0.0),
    "-": MapOperator("-", 2, _safe_sub, {"add": 1}),
    "*": MapOperator("*", 2, _mul, {"mul": 1}),
    "/": MapOperator("/", 2, _div, {"div": 1}),
    "<": MapOperator("<", 2, np.less, {"cmp": 1}),
    "<=": MapOperator("<=", 2, np.less_equal, {"cmp": 1}),
    ">": MapOperator(">", 2, np.greater, {"cmp": 1}),
    ">=": MapOperator(">=", 2, np.greater_equal, {"cmp": 1}),
    "==": MapOperator("==", 2, np.equal, {"cmp": 1}),
    "!=": MapOperator("!=", 2, np.not_equal, {"cmp": 1}),
    "and": MapOperator("and", 2, np.logical_and, {"cmp": 1}),
    "or": MapOperator("or", 2, np.logical_or, {"cmp": 1}),
}
UNARY_SYMBOLS: dict[str, MapOperator] = {
    "-": MapOperator("neg", 1, np.negative, {"add": 1}),
    "not": MapOperator("not", 1, np.logical_not, {"cmp": 1}),
}

#: Functions with special evaluation rules (handled by the interpreter, listed for validation).
SPECIAL_FUNCTIONS = {"where": (2, 3)}
SPECIAL_COST = {"where": {"select": 1}}


def register_operator(name: str, function: Callable[..., np.ndarray], *, arity: int = 1,
                      cost: dict[str, int] | str, merge: str = "intersection",
                      identity: float | None = None, doc: str = "") -> MapOperator:
    """Register an elementwise operator usable as ``name(x, ...)`` in specs.

    Parameters
    ----------
    function
        Vectorized NumPy implementation taking ``arity`` arrays.
    cost
        The op classes one application costs, e.g. ``{"exp": 1, "add": 1}``, or one class name.
    merge
        ``"intersection"`` (result absent where any operand is absent) or ``"union"`` (absent
        operands act as ``identity``).
    """
    if not name.isidentifier() or name in ("and", "or", "not", "inf"):
        raise SpecError(f"operator name {name!r} is not a valid identifier")
    costs = {cost: 1} if isinstance(cost, str) else dict(cost)
    unknown = [c for c in costs if c not in OP_CLASSES]
    if unknown:
        raise SpecError(f"operator {name!r}: unknown op class {unknown[0]!r}",
                        hint=f"op classes are {', '.join(OP_CLASSES)}")
    if merge not in ("intersection", "union") or (merge == "union" and identity is None):
        raise SpecError(f"operator {name!r}: merge must be 'intersection', or 'union' with an identity")
    if arity < 1:
        raise SpecError(f"operator {name!r}: arity must be at least 1")
    operator = MapOperator(name, arity, function, costs, merge, identity, doc)
    _MAPS[name] = operator
    return operator


def register_reduction(name: str, ufunc: np.ufunc | None = None, *, identity: float,
                       cost: dict[str, int] | str,
                       reduce: Callable[[np.ndarray, tuple[int, ...]], np.ndarray] | None = None,
                       doc: str = "") -> ReduceOperator:
    """Register an associative reduction usable as ``name[ranks] expr`` in specs.

    Give either a NumPy ``ufunc`` (its ``reduce`` is used) or a ``reduce(data, axes)`` function.
    """
    if not name.isidentifier():
        raise SpecError(f"reduction name {name!r} is not a valid identifier")
    if ufunc is None and reduce is None:
        raise SpecError(f"reduction {name!r}: give a ufunc or a reduce function")
    costs = {cost: 1} if isinstance(cost, str) else dict(cost)
    unknown = [c for c in costs if c not in OP_CLASSES]
    if unknown:
        raise SpecError(f"reduction {name!r}: unknown op class {unknown[0]!r}",
                        hint=f"op classes are {', '.join(OP_CLASSES)}")
    operator = ReduceOperator(name, ufunc, float(identity), costs, reduce, doc)
    _REDUCTIONS[name] = operator
    return operator


def map_operator(name: str) -> MapOperator | None:
    return _MAPS.get(name)


def reduction(name: str) -> ReduceOperator | None:
    return _REDUCTIONS.get(name)


def is_reduction(name: str) -> bool:
    return name in _REDUCTIONS


def map_names() -> list[str]:
    return sorted(list(_MAPS) + list(SPECIAL_FUNCTIONS))


def reduction_names() -> list[str]:
    return sorted(_REDUCTIONS)


# Built-in maps
for _name, _fn, _arity, _cost, _merge, _identity in [
    ("exp", _exp, 1, {"exp": 1}, "intersection", None),
    ("exp2", _exp2, 1, {"exp": 1}, "intersection", None),
    ("log", _log, 1, {"log": 1}, "intersection", None),
    ("log2", _log2, 1, {"log": 1}, "intersection", None),
    ("sigmoid", _sigmoid, 1, {"exp": 1, "add": 1, "div": 1}, "intersection", None),
    ("softplus", _softplus, 1, {"exp": 1, "add": 1, "log": 1}, "intersection", None),
    ("relu", lambda x: np.maximum(x, 0.0), 1, {"max": 1}, "intersection", None),
    ("sqrt", _sqrt, 1, {"sqrt": 1}, "intersection", None),
    ("reciprocal", _reciprocal, 1, {"recip": 1}, "intersection", None),
    ("neg", np.negative, 1, {"add": 1}, "intersection", None),
    ("abs", np.abs, 1, {"max": 1}, "intersection", None),
    ("floor", np.floor, 1, {"add": 1}, "intersection", None),
    ("ceil", np.ceil, 1, {"add": 1}, "intersection", None),
    ("pow", lambda a, b: np.power(np.asarray(a, dtype=float), b), 2, {"log": 1, "mul": 1, "exp": 1},
     "intersection", None),
    # sin/cos: costed as the 5-term polynomial a MAC-based PE evaluates after range reduction
    ("sin", np.sin, 1, {"mac": 5}, "intersection", None),
    ("cos", np.cos, 1, {"mac": 5}, "intersection", None),
    ("max", np.maximum, 2, {"max": 1}, "union", -np.inf),
    ("min", np.minimum, 2, {"max": 1}, "union", np.inf),
]:
    register_operator(_name, _fn, arity=_arity, cost=_cost, merge=_merge, identity=_identity)

# Built-in reductions
register_reduction("sum", np.add, identity=0.0, cost="add", doc="sum over the listed ranks")
register_reduction("max", np.maximum, identity=-np.inf, cost="max", doc="maximum over the listed ranks")
register_reduction("min", np.minimum, identity=np.inf, cost="max", doc="minimum over the listed ranks")
register_reduction("prod", np.multiply, identity=1.0, cost="mul", doc="product over the listed ranks")
