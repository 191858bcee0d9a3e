"""Per-number-format arithmetic for the attention datapath (see base.py for the contract)."""
from __future__ import annotations

from typing import Callable

from einloom.rtl.units.base import DatapathUnits
from einloom.sim.formats.base import NumberFormat

#: number-format kind -> factory(fmt) -> DatapathUnits.  A format registers itself here.
REGISTRY: dict[str, Callable[[NumberFormat], DatapathUnits]] = {}


def register(kind: str, factory: Callable[[NumberFormat], DatapathUnits]) -> None:
    REGISTRY[kind] = factory


def units_for(fmt: NumberFormat, product_latency: int | None = None) -> DatapathUnits:
    """The :class:`DatapathUnits` implementing ``fmt`` in hardware; with ``product_latency``, a 2D PE
    multiply of that many register stages (:meth:`DatapathUnits.with_product_latency`)."""
    if fmt.kind not in REGISTRY:
        if fmt.kind == "fixed":
            from einloom.rtl.units import fixed  # noqa: F401  (registers itself)
        else:
            try:  # a float format lives in rtl/float/ and registers itself on import
                __import__(f"einloom.rtl.float.{fmt.kind}")
            except ImportError:
                pass
    if fmt.kind not in REGISTRY:
        raise KeyError(f"no RTL datapath for number format {fmt.kind!r}")
    units = REGISTRY[fmt.kind](fmt)
    return units if product_latency is None else units.with_product_latency(product_latency)


__all__ = ["DatapathUnits", "register", "units_for", "REGISTRY"]
