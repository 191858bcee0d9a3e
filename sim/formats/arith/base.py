"""The op-class primitives of a number format (the bit-exact arithmetic library's interface).

An :class:`Arith` is a number format seen as the hardware's functional units: every value is a NumPy
array of the format's ``dtype`` (``Arith.dtype``), and each op class of the cost model (``add``,
``mul``, ``mac``, ``max``, ``exp``, ``recip``, ``div``, ``cmp``/``select``, ``log``) is one method with
a documented rounding rule.  The format interpreter (:mod:`einloom.sim.formats.interpret`) runs any
cascade on these primitives; the order in which it calls them (the schedule's loop and reduction order)
is what makes a result bit-exact with a given datapath.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Arith(ABC):
    """Op-class primitives of one number format, vectorized with NumPy broadcasting.

    Values are arrays of :attr:`dtype`.  ``-inf``/``+inf`` constants are representable (a float's
    infinities, a fixed-point format's saturating sentinels), because cascades initialise running
    maxima with ``-inf``; ``x - x`` of two equal infinities is that infinity (the float64
    interpreter's rule: a masked value minus a masked value stays masked).
    """

    name: str = "abstract"
    dtype: np.dtype

    # ---- conversion ---------------------------------------------------------------------------
    @abstractmethod
    def const(self, x: float) -> np.ndarray:
        """A real constant (a literal, a param, a rank size) as a 0-d value of the format."""

    @abstractmethod
    def from_input(self, codes: np.ndarray) -> np.ndarray:
        """Input codes (what ``NumberFormat.quantize`` gives) -> values."""

    @abstractmethod
    def to_float(self, x: np.ndarray) -> np.ndarray:
        """Values -> float64 (exact)."""

    @abstractmethod
    def to_output(self, x: np.ndarray) -> np.ndarray:
        """Values of a cascade output -> output codes (the format's output rounding)."""

    def fill(self, shape: tuple[int, ...], x: float = 0.0) -> np.ndarray:
        """An array of ``shape`` holding the constant ``x``."""
        return np.full(shape, self.const(x), dtype=self.dtype)

    # ---- op classes ---------------------------------------------------------------------------
    @abstractmethod
    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a + b`` (op class add)."""

    @abstractmethod
    def neg(self, a: np.ndarray) -> np.ndarray:
        """``-a`` (exact in every format)."""

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a - b`` as ``add(a, neg(b))``; equal infinities give that infinity."""
        same_inf = self.is_inf(a) & (a == b)
        return np.where(same_inf, a, self.add(a, self.neg(b)))

    @abstractmethod
    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a * b`` (op class mul), rounded as the format's multiplier does."""

    @abstractmethod
    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a * b`` as a 2D-array PE's multiplier forms it: the term :meth:`mac` adds (op class mac's
        multiply; the lanes' ``mulx``)."""

    def mac(self, acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``acc + a * b`` as a 2D-array PE does it: ``add(acc, product(a, b))`` (op class mac; the
        accumulator's rounding is the format's add)."""
        return self.add(acc, self.product(a, b))

    @abstractmethod
    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``max(a, b)`` (op class max; exact)."""

    def minimum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``min(a, b) = -max(-a, -b)`` (exact)."""
        return self.neg(self.maximum(self.neg(a), self.neg(b)))

    @abstractmethod
    def exp(self, x: np.ndarray, premul: float | None = None) -> np.ndarray:
        """``exp(premul * x)`` (op class exp); ``premul`` is a constant the exp unit folds in."""

    @abstractmethod
    def recip(self, x: np.ndarray) -> np.ndarray:
        """``1 / x`` (op class recip)."""

    def div(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a / b`` as the hardware defers it: ``mul(a, recip(b))`` (op class div)."""
        return self.mul(a, self.recip(b))

    @abstractmethod
    def log(self, x: np.ndarray) -> np.ndarray:
        """Natural log (op class log)."""

    @abstractmethod
    def compare(self, op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a op b`` for ``op`` in ``< <= > >= == !=`` as booleans (op class cmp; exact)."""

    def select(self, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``cond ? a : b`` (op class cmp/select; exact)."""
        return np.where(cond, a, b)

    @abstractmethod
    def is_inf(self, x: np.ndarray) -> np.ndarray:
        """Which values are an infinity (or a fixed-point sentinel)."""

    #: Map operators this format computes on a functional unit of its own (operator name -> method),
    #: e.g. ``sigmoid``: the format interpreter and the lane executor call the method (the unit's bits)
    #: instead of :meth:`apply_float`.
    UNIT_OPERATORS: dict[str, str] = {}

    def apply_operator(self, name: str, function: Any, *args: np.ndarray) -> np.ndarray:
        """Map operator ``name`` (``function`` its float64 definition) on format values: the format's
        unit when it has one (:attr:`UNIT_OPERATORS`), else :meth:`apply_float`."""
        method = self.UNIT_OPERATORS.get(name)
        if method is not None:
            return getattr(self, method)(*args)
        return self.apply_float(function, *args)

    def apply_float(self, function: Any, *args: np.ndarray) -> np.ndarray:
        """Any other map operator (``sigmoid``, ``sqrt``, ...): evaluated in float64 on the exact values
        and rounded once to the format (:meth:`from_float`).  Not a model of a hardware unit."""
        with np.errstate(all="ignore"):
            return self.from_float(np.asarray(function(*(self.to_float(a) for a in args)), dtype=np.float64))

    @abstractmethod
    def from_float(self, x: np.ndarray) -> np.ndarray:
        """float64 values -> the format (its rounding of a computed value)."""

    def describe(self) -> dict[str, str]:
        """The rounding rule of each primitive, for manifests and reports."""
        return {name: (getattr(type(self), name).__doc__ or "").strip().split("\n")[0]
                for name in ("add", "mul", "mac", "maximum", "exp", "recip", "div", "log", "compare",
                             "select", "to_output")}
