"""The bit-exact arithmetic library of the number formats (einloom.sim.formats.arith).

* :mod:`.base` -- :class:`Arith`, a format's op-class primitives (add, mul, mac, max, exp, recip, div,
  cmp/select, log), each with its rounding rule.
* :mod:`.fixed` -- two's-complement fixed point: the exp/reciprocal datapaths and :class:`FixedArith`.
* :mod:`.fp32` -- the fp32/bf16 unit models of ``einloom.rtl.float`` (bit patterns in, bit patterns out).
* :mod:`.float` -- :class:`Fp32Arith`, bf16 operands with fp32 arithmetic as op classes.

:func:`arith_for` gives the :class:`Arith` of a :class:`~einloom.sim.formats.base.NumberFormat`.
"""
from __future__ import annotations

from einloom.sim.formats.arith.base import Arith


def arith_for(fmt) -> Arith:
    """The op-class primitives of a number format (``fixed`` or ``bf16``)."""
    if fmt.kind == "fixed":
        from einloom.sim.formats.arith.fixed import FixedArith
        return FixedArith(fmt)
    if fmt.kind == "bf16":
        from einloom.sim.formats.arith.float import Fp32Arith
        return Fp32Arith(output=fmt.output_kind)
    raise ValueError(f"no arithmetic library for number format {fmt.kind!r}")


__all__ = ["Arith", "arith_for"]
