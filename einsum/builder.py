"""Build a cascade from Python, validated exactly like a spec file.

Example
-------
>>> from einloom.einsum import CascadeBuilder
>>> b = CascadeBuilder("softmax-3pass", source="Nayak et al., FuseMax, MICRO 2024 (Cascade 4)")
>>> b.param("scale", "1 / sqrt(E)")
>>> b.input("Q", "E", "P").input("K", "E", "M").input("V", "F", "M").output("AV", "F", "P")
>>> b.einsum("QK[m, p] = scale * Q[e, p] * K[e, m]").einsum("GM[p] = max[m] QK[m, p]")
>>> b.einsum("SN[m, p] = exp(QK[m, p] - GM[p])").einsum("SD[p] = sum[m] SN[m, p]")
>>> b.einsum("AV[f, p] = SN[m, p] * V[f, m] / SD[p]")
>>> cascade = b.build()
"""
from __future__ import annotations

from typing import Any

from einloom.einsum.cascade import Cascade
from einloom.einsum.loader import cascade_from_dict


class CascadeBuilder:
    """Accumulates the fields of a spec and validates them in :meth:`build`."""

    def __init__(self, name: str, *, description: str = "", source: str = ""):
        self._data: dict[str, Any] = {"name": name, "description": description, "source": source,
                                      "params": {}, "ranks": {}, "tensors": {}, "inputs": [], "outputs": [],
                                      "init": {}, "einsums": []}

    def param(self, name: str, value: float | str) -> "CascadeBuilder":
        self._data["params"][name] = value
        return self

    def rank(self, name: str, default_size: int | str) -> "CascadeBuilder":
        self._data["ranks"][name] = default_size
        return self

    def input(self, name: str, *ranks: str) -> "CascadeBuilder":
        self._data["tensors"][name] = list(ranks)
        self._data["inputs"].append(name)
        return self

    def output(self, name: str, *ranks: str) -> "CascadeBuilder":
        self._data["tensors"][name] = list(ranks)
        self._data["outputs"].append(name)
        return self

    def init(self, target: str, value: float | str) -> "CascadeBuilder":
        self._data["init"][target] = value
        return self

    def einsum(self, line: str) -> "CascadeBuilder":
        self._data["einsums"].append(line)
        return self

    def reference(self, function: str, **kwargs: Any) -> "CascadeBuilder":
        self._data["reference"] = {"function": function, **kwargs}
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if v not in ({}, "", None)}

    def build(self) -> Cascade:
        """Validate and return the cascade (raises :class:`~einloom.einsum.errors.SpecError`)."""
        return cascade_from_dict(self.to_dict())
