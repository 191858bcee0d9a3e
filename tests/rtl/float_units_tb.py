"""cocotb testbench: every float unit against the golden model ``einloom.sim.formats.bf16``, bit for bit.

Testplan (each unit): corner values (zeros of both signs, ±inf, NaN, subnormals, min/max normal,
rounding ties, exp range ends, masked -inf scores) crossed where the unit has two inputs, then random
vectors (normal numbers over the whole range, close exponents for cancellation, raw random bit
patterns). One vector per cycle: a driver writes the inputs on the falling edge, a monitor reads the
result ``latency`` cycles later, and the scoreboard compares the whole run against the golden model.
"""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from einloom.sim.formats import bf16 as B
from float_harness import UNITS, latencies

LAT = latencies()
RANDOM = 6000

F32_CORNERS = np.array([
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x00000001, 0x807FFFFF,
    0x00800000, 0x80800000, 0x00800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x3F800001,
    0x3F7FFFFF, 0x3F808000, 0x3F818000, 0x3F800800, 0x4B000000, 0x33800000, 0x3F000000, 0x7F000000,
    0x42B17218, 0xC2AEAC50, 0xC2AEAC4F, 0x42B17217, 0x43000000, 0xC3000000, 0xC2FF0000, 0x42FF0000,
    0x42C80000, 0xC2C80000, 0xB3800000, 0x33000000, 0x7E800000, 0x7E800001, 0x0C000000, 0x73000000,
], dtype=np.uint32)
BF16_CORNERS = np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x0080,
                         0x8080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3F81, 0x3FFF, 0x4000, 0x1F80,
                         0x5F80, 0x2000, 0x6000, 0x3F00, 0x0100, 0x7F00], dtype=np.uint16)


def random_normal32(rng, n, emin=1, emax=254):
    return ((rng.integers(0, 2, n, dtype=np.uint32) << 31) | (rng.integers(emin, emax + 1, n, dtype=np.uint32) << 23)
            | rng.integers(0, 1 << 23, n, dtype=np.uint32))


def vectors(name: str, rng) -> tuple[np.ndarray, ...]:
    """Input vectors for unit ``name`` (tuple of 1 or 2 arrays)."""
    n = RANDOM
    if name == "bf16_to_fp32":
        return (np.concatenate([BF16_CORNERS, rng.integers(0, 1 << 16, n, dtype=np.uint16)]),)
    if name == "fp32_to_bf16":
        ties = random_normal32(rng, n // 4) & np.uint32(0xFFFF0000) | np.uint32(0x8000)
        return (np.concatenate([F32_CORNERS, random_normal32(rng, n // 2), ties,
                                rng.integers(0, 1 << 32, n // 4, dtype=np.uint32)]),)
    if name == "bf16_mul":
        c = np.array(np.meshgrid(BF16_CORNERS, BF16_CORNERS)).reshape(2, -1)
        r = rng.integers(0, 1 << 16, (2, n), dtype=np.uint16)
        near = B.fp32_to_bf16(random_normal32(rng, 2 * n, 64, 190)).reshape(2, n)
        return tuple(np.concatenate([c[i].astype(np.uint16), r[i], near[i]]) for i in range(2))
    if name == "fp32_exp":
        x = np.concatenate([rng.uniform(-100, 100, n), rng.uniform(-30, 0, n),
                            rng.uniform(-1, 1, n // 4) * 2.0 ** rng.integers(-30, 0, n // 4)])
        return (np.concatenate([F32_CORNERS, B.fp32_bits(x), rng.integers(0, 1 << 32, n // 4, dtype=np.uint32)]),)
    if name == "fp32_recip":
        return (np.concatenate([F32_CORNERS, random_normal32(rng, 2 * n),
                                rng.integers(0, 1 << 32, n // 4, dtype=np.uint32)]),)
    if name == "exp_diff":
        m = B.fp32_bits(rng.uniform(-20, 20, 2 * n))
        x = B.fp32_bits(B.fp32_value(m) - np.abs(rng.standard_normal(2 * n) * 10).astype(np.float32))
        x[::17] = B.FP32_NEG_INF
        c = np.array(np.meshgrid(F32_CORNERS, F32_CORNERS[:12])).reshape(2, -1)
        return np.concatenate([c[0], x]), np.concatenate([c[1], m])
    # two-input fp32 units: corner cross product, random normals, close exponents, raw bits
    c = np.array(np.meshgrid(F32_CORNERS, F32_CORNERS)).reshape(2, -1)
    a = random_normal32(rng, n)
    ea = ((a >> 23) & 0xFF).astype(np.int64)
    eb = np.clip(ea + rng.integers(-2, 3, n), 1, 254).astype(np.uint32)
    b = (rng.integers(0, 2, n, dtype=np.uint32) << 31) | (eb << 23) | rng.integers(0, 1 << 23, n, dtype=np.uint32)
    a2, b2 = random_normal32(rng, n, 60, 200), random_normal32(rng, n, 60, 200)
    raw = rng.integers(0, 1 << 32, (2, n // 4), dtype=np.uint32)
    return (np.concatenate([c[0], a, a2, raw[0]]).astype(np.uint32),
            np.concatenate([c[1], b, b2, raw[1]]).astype(np.uint32))


async def check_unit(dut, name: str) -> None:
    case = UNITS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32 if False else sum(map(ord, name)))
    ins = vectors(name, rng)
    n = len(ins[0])
    lat = LAT[name]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 0
    ports = [getattr(dut, f"{name}_a")] + ([getattr(dut, f"{name}_b")] if case.inputs == 2 else [])
    out = getattr(dut, f"{name}_result")
    cols = [[int(v) for v in arr] for arr in ins]
    got = []
    for cycle in range(n + lat):
        await FallingEdge(dut.clk)
        if cycle >= lat:
            got.append(out.value.to_unsigned())
        if cycle < n:
            for port, col in zip(ports, cols):
                port.value = col[cycle]
    want = np.asarray(case.golden(*ins)).astype(np.int64) & ((1 << case.out_bits) - 1)
    got = np.array(got, dtype=np.int64)
    bad = np.flatnonzero(got != want)
    if bad.size:
        lines = [f"{name}: {bad.size}/{n} mismatches, first:"]
        for i in bad[:8]:
            args = ", ".join(f"0x{int(col[i]):08x}" for col in ins)
            lines.append(f"  ({args}) -> rtl 0x{got[i]:08x}, golden 0x{want[i]:08x}")
        raise AssertionError("\n".join(lines))
    dut._log.info("%s: %d vectors bit-exact (latency %d)", name, n, lat)


def _make(name):
    async def test(dut):
        await check_unit(dut, name)
    test.__name__ = test.__qualname__ = f"test_{name}"
    return cocotb.test(test)


for _name in UNITS:
    globals()[f"test_{_name}"] = _make(_name)
