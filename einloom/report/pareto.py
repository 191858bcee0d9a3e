"""Pareto fronts and best-per-objective picks over sweep results (pure NumPy, no plotting).

A point is on the front when no other point is at least as good in every objective and strictly
better in one.  :func:`pareto_mask` sorts by the first objective and compares each point only with
the front kept so far, so it costs O(n x front size) rather than O(n^2).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

#: The objectives a sweep report picks a best design for: (name, column, "min"/"max", label).
OBJECTIVES: tuple[tuple[str, str, str, str], ...] = (
    ("fastest", "latency_s", "min", "lowest latency"),
    ("least energy", "energy_J", "min", "lowest energy"),
    ("lowest EDP", "edp_Js", "min", "lowest energy x delay"),
    ("smallest", "area_mm2", "min", "smallest area"),
    ("best perf/W", "tops_per_W", "max", "highest TOPS/W"),
    ("best perf/mm^2", "tops_per_mm2", "max", "highest TOPS/mm^2"),
)


def pareto_mask(values: np.ndarray, maximize: Sequence[bool] | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n x k); each column is minimized unless
    ``maximize[j]``.  Rows with a NaN are never on the front; exact duplicates are all kept."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError("values must be 2-D (points x objectives)")
    n, k = values.shape
    signs = np.array([-1.0 if (maximize and maximize[j]) else 1.0 for j in range(k)])
    v = values * signs
    valid = ~np.isnan(v).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    order = [i for i in np.lexsort(v[:, ::-1].T) if valid[i]]
    front: list[int] = []
    for i in order:
        if front:
            f = v[front]
            dominated = np.any(np.all(f <= v[i], axis=1) & np.any(f < v[i], axis=1))
            if dominated:
                continue
        front.append(i)
    mask[front] = True
    return mask


def front_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], maximize: Sequence[bool] | None = None
               ) -> list[Mapping[str, Any]]:
    """The rows on the Pareto front of ``columns``, sorted by the first column (best first)."""
    if not rows:
        return []
    values = np.array([[_num(r.get(c)) for c in columns] for r in rows], dtype=float)
    mask = pareto_mask(values, maximize)
    picked = [r for r, m in zip(rows, mask) if m]
    first_max = bool(maximize and maximize[0])
    return sorted(picked, key=lambda r: (-_num(r.get(columns[0])) if first_max else _num(r.get(columns[0])),
                                         r.get("key", "")))


def best_per_objective(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(objective, label, row)`` for each of :data:`OBJECTIVES` that some row has a value for.
    Ties go to the smaller point key, so the pick does not depend on the order rows arrive in."""
    out = []
    for name, column, sense, label in OBJECTIVES:
        candidates = [r for r in rows if r.get(column) is not None and np.isfinite(_num(r.get(column)))]
        if not candidates or len({_num(r[column]) for r in candidates}) == 1:
            continue    # nothing to choose (e.g. "smallest" when every point has the same area)
        sign = 1.0 if sense == "min" else -1.0
        best = min(candidates, key=lambda r: (sign * _num(r[column]), r.get("key", "")))
        out.append((name, label, best))
    return out


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")
