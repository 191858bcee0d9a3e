"""Field helpers shared by the float units (fp32: 1 sign, 8 exponent, 23 fraction bits; bf16: 1, 8, 7)."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

FP32_NAN = 0x7FC00000
BF16_NAN = 0x7FC0
FP32_INF = 0x7F800000


def fields32(x: Value) -> tuple[Value, Value, Value]:
    """(sign, biased exponent, fraction) of an fp32 bit pattern."""
    return x[31], x[23:31], x[0:23]


def significand32(e: Value, f: Value) -> Value:
    """24-bit significand with the hidden one; 0 for zero and subnormal exponents (flush to zero)."""
    return Mux(e == 0, 0, Cat(f, Const(1, 1)))


def signed_inf(sign: Value) -> Value:
    return Cat(Const(0, 23), Const(0xFF, 8), sign)


def signed_zero(sign: Value) -> Value:
    return Cat(Const(0, 31), sign)


def finish(sign: Value, exp: Value, sig: Value) -> Value:
    """Pack a rounded significand (leading one at bit 23) and a signed biased exponent.

    Exponents >= 255 give a signed infinity, exponents <= 0 a signed zero (flush to zero).
    """
    packed = Cat(sig[0:23], exp[0:8], sign)
    return Mux(exp >= 255, signed_inf(sign), Mux(exp <= 0, signed_zero(sign), packed))
