"""cocotb testbench: the pipelined fp32 accumulator against ``fp32_sum_interleaved``, bit for bit.

Testplan (each latency L = 1..4): runs of E terms for E = 1..2L+3 and E = 8, 16, 64 (fewer terms than
partial sums, ragged and whole rounds), back to back (the next ``first`` on the cycle ``done`` is
high) and with idle gaps between runs; terms are random normals over a wide exponent range (the order
changes the rounding), cancelling pairs, zeros of both signs, a partial sum that underflows to -0
(the combine reads ``+0 + P0``), infinities and NaN.  A driver writes a run's terms on consecutive
falling edges; a monitor records ``sum`` whenever ``done`` is high and checks that it comes exactly
``drain_latency`` cycles after the ``last`` term; the scoreboard compares every sum with the golden model.
"""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from accumulate_harness import INT8, LATENCIES, unit_named
from einloom.sim.formats.arith.fp32 import fp32_sum_interleaved

UNDERFLOW_PAIR = [0x80C00000, 0x00800000]   # -1.5*2**-126 + 2**-126 = -2**-127: flushed to -0


def runs(lat: int, rng) -> list[np.ndarray]:
    """Term runs for latency ``lat`` (see the module docstring)."""
    out = []
    lengths = list(range(1, 2 * lat + 4)) + [8, 16, 64]
    for n in lengths:
        for _ in range(3):
            signs = rng.integers(0, 2, n, dtype=np.uint32) << 31
            exps = rng.integers(100, 150, n, dtype=np.uint32) << 23
            out.append((signs | exps | rng.integers(0, 1 << 23, n, dtype=np.uint32)).astype(np.uint32))
    big = np.array([0x4B800000, 0x3F800000, 0xCB800000, 0x3F800001, 0x33800000, 0xB3800000] * 4, dtype=np.uint32)
    out.append(big)                                                     # cancellation: order decides
    out.append(np.array([0x80000000] * (2 * lat), dtype=np.uint32))     # -0 terms sum to +0
    out.append(np.array(UNDERFLOW_PAIR * lat + [0x80000000] * lat, dtype=np.uint32)[: 3 * lat])
    out.append(np.array([0x7F800000, 0x3F800000, 0xFF800000, 0x40000000], dtype=np.uint32))   # inf - inf
    out.append(np.array([0x7F800000] + [0x3F800000] * (lat + 1), dtype=np.uint32))
    out.append(np.array([0x7FC00000, 0x3F800000], dtype=np.uint32))
    return out


def int_runs(rng) -> list[np.ndarray]:
    """Product runs for the int8 accumulator: random int8 x prob-width products, extremes, wrap-around."""
    lo, hi = -(1 << 24), (1 << 24) - 1
    out = [rng.integers(lo, hi + 1, n) for n in (1, 2, 3, 5, 16, 64) for _ in range(2)]
    out.append(np.array([hi] * 300))                               # wraps the 32-bit accumulator
    out.append(np.array([lo, hi, lo, hi, 0]))
    return out


def int_golden(terms: np.ndarray) -> int:
    """The sum wrapped to acc_bits, as an unsigned code (what the port shows)."""
    return int(terms.astype(np.int64).sum()) % (1 << INT8.acc_bits)


async def check(dut, name: str, lat: int, gaps: bool, *, integer: bool = False) -> None:
    prefix = f"{name}_"
    x, first, last = (getattr(dut, prefix + n) for n in ("x", "first", "last"))
    total, done = getattr(dut, prefix + "sum"), getattr(dut, prefix + "done")
    unit = unit_named(name)
    drain = unit.drain_latency
    assert unit.latency == lat
    rng = np.random.default_rng(100 * lat + gaps + 7 * integer)
    width = len(unit.x)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    first.value = last.value = x.value = 0
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    got, last_cycles, done_cycles = [], [], []
    cycle = 0

    async def monitor():
        nonlocal cycle
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            cycle += 1
            if done.value:
                got.append(int(total.value))
                done_cycles.append(cycle)

    cocotb.start_soon(monitor())
    expected = []
    for terms in (int_runs(rng) if integer else runs(lat, rng)):
        expected.append(int_golden(terms) if integer else int(fp32_sum_interleaved(terms, lat)))
        for i, term in enumerate(terms):
            await FallingEdge(dut.clk)
            x.value, first.value, last.value = int(term) % (1 << width), int(i == 0), int(i == len(terms) - 1)
            if i == len(terms) - 1:
                last_cycles.append(cycle)           # the cycle the last term is presented in
        await FallingEdge(dut.clk)
        first.value = last.value = 0
        x.value = int(rng.integers(0, 1 << width))   # garbage between runs must not count
        for _ in range(drain - 2 + (int(rng.integers(0, 5)) if gaps else 0)):   # next first: on done or later
            await FallingEdge(dut.clk)
    for _ in range(drain + 2):
        await FallingEdge(dut.clk)
    assert len(got) == len(expected), f"L={lat}: {len(got)} sums for {len(expected)} runs"
    bad = [(i, hex(g), hex(e)) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not bad, f"L={lat}: {len(bad)} sums differ from fp32_sum_interleaved, first: {bad[:3]}"
    delays = {d - t for d, t in zip(done_cycles, last_cycles)}
    assert delays == {drain}, f"L={lat}: done came {sorted(delays)} cycles after the last term, not {drain}"


@cocotb.test()
@cocotb.parametrize(lat=list(LATENCIES), gaps=[False, True])
async def test_accumulate(dut, lat, gaps):
    await check(dut, f"acc{lat}", lat, gaps)


@cocotb.test()
async def test_bf16_accumulate_unit(dut):
    """``Bf16Units.accumulate_unit()`` of a format with acc_latency 4: the Fp32Accumulator, L = 4."""
    await check(dut, "bf16_unit", 4, True)


@cocotb.test()
async def test_int8_accumulate_unit(dut):
    """``FixedUnits.accumulate_unit()`` (int8 preset): a wrapping 32-bit sum, latency 1."""
    await check(dut, "int8_unit", 1, True, integer=True)
