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
from einloom.rtl.pe import acc_latency, mac_latency

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
        fmt, units = cfg.fmt, cfg.units()
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
        fmt, units = cfg.fmt, cfg.units()
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
        fmt, units = cfg.fmt, cfg.units()
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
        fmt, units = cfg.fmt, cfg.units()
        rng = np.random.default_rng(8)
        a, pb = fmt.acc_bits, fmt.p.prob_bits
        n = SPEC.get("count", 2000)
        prm = rng.integers(0, (1 << pb) + 1, n)
        prm[:3] = [0, 1 << pb, 1]
        old = rng.integers(-(1 << (a - 3)), 1 << (a - 3), n) >> rng.integers(0, a - 3, n)
        new = rng.integers(-(1 << (a - 3)), 1 << (a - 3), n) >> rng.integers(0, a - 3, n)
        first = rng.integers(0, 2, n) if hasattr(dut, "first") else np.zeros(n, dtype=np.int64)
        want = fmt.rescale_add(prm, np.where(first == 1, 0, old), new)     # first: rescale 0
        mask = (1 << a) - 1
        extra = [{"first": int(f)} if hasattr(dut, "first") else {} for f in first]
        await _check_pipeline(dut, [{"prm": int(p), "old": int(o) & mask, "addend": int(w) & mask, **x}
                                    for p, o, w, x in zip(prm, old, new, extra)],
                              units.rescale_latency, lambda: _signed(dut.y.value, a), want,
                              [(int(prm[i]), int(old[i]), int(new[i])) for i in range(n)])


if SPEC.get("unit") == "pe":
    @cocotb.test()
    async def pe_matches_model(dut):
        """Random tags (none / OS / WS, first, last), drain and weight shifts and operands against a
        Python model of ProcessingElement (operand registers, mac_latency - 1 product registers,
        accumulate under the tag that travelled with the product; drain, psum and shadow/active weight
        registers)."""
        cfg = _cfg()
        fmt = cfg.fmt
        ib, ab, pw = fmt.input_bits, fmt.acc_bits, fmt.prob_width
        rng = np.random.default_rng(5)
        await _reset(dut)
        wrap = lambda v, bits: ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))  # noqa: E731
        lat = mac_latency(cfg.units())    # the a / operand registers, then lat - 1 product registers
        r = dict(a=0, b=0, tags=[0] * lat, acc=0, psum=0, shd=0, w_sh=0, w_act=0, operand=0,
                 products=[0] * (lat - 1))
        checked = 0
        for t in range(SPEC.get("count", 1500)):
            kind = int(rng.integers(0, 3))            # 0 none, 1 os, 2 ws
            first, last = int(rng.random() < 0.3), int(rng.random() < 0.3)
            tag = (kind == 1) | ((kind == 2) << 1) | (first << 2) | (last << 3)
            drain, wsh = int(rng.random() < 0.3), int(rng.random() < 0.3)
            a_in = int(rng.integers(-(1 << (ib - 1)), 1 << (ib - 1)))
            b_in = int(rng.integers(-(1 << (ib - 1)), 1 << (ib - 1)))
            psum_in = int(rng.integers(-(1 << (ab - 2)), 1 << (ab - 2)))
            shd_in = int(rng.integers(-(1 << (ab - 2)), 1 << (ab - 2)))
            w_in = int(rng.integers(0, 1 << (pw - 1)))
            for name, v, bits in [("a_in", a_in, ib), ("b_in", b_in, ib), ("psum_in", psum_in, ab),
                                  ("shd_in", shd_in, ab), ("w_in", w_in, pw)]:
                getattr(dut, name).value = v & ((1 << bits) - 1)
            dut.tag_in.value, dut.drain.value, dut.w_shift.value = tag, drain, wsh
            await ReadOnly()
            if t > 4:           # the reset-less datapath registers are defined after a few cycles
                got = {"acc_out": None, "psum_out": r["psum"], "shd_out": r["shd"]}
                for name in ("psum_out", "shd_out"):
                    assert _signed(getattr(dut, name).value, ab) == got[name], \
                        f"cycle {t}: {name} {_signed(getattr(dut, name).value, ab)} != {got[name]}"
                assert _signed(dut.a_out.value, ib) == r["a"] and _signed(dut.b_out.value, ib) == r["b"]
                assert int(dut.tag_out.value.to_unsigned()) == r["tags"][0]
                assert int(dut.w_out.value.to_unsigned()) == r["w_sh"]
                checked += 1
            t2 = r["tags"][-1]                   # the tag beside the product
            os2, ws2, first2, last2 = t2 & 1, (t2 >> 1) & 1, (t2 >> 2) & 1, (t2 >> 3) & 1
            base = psum_in if ws2 else (0 if first2 else r["acc"])
            result = wrap(base + r["products"][-1], ab)
            n = dict(r)
            if os2:
                n["acc"] = result
            if ws2:
                n["psum"] = result
            if os2 and last2:
                n["shd"] = result
            elif drain:
                n["shd"] = shd_in
            n["products"] = [r["a"] * r["operand"]] + r["products"][:-1]
            if kind == 2:
                n["operand"] = r["w_sh"] if first else r["w_act"]
                if first:
                    n["w_act"] = r["w_sh"]
            else:
                n["operand"] = b_in
            if wsh:
                n["w_sh"] = w_in
            n.update(a=a_in, b=b_in, tags=[tag] + r["tags"][:-1])
            r = n
            await RisingEdge(dut.clk)
        assert checked > 1000


