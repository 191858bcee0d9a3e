"""cocotb tests of single components against the golden model's primitives.

``EINLOOM_TB_SPEC`` = ``{"unit": "exp" | "recip" | "output" | "rescale" | "pe" | "array", "config": <RtlConfig
dict>, "count": N}``.
Each test drives one new operation per cycle and checks every output ``latency`` cycles later, so it
also checks the component's ``latency`` property.
"""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from einloom.rtl.config import RtlConfig
from einloom.rtl.units import units_for

SPEC = json.load(open(os.environ["EINLOOM_TB_SPEC"])) if os.environ.get("EINLOOM_TB_SPEC") else {}


def _signed(value, bits):
    v = int(value.to_unsigned())
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


async def _reset(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def _pipeline(dut, inputs: list[dict], latency: int, read) -> list:
    """Apply ``inputs[t]`` at cycle t; return ``read()`` sampled at cycle t + latency for every t."""
    got = []
    for t in range(len(inputs) + latency):
        if t < len(inputs):
            for name, value in inputs[t].items():
                getattr(dut, name).value = value
        await ReadOnly()
        if t >= latency:
            got.append(read())
        await RisingEdge(dut.clk)
    return got


async def _check_pipeline(dut, inputs: list[dict], latency: int, read, want, operands: list[tuple]) -> None:
    """Reset, run :func:`_pipeline` and assert ``got[i] == want[i]`` for every i; a failure lists the
    first mismatches as ``operands[i] + (got, want)``."""
    await _reset(dut)
    got = await _pipeline(dut, inputs, latency, read)
    bad = [operands[i] + (got[i], int(want[i])) for i in range(len(inputs)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def _cfg():
    return RtlConfig.from_dict(SPEC["config"])


if SPEC.get("unit") == "exp":
    @cocotb.test()
    async def exp_matches_golden(dut):
        cfg = _cfg()
        fmt, units = cfg.fmt, units_for(cfg.fmt)
        rng = np.random.default_rng(3)
        n = SPEC.get("count", 2000)
        a = fmt.acc_bits
        m = rng.integers(-(1 << (a - 3)), 1 << (a - 3), n)
        scales = rng.choice([1 << 4, 1 << 8, 1 << 12, 1 << 16, 1 << 24], n)
        d = -(rng.integers(0, 1 << 62, n) % scales)
        d[:4] = [0, -1, -(1 << (a - 4)), -5]
        x = m + d
        want = fmt.exp_diff(x, m)
        mask = (1 << a) - 1
        await _check_pipeline(dut, [{"x": int(xi) & mask, "m": int(mi) & mask} for xi, mi in zip(x, m)],
                              units.exp_latency, lambda: int(dut.y.value.to_unsigned()), want,
                              [(i, int(x[i]), int(m[i])) for i in range(n)])


if SPEC.get("unit") == "recip":
    @cocotb.test()
    async def recip_matches_golden(dut):
        cfg = _cfg()
        fmt, units = cfg.fmt, units_for(cfg.fmt)
        rng = np.random.default_rng(4)
        a = fmt.acc_bits
        n = SPEC.get("count", 2000)
        x = np.concatenate([1 << np.arange(a - 1), (1 << np.arange(1, a)) - 1,
                            rng.integers(1, 1 << (a - 1), n)])
        want = fmt.reciprocal(x)
        await _check_pipeline(dut, [{"x": int(v)} for v in x], units.recip_latency,
                              lambda: int(dut.y.value.to_unsigned()), want, [(int(v),) for v in x])


if SPEC.get("unit") == "output":
    @cocotb.test()
    async def output_matches_golden(dut):
        cfg = _cfg()
        fmt, units = cfg.fmt, units_for(cfg.fmt)
        rng = np.random.default_rng(7)
        a, ob = fmt.acc_bits, fmt.p.output_bits
        n = SPEC.get("count", 2000)
        rnv = rng.integers(-(1 << (a - 1)), 1 << (a - 1), n) >> rng.integers(0, a - 1, n)
        rd = np.maximum(1, rng.integers(1, 1 << (a - 1), n) >> rng.integers(0, a - 1, n))
        recip = fmt.reciprocal(rd)
        want = fmt.output(rnv, recip)
        await _check_pipeline(dut, [{"rnv": int(x) & ((1 << a) - 1), "recip": int(y)} for x, y in zip(rnv, recip)],
                              units.output_latency, lambda: _signed(dut.y.value, ob), want,
                              [(int(rnv[i]), int(rd[i])) for i in range(n)])


if SPEC.get("unit") == "rescale":
    @cocotb.test()
    async def rescale_matches_golden(dut):
        cfg = _cfg()
        fmt, units = cfg.fmt, units_for(cfg.fmt)
        rng = np.random.default_rng(8)
        a, pb = fmt.acc_bits, fmt.p.prob_bits
        n = SPEC.get("count", 2000)
        prm = rng.integers(0, (1 << pb) + 1, n)
        prm[:3] = [0, 1 << pb, 1]
        old = rng.integers(-(1 << (a - 3)), 1 << (a - 3), n) >> rng.integers(0, a - 3, n)
        new = rng.integers(-(1 << (a - 3)), 1 << (a - 3), n) >> rng.integers(0, a - 3, n)
        want = fmt.rescale_add(prm, old, new)
        mask = (1 << a) - 1
        await _check_pipeline(dut, [{"prm": int(p), "old": int(o) & mask, "addend": int(w) & mask}
                                    for p, o, w in zip(prm, old, new)],
                              units.rescale_latency, lambda: _signed(dut.y.value, a), want,
                              [(int(prm[i]), int(old[i]), int(new[i])) for i in range(n)])


if SPEC.get("unit") == "pe":
    @cocotb.test()
    async def pe_matches_model(dut):
        """Random modes and operands against a Python model of ProcessingElement (its MAC pipeline:
        operand register, product register, accumulate)."""
        cfg = _cfg()
        fmt = cfg.fmt
        ib, ab, pw = fmt.input_bits, fmt.acc_bits, fmt.prob_width
        rng = np.random.default_rng(5)
        await _reset(dut)
        acc = w = a_reg = b_reg = operand = product = 0
        wrap = lambda v, bits: ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))  # noqa: E731
        for t in range(SPEC.get("count", 1500)):
            mode, clear, wsh = int(rng.integers(0, 4)), int(rng.random() < 0.05), int(rng.random() < 0.3)
            a_in = int(rng.integers(-(1 << (ib - 1)), 1 << (ib - 1)))
            b_in = int(rng.integers(-(1 << (ib - 1)), 1 << (ib - 1)))
            acc_in = int(rng.integers(-(1 << (ab - 2)), 1 << (ab - 2)))
            w_in = int(rng.integers(0, 1 << (pw - 1)))
            for name, v, bits in [("a_in", a_in, ib), ("b_in", b_in, ib), ("acc_in", acc_in, ab),
                                  ("w_in", w_in, pw)]:
                getattr(dut, name).value = v & ((1 << bits) - 1)
            dut.mode.value, dut.clear.value, dut.w_shift.value = mode, clear, wsh
            await ReadOnly()
            assert _signed(dut.acc_out.value, ab) == acc, f"cycle {t}: acc {_signed(dut.acc_out.value, ab)} != {acc}"
            assert _signed(dut.a_out.value, ib) == a_reg and _signed(dut.b_out.value, ib) == b_reg
            assert int(dut.w_out.value.to_unsigned()) == w
            if clear:
                acc = 0
            elif mode == 1:
                acc = wrap(acc + product, ab)
            elif mode == 2:
                acc = acc_in
            elif mode == 3:
                acc = wrap(acc_in + product, ab)
            product = a_reg * operand
            operand = w if mode == 3 else b_in
            if wsh:
                w = w_in
            a_reg, b_reg = a_in, b_in
            await RisingEdge(dut.clk)


if SPEC.get("unit") == "array":
    @cocotb.test()
    async def array_qk_and_drain(dut):
        """Feed K (rows) and Q (columns), row r's and column c's element e at cycle e + r and e + c;
        after os_cycles(E) drain R rows.  Column c's controls (clear, OS, SHIFT) are driven c cycles
        late, as the attention core does."""
        from einloom.rtl.pe import ProcessingElement
        cfg = _cfg()
        fmt = cfg.fmt
        r_dim, c_dim, e_dim, ib, ab = cfg.rows, cfg.cols, cfg.head_dim, fmt.input_bits, fmt.acc_bits
        rng = np.random.default_rng(6)
        k = rng.integers(-(1 << (ib - 1)), 1 << (ib - 1), (r_dim, e_dim))
        q = rng.integers(-(1 << (ib - 1)), 1 << (ib - 1), (e_dim, c_dim))
        want = k @ q
        await _reset(dut)
        mask = (1 << ib) - 1
        os_cycles = e_dim + r_dim - 1 + ProcessingElement.MAC_LATENCY

        def schedule(t):            # column-0 time: -1 clear, [0, os) OS, [os, os + R) SHIFT
            if t == -1:
                return 0, 1
            if 0 <= t < os_cycles:
                return 1, 0
            if os_cycles <= t < os_cycles + r_dim:
                return 2, 0
            return 0, 0

        got = np.zeros_like(want)
        for t in range(-1, os_cycles + r_dim + c_dim + r_dim):
            for c in range(c_dim):
                mode, clear = schedule(t - c)
                getattr(dut, f"mode__{c}").value = mode
                getattr(dut, f"clear__{c}").value = clear
            for r in range(r_dim):          # inputs skewed by the caller: row r's element e at e + r
                e = t - r
                getattr(dut, f"a_in__{r}").value = int(k[r, e]) & mask if 0 <= e < e_dim else 0
            for c in range(c_dim):
                e = t - c
                getattr(dut, f"b_in__{c}").value = int(q[e, c]) & mask if 0 <= e < e_dim else 0
            await ReadOnly()
            for c in range(c_dim):
                j = t - c - os_cycles
                if 0 <= j < r_dim:
                    got[r_dim - 1 - j, c] = _signed(getattr(dut, f"acc_out__{c}").value, ab)
            await RisingEdge(dut.clk)
        assert np.array_equal(got, want), f"got\n{got}\nwant\n{want}"
