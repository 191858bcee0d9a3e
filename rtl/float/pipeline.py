"""Stage registers for the float units: a datapath written as stages, some boundaries registered."""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, Value

__all__ = ["Pipeline", "check_latency", "fabric_product", "partial_products", "pieces", "registered_boundaries", "sum_partials"]

#: operand piece width of :func:`partial_products`: an unsigned piece fits an ECP5 MULT18X18D (18 bits)
PIECE = 17


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

    def product(self, a: Value, b: Value, split: bool, **keep: Value) -> tuple[Value, SimpleNamespace]:
        """``(a * b, keep)`` for unsigned ``a``, ``b``: with ``split`` the :func:`partial_products`
        cross a boundary of their own (with ``keep``) and are added after it (:func:`sum_partials`);
        without, the product is combinational and no boundary is used."""
        if not split:
            return Value.cast(a) * Value.cast(b), SimpleNamespace(**keep)
        st = self.stage(**partial_products(a, b), **keep)
        return sum_partials(st), st

    @property
    def remaining(self) -> int:
        """Stage boundaries not used yet (a datapath built to a declared latency checks it is 0)."""
        return self.boundaries - self._next

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


def pieces(v: Value, piece: int = PIECE) -> list[Value]:
    """``v`` cut into ``piece``-bit pieces, low first: unsigned, except a signed ``v``'s top piece, which
    is signed (a two's-complement value is its unsigned low pieces plus its signed top piece shifted),
    so each fits an 18 x 18 signed hard multiplier."""
    v = Value.cast(v)
    n = len(v)
    return [v[k:min(n, k + piece)].as_signed() if v.shape().signed and k + piece >= n else v[k:min(n, k + piece)]
            for k in range(0, n, piece)]


def fabric_product(x: Value, y: Value) -> Value:
    """``x * y`` for unsigned ``x`` and a narrow unsigned ``y`` as shift-and-add in logic: one row
    ``y[i] ? x << i : 0`` per bit of ``y``, added in a balanced tree (ceil(log2(len(y))) adds deep), so
    synthesis does not spend a hard multiplier on it (ECP5's Yosys flow maps every ``*`` of 2 bits or
    more to a MULT18X18D).  Exact; ``len(x) + len(y)`` bits."""
    x, y = Value.cast(x), Value.cast(y)
    assert not x.shape().signed and not y.shape().signed, "fabric_product takes unsigned operands"
    rows = [Mux(y[i], x, 0) << i for i in range(len(y))]
    while len(rows) > 1:
        rows = [rows[k] + rows[k + 1] if k + 1 < len(rows) else rows[k] for k in range(0, len(rows), 2)]
    return rows[0][:len(x) + len(y)]


def partial_products(a: Value, b: Value, piece: int = PIECE, *, fabric_width: int = 0) -> dict[str, Value]:
    """The partial products of ``a * b`` with both operands cut into :func:`pieces` (low piece first):
    ``{"pp{i}_{j}": a_i * b_j}``, one hard multiplier each (a signed operand's top piece signed).  Pass
    them through a :meth:`Pipeline.stage` and add them with :func:`sum_partials` in the next stage, so
    that the multipliers and the add of their products (a wide multiply's slow part on 18x18 DSPs)
    are separate stages.  A product of two unsigned pieces one of which is at most ``fabric_width``
    bits wide is built in logic (:func:`fabric_product`), not on a hard multiplier."""
    def product(x: Value, y: Value) -> Value:
        if not x.shape().signed and not y.shape().signed and min(len(x), len(y)) <= fabric_width:
            return fabric_product(x, y) if len(y) <= len(x) else fabric_product(y, x)
        return x * y
    return {f"pp{i}_{j}": product(x, y) for i, x in enumerate(pieces(a, piece)) for j, y in enumerate(pieces(b, piece))}


def sum_partials(stage: SimpleNamespace, piece: int = PIECE) -> Value:
    """``a * b`` from the (registered) partial products of :func:`partial_products` in ``stage``."""
    total = None
    for name, v in vars(stage).items():
        if name.startswith("pp"):
            i, j = (int(x) for x in name[2:].split("_"))
            term = v << ((i + j) * piece)
            total = term if total is None else total + term
    return total