if SPEC.get("unit") == "array":
    @cocotb.test()
    async def array_qk_drain_and_slnv(dut):
        """Load stationary weights W into the shadow registers, then feed one QK tile (K rows, Q
        columns, element e of row r and column c at cycle e + r and e + c, with OS tags) and right
        behind it V with WS tags (the first swaps W in); drain the QK tile (rows R-1 .. 0) and read the
        column sums sum_r W[r, c] V[r, f].  Column c's controls (drain, w_shift) are driven c cycles
        late, as the attention core does."""
        cfg = _cfg()
        fmt = cfg.fmt
        r_dim, c_dim, e_dim, f_dim = cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim
        ib, ab, pw = fmt.input_bits, fmt.acc_bits, fmt.prob_width
        rng = np.random.default_rng(6)
        k = rng.integers(-(1 << (ib - 1)), 1 << (ib - 1), (r_dim, e_dim))
        q = rng.integers(-(1 << (ib - 1)), 1 << (ib - 1), (e_dim, c_dim))
        v = rng.integers(-(1 << (ib - 1)), 1 << (ib - 1), (r_dim, f_dim))
        w = rng.integers(0, 1 << (pw - 1), (r_dim, c_dim))
        want_qk, want_sv = k @ q, v.T @ w          # [R, C], [F, C]
        await _reset(dut)
        mask = (1 << ib) - 1
        w0 = -r_dim - 1                 # weights shift in at column-0 cycles w0 .. w0 + R - 1 (row R-1 first)
        units = cfg.units()
        mac = mac_latency(units)
        assert acc_latency(units) == 1, "the model drains a single-cycle accumulate's array"
        drain0 = e_dim + r_dim + mac - 1  # bottom row's dot product in shd_out (element 0 enters at cycle 0)
        v0 = e_dim                      # V element f enters row r at v0 + f + r
        got_qk, got_sv = np.zeros_like(want_qk), np.zeros_like(want_sv)
        for t in range(w0, drain0 + 2 * r_dim + c_dim + f_dim + 4):
            for c in range(c_dim):
                tc = t - c
                j = tc - w0
                getattr(dut, f"w_shift__{c}").value = int(0 <= j < r_dim)
                getattr(dut, f"w_in__{c}").value = int(w[r_dim - 1 - j, c]) if 0 <= j < r_dim else 0
                getattr(dut, f"drain__{c}").value = int(drain0 <= tc < drain0 + r_dim - 1)
                e = tc
                getattr(dut, f"b_in__{c}").value = int(q[e, c]) & mask if 0 <= e < e_dim else 0
            for r in range(r_dim):
                e, f = t - r, t - r - v0
                if 0 <= e < e_dim:
                    val, tag = int(k[r, e]), 1 | ((e == 0) << 2) | ((e == e_dim - 1) << 3)
                elif 0 <= f < f_dim:
                    val, tag = int(v[r, f]), 2 | ((f == 0) << 2)
                else:
                    val, tag = 0, 0
                getattr(dut, f"a_in__{r}").value = val & mask
                getattr(dut, f"tag_in__{r}").value = tag
            await ReadOnly()
            for c in range(c_dim):
                j = t - c - drain0
                if 0 <= j < r_dim:
                    got_qk[r_dim - 1 - j, c] = _signed(getattr(dut, f"shd_out__{c}").value, ab)
                f = t - c - (v0 + r_dim + mac)
                if 0 <= f < f_dim:
                    got_sv[f, c] = _signed(getattr(dut, f"psum_out__{c}").value, ab)
            await RisingEdge(dut.clk)
        assert np.array_equal(got_qk, want_qk), f"QK got\n{got_qk}\nwant\n{want_qk}"
        assert np.array_equal(got_sv, want_sv), f"SLNV got\n{got_sv}\nwant\n{want_sv}"
