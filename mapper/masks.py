"""Mask support: which points of a masked Einsum exist, and which tiles of work the hardware skips.

A *mask* is a coordinate predicate inside an Einsum: ``where(c, x)`` (masked coordinates are absent)
or ``where(c, x, -inf)`` (the dense form; ``-inf`` vanishes under ``max`` and ``exp``), where ``c``
reads only rank variables and params, e.g. causal ``m1*M0 + m0 <= p + offset``.  Predicates on data
(``where(Q[e, p] > 0, ...)``) are not masks: they select values, every point is computed.

What this module computes, for a mask whose predicate is a Boolean combination of affine
(in)equalities over at most two *coordinates* (a partitioned rank recombined, ``m1*M0 + m0`` -> ``m``,
or a single rank variable):

* the exact number of valid points (per row of one coordinate, the valid values of the other form a
  union of intervals, one per conjunctive term; summed in O(rows x terms));
* per tile of a tiling (``chunk`` coordinates per tile along each coordinate): how many tiles are
  *empty* (no valid point: the hardware skips them), *full* or *partial* (both computed in full, as
  hardware does), and the fraction of the dense work in non-empty tiles.  A tile counts as non-empty
  when the hull of a term's intervals over the tile's rows reaches it; that can only over-count
  non-empty tiles (never lets a search find a cost the hardware would not deliver).

Limits: predicates over three or more coordinates, or not affine, are *unsupported*: their Einsums
are costed densely (every tile computed), and :attr:`Mask.supported` says so.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from einloom.einsum.expr import Access, BinOp, Call, Expr, Name, Num, Unary, walk

#: A term of the disjunctive normal form: affine constraints ``sum(coef * coord) + const OP 0``.
Constraint = tuple[tuple[tuple[str, float], ...], float, str]     # (coefficients, constant, op)

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_MAX_TERMS = 16


class Unsupported(Exception):
    """The predicate is not a Boolean combination of affine (in)equalities over rank variables."""


def mask_predicate(expr: Expr, tensors: set[str]) -> Expr | None:
    """The coordinate predicate of an Einsum's top-level ``where`` mask, or None.

    ``where(c, x)`` and ``where(c, x, -inf)`` (possibly under a scale) with ``c`` free of tensor
    reads qualify; a ``where`` with any other else-branch selects values and is not a mask.
    """
    for node in walk(expr):
        if isinstance(node, Call) and node.func == "where" and len(node.args) in (2, 3):
            cond = node.args[0]
            if any(isinstance(n, Access) for n in walk(cond)):
                continue
            if len(node.args) == 3:
                other = node.args[2]
                if not (isinstance(other, Num) and other.value == float("-inf")):
                    continue
            return cond
    return None


# ------------------------------------------------------------------------------------------------
# Affine forms and the disjunctive normal form
# ------------------------------------------------------------------------------------------------

def _affine(expr: Expr, variables: set[str], params: Mapping[str, float]) -> tuple[dict[str, float], float]:
    if isinstance(expr, Num):
        return {}, float(expr.value)
    if isinstance(expr, Name):
        if expr.name in variables:
            return {expr.name: 1.0}, 0.0
        if expr.name in params:
            return {}, float(params[expr.name])
        raise Unsupported(f"unknown name {expr.name}")
    if isinstance(expr, Unary) and expr.op == "-":
        c, k = _affine(expr.operand, variables, params)
        return {v: -x for v, x in c.items()}, -k
    if isinstance(expr, BinOp) and expr.op in ("+", "-"):
        (a, ka), (b, kb) = _affine(expr.left, variables, params), _affine(expr.right, variables, params)
        sign = 1.0 if expr.op == "+" else -1.0
        out = dict(a)
        for v, x in b.items():
            out[v] = out.get(v, 0.0) + sign * x
        return out, ka + sign * kb
    if isinstance(expr, BinOp) and expr.op in ("*", "/"):
        (a, ka), (b, kb) = _affine(expr.left, variables, params), _affine(expr.right, variables, params)
        if expr.op == "*":
            if a and b:
                raise Unsupported("product of two rank variables")
            if not a:
                return {v: ka * x for v, x in b.items()}, ka * kb
            return {v: kb * x for v, x in a.items()}, ka * kb
        if b or kb == 0:
            raise Unsupported("division by a rank variable")
        return {v: x / kb for v, x in a.items()}, ka / kb
    raise Unsupported(f"{type(expr).__name__} in a mask predicate")


def _dnf(expr: Expr, negate: bool, variables: set[str], params: Mapping[str, float]) -> list[list[Constraint]]:
    if isinstance(expr, Unary) and expr.op == "not":
        return _dnf(expr.operand, not negate, variables, params)
    if isinstance(expr, BinOp) and expr.op in ("and", "or"):
        left = _dnf(expr.left, negate, variables, params)
        right = _dnf(expr.right, negate, variables, params)
        conj = (expr.op == "and") != negate
        if not conj:
            return left + right
        terms = [a + b for a, b in itertools.product(left, right)]
        if len(terms) > _MAX_TERMS:
            raise Unsupported("predicate too complex")
        return terms
    if isinstance(expr, BinOp) and expr.op in _FLIP:
        op = _NEGATE[expr.op] if negate else expr.op
        (a, ka), (b, kb) = _affine(expr.left, variables, params), _affine(expr.right, variables, params)
        coef = dict(a)
        for v, x in b.items():
            coef[v] = coef.get(v, 0.0) - x
        const = ka - kb
        items = tuple(sorted((v, x) for v, x in coef.items() if x != 0.0))
        if op == "!=":
            return [[(items, const, "<")], [(items, const, ">")]]
        if op == "==":
            return [[(items, const, "<="), (items, const, ">=")]]
        return [[(items, const, op)]]
    raise Unsupported(f"{type(expr).__name__} as a condition")


# ------------------------------------------------------------------------------------------------
# The mask of one Einsum
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Coordinate:
    """One axis of a mask: a rank variable, or a partitioned rank recombined (``m = m1*M0 + m0``).

    ``components`` lists ``(rank, stride)`` innermost first; ``extent`` is the number of real
    coordinates (the root rank's size), ``padded`` the iteration extent (``M1 * M0``).
    """

    name: str
    components: tuple[tuple[str, int], ...]
    extent: int
    padded: int


@dataclass(frozen=True)
class TileCounts:
    """Tiles of one Einsum's work over a mask's coordinates."""

    chunk: tuple[int, int]
    tiles: int
    empty: int
    full: int
    partial: int
    work_fraction: float          # fraction of the dense points that lie in non-empty tiles


@dataclass(frozen=True)
class Mask:
    """A coordinate mask of Einsum ``einsum`` (see the module docstring)."""

    einsum: str
    text: str
    coordinates: tuple[Coordinate, ...]
    terms: tuple[tuple[Constraint, ...], ...]
    supported: bool
    reason: str = ""

    def valid_points(self) -> int | None:
        """Valid coordinates of the mask's (unpadded) coordinate space, or None if unsupported."""
        if not self.supported:
            return None
        return _valid_points(self)

    def tiles(self, chunk: tuple[int, int]) -> TileCounts:
        """Tile classification for ``chunk`` coordinates per tile along each coordinate."""
        if not self.supported:
            n = 1
            return TileCounts(chunk, n, 0, 0, n, 1.0)
        return _tiles(self, tuple(int(c) for c in chunk))

    def nonempty_tiles(self, chunk: tuple[int, int]) -> np.ndarray:
        """Boolean grid ``[y tiles, x tiles]``: True where a tile of ``chunk`` coordinates holds at
        least one valid point (its sum is ``tiles - empty`` of :meth:`tiles`); the simulator skips
        the others tile by tile."""
        if not self.supported:
            return np.ones((1, 1), dtype=bool)
        return _nonempty_grid(self, tuple(int(c) for c in chunk))


def build_mask(einsum: str, predicate: Expr, text: str, einsum_ranks: tuple[str, ...],
               partitions: list[tuple[str, str, str, int]], sizes: Mapping[str, int],
               params: Mapping[str, float]) -> Mask:
    """Analyse ``predicate`` of ``einsum``.

    ``partitions`` lists ``(root, outer, inner, stride)``; ``sizes`` are rank sizes (root ranks and
    partition ranks); ``params`` the cascade's resolved params.
    """
    variables = {r.lower() for r in einsum_ranks}
    for node in walk(predicate):
        if isinstance(node, Name) and node.name.islower() and node.name not in params and node.name != "inf":
            variables.add(node.name)
    try:
        terms = _dnf(predicate, False, variables, params)
        used = sorted({v for t in terms for coefs, _, _ in t for v, _ in coefs})
        coords: list[Coordinate] = []
        rewrite: dict[str, tuple[str, float]] = {}      # variable -> (coordinate, stride)
        for root, outer, inner, stride in partitions:
            ov, iv = outer.lower(), inner.lower()
            if ov in used and iv in used and all(_consistent(t, ov, iv, stride) for t in terms):
                name = f"{ov}*{inner}+{iv}"
                coords.append(Coordinate(name, ((inner, 1), (outer, stride)), int(sizes[root]),
                                         int(sizes[outer]) * int(sizes[inner])))
                rewrite[iv] = (name, 1.0)
                rewrite[ov] = (name, 0.0)          # carried by the inner variable's coefficient
        for v in used:
            if v not in rewrite:
                rank = v.upper()
                if rank not in sizes:
                    raise Unsupported(f"rank variable {v} has no size")
                coords.append(Coordinate(v, ((rank, 1),), int(sizes[rank]), int(sizes[rank])))
                rewrite[v] = (v, 1.0)
        if len(coords) > 2:
            raise Unsupported(f"{len(coords)} coordinates ({', '.join(c.name for c in coords)}); at most 2")
        new_terms = []
        for t in terms:
            new_t = []
            for coefs, const, op in t:
                merged: dict[str, float] = {}
                for v, x in coefs:
                    c, s = rewrite[v]
                    merged[c] = merged.get(c, 0.0) + x * s
                new_t.append((tuple(sorted((c, x) for c, x in merged.items() if abs(x) > 1e-12)), const, op))
            new_terms.append(tuple(new_t))
        while len(coords) < 2:
            coords.append(Coordinate("_", (), 1, 1))
        return Mask(einsum, text, tuple(coords), tuple(new_terms), True)
    except Unsupported as exc:
        return Mask(einsum, text, (), (), False, str(exc))


def _consistent(term: list[Constraint], ov: str, iv: str, stride: int) -> bool:
    for coefs, _, _ in term:
        c = dict(coefs)
        if ov in c or iv in c:
            if abs(c.get(ov, 0.0) - stride * c.get(iv, 0.0)) > 1e-9:
                return False
    return True


# ------------------------------------------------------------------------------------------------
# Counting: per row of coordinate y, each term's valid x form one interval
# ------------------------------------------------------------------------------------------------

def _intervals(mask: Mask, y: np.ndarray, x_extent: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) arrays of shape (terms, len(y)); empty where lo > hi."""
    xname, yname = mask.coordinates[0].name, mask.coordinates[1].name
    los, his = [], []
    for term in mask.terms:
        lo = np.zeros(len(y))
        hi = np.full(len(y), float(x_extent - 1))
        for coefs, const, op in term:
            c = dict(coefs)
            a, b = c.get(xname, 0.0), c.get(yname, 0.0)
            rest = b * y + const                        # a*x + rest OP 0
            if a == 0.0:
                ok = {"<": rest < 0, "<=": rest <= 0, ">": rest > 0, ">=": rest >= 0}[op]
                hi = np.where(ok, hi, -1.0)
                continue
            bound = -rest / a
            strict = op in ("<", ">")
            upper = (op in ("<", "<=")) == (a > 0)      # constraint is x <= bound (or <)
            if upper:
                val = np.ceil(bound - 1e-9) - 1 if strict else np.floor(bound + 1e-9)
                hi = np.minimum(hi, val)
            else:
                val = np.floor(bound + 1e-9) + 1 if strict else np.ceil(bound - 1e-9)
                lo = np.maximum(lo, val)
        los.append(lo)
        his.append(hi)
    return np.array(los), np.array(his)


def _union_length(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per column, the number of integers in the union of the intervals (terms along axis 0)."""
    valid = lo <= hi
    lo = np.where(valid, lo, np.inf)
    order = np.argsort(lo, axis=0, kind="stable")
    lo = np.take_along_axis(lo, order, axis=0)
    hi = np.take_along_axis(np.where(valid, hi, -np.inf), order, axis=0)
    total = np.zeros(lo.shape[1])
    end = np.full(lo.shape[1], -np.inf)
    for i in range(lo.shape[0]):
        start = np.maximum(lo[i], end + 1)
        total += np.where(np.isfinite(lo[i]), np.maximum(hi[i] - start + 1, 0.0), 0.0)
        end = np.maximum(end, hi[i])
    return total


@lru_cache(maxsize=256)
def _valid_points(mask: Mask) -> int:
    x, yc = mask.coordinates
    y = np.arange(yc.extent, dtype=float)
    lo, hi = _intervals(mask, y, x.extent)
    return int(_union_length(lo, hi).sum())


@lru_cache(maxsize=4096)
def _tiles(mask: Mask, chunk: tuple[int, int]) -> TileCounts:
    x, yc = mask.coordinates
    cx, cy = max(chunk[0], 1), max(chunk[1], 1)
    nx_t, ny_t = -(-x.padded // cx), -(-yc.padded // cy)
    y = np.arange(yc.extent, dtype=float)
    lo, hi = _intervals(mask, y, x.extent)
    rows = np.arange(yc.extent) // cy                 # row chunk of each real row
    terms = lo.shape[0]
    first = np.full((terms, ny_t), np.inf)
    last = np.full((terms, ny_t), -np.inf)
    inner_lo = np.full((terms, ny_t), -np.inf)        # max lo over the chunk's rows (full-tile test)
    inner_hi = np.full((terms, ny_t), np.inf)         # min hi over the chunk's rows
    for t in range(terms):
        ok = lo[t] <= hi[t]
        np.minimum.at(first[t], rows[ok], lo[t][ok])
        np.maximum.at(last[t], rows[ok], hi[t][ok])
        np.maximum.at(inner_lo[t], rows, np.where(ok, lo[t], np.inf))
        np.minimum.at(inner_hi[t], rows, np.where(ok, hi[t], -np.inf))
    # index ranges of x-chunks touched by each term's hull, per row chunk
    j0 = np.where(np.isfinite(first), np.floor(first / cx), np.inf)
    j1 = np.where(np.isfinite(last), np.floor(last / cx), -np.inf)
    nonempty = _union_length(j0, j1)                  # x-chunks per row chunk
    # work: chunks times their sizes (the last x-chunk and the last row chunk may be ragged)
    last_x = x.padded - (nx_t - 1) * cx
    touches_last = np.any((j0 <= nx_t - 1) & (j1 >= nx_t - 1), axis=0)
    x_work = nonempty * cx - np.where(touches_last, cx - last_x, 0)
    row_sizes = np.full(ny_t, float(cy))
    row_sizes[-1] = yc.padded - (ny_t - 1) * cy
    work = float(np.sum(x_work * row_sizes))
    # full tiles: one term covers the tile for every row of the chunk (rows beyond the real extent
    # are padding, absent: a chunk holding them is partial)
    real_rows = np.bincount(rows, minlength=ny_t)
    f0 = np.ceil(inner_lo / cx)
    f1 = np.floor((inner_hi + 1) / cx) - 1
    f1 = np.minimum(f1, np.floor(x.extent / cx) - 1)
    full_per = np.where(real_rows == row_sizes, np.max(np.maximum(f1 - f0 + 1, 0), axis=0), 0)
    tiles = nx_t * ny_t
    n_nonempty = int(nonempty.sum())
    n_full = int(min(full_per.sum(), n_nonempty))
    return TileCounts((cx, cy), tiles, tiles - n_nonempty, n_full, n_nonempty - n_full,
                      work / float(x.padded * yc.padded))


def _nonempty_grid(mask: Mask, chunk: tuple[int, int]) -> np.ndarray:
    x, yc = mask.coordinates
    cx, cy = max(chunk[0], 1), max(chunk[1], 1)
    nx_t, ny_t = -(-x.padded // cx), -(-yc.padded // cy)
    y = np.arange(yc.extent, dtype=float)
    lo, hi = _intervals(mask, y, x.extent)
    rows = np.arange(yc.extent) // cy
    grid = np.zeros((ny_t, nx_t), dtype=bool)
    for t in range(lo.shape[0]):
        ok = lo[t] <= hi[t]
        j0 = (lo[t][ok] // cx).astype(int)
        j1 = (hi[t][ok] // cx).astype(int)
        for r, a, b in zip(rows[ok], j0, j1):
            grid[r, a:b + 1] = True
    return grid
