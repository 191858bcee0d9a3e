"""Stage registers for the float units: a datapath written as stages, some boundaries registered."""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Value

__all__ = ["Pipeline", "check_latency", "registered_boundaries"]


def registered_boundaries(boundaries: int, latency: int) -> frozenset[int]:
    """Which of ``boundaries`` stage boundaries (0 = first) get a register for ``latency`` cycles.

    The registers are spread evenly and the last boundary (the output) is always registered when
    ``latency >= 1``, so a unit's result is driven by a flip-flop whenever it has any latency.
    """
    if not 0 <= latency <= boundaries:
        raise ValueError(f"latency must be 0..{boundaries}, not {latency}")
    return frozenset((j + 1) * boundaries // latency - 1 for j in range(latency)) if latency else frozenset()


def check_latency(component: object, boundaries: int, latency: int) -> None:
    """Raise ValueError for a latency outside 0..boundaries (without Amaranth's unused-elaboratable
    warning for the half-built ``component``)."""
    try:
        registered_boundaries(boundaries, latency)
    except ValueError:
        component._MustUse__silence = True
        raise


class Pipeline:
    """Builds a datapath stage by stage; each :meth:`stage` call is one potential register boundary.

    Parameters
    ----------
    m : Module
        The module the stage signals are added to (``sync`` domain for registers).
    boundaries : int
        How many times :meth:`stage` will be called.
    latency : int
        How many of those boundaries are registered (see :func:`registered_boundaries`).
    """

    def __init__(self, m: Module, boundaries: int, latency: int):
        self.m = m
        self.boundaries = boundaries
        self.cuts = registered_boundaries(boundaries, latency)
        self._next = 0

    def stage(self, **values: Value) -> SimpleNamespace:
        """Pass ``values`` across the next boundary: registered copies if it is cut, wires otherwise."""
        i = self._next
        if i >= self.boundaries:
            raise RuntimeError(f"more than {self.boundaries} stage boundaries")
        self._next += 1
        out = {}
        for name, v in values.items():
            v = Value.cast(v)
            s = Signal(v.shape(), name=f"s{i}_{name}", reset_less=True)   # datapath: no reset fan-out
            if i in self.cuts:
                self.m.d.sync += s.eq(v)
            else:
                self.m.d.comb += s.eq(v)
            out[name] = s
        return SimpleNamespace(**out)
