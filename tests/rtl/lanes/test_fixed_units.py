"""The fixed-point lane units (rtl/lanes/fixed_units.py) bit-exact with FixedArith (the int8 and int16
presets) in Amaranth's simulator: edge cases (zeros, sentinels, both signs, f from 0 to 30) and random
codes of every magnitude, one operation per cycle.  Inputs on which the model raises OverflowError
(an alignment or a product beyond 62 bits) are left out: the model defines no result there."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.rtl.lanes.fixed_units import (FIXED_UNITS, NEG, POS, FixedReluUnit, FixedSigmoidUnit, exp_constant,
                                           pack_value, unpack_value)
from einloom.sim.formats.arith.fixed import FIXED_DTYPE, FixedArith
from einloom.sim.formats.fixed import PRESETS, FixedFormat


def _arith(preset: str) -> FixedArith:
    return FixedArith(FixedFormat(PRESETS[preset], head_dim=8, max_keys=64))


def _values(rng, n: int) -> list[tuple[int, int]]:
    edge = [(0, 0), (1, 0), (-1, 0), (POS, 0), (NEG, 0), (0, 15), (1 << 15, 15), (-(1 << 15), 15), (3, 8),
            (-5, 16), (23170, 16), (1, 30), (-(1 << 30), 19), ((1 << 40) + 7, 20), (POS, 5), (NEG, 12)]
    bits = rng.integers(0, 45, n)
    codes = [int(rng.integers(-(1 << b), (1 << b) + 1)) for b in bits]
    fs = rng.integers(0, 24, n)
    return edge + list(zip(codes, (int(f) for f in fs)))


#: more edges for log, sigmoid and exp: the most negative int8/int16 input codes, the largest codes below the
#: +inf sentinel, 23/24-bit codes (the log's truncation point), values next to 1, extreme fraction bits
FN_EDGES = [(-128, 4), (-(1 << 15), 8), (127, 4), (POS - 1, 0), ((1 << 61) + 12345, -5), ((1 << 61) - 1, 127),
            (1, -128), (1, 127), ((1 << 23) - 1, 0), (1 << 23, 3), ((1 << 24) + 1, 0), ((1 << 15) - 1, 15),
            ((1 << 15) + 1, 15), (1 << 16, 16), (-(1 << 40), 20), (1 << 40, 4), (-(1 << 40), 4), (NEG + 1, 0)]


def _model(op: str, a: FixedArith, x, y, mode: int, premul: float):
    va = np.array([x], dtype=FIXED_DTYPE)
    vb = np.array([y], dtype=FIXED_DTYPE)
    with np.errstate(all="ignore"):
        if op == "add":
            r = a.sub(va, vb) if mode else a.add(va, vb)
        elif op == "max":
            r = a.minimum(va, vb) if mode else a.maximum(va, vb)
        elif op == "mul":                  # mode 1: mulx, the exact product a mac adds
            r = a.product(va, vb) if mode else a.mul(va, vb)
        elif op == "exp":
            r = a.exp(va, premul=premul)
        elif op == "recip":
            r = a.recip(va)
        elif op in ("relu", "sigmoid"):
            from einloom.einsum import operators
            r = a.apply_operator(op, operators.map_operator(op).function, va)
        elif op == "log":
            r = a.log(va)
        else:
            r = a.div(va, vb)
    return int(r["c"][0]), int(r["f"][0])


def _run(unit, words: list[tuple[int, int, int]]) -> list[int]:
    out: list[int] = []
    lat = unit.latency

    async def bench(ctx):
        for t in range(len(words) + lat):
            if t < len(words):
                wa, wb, mode = words[t]
                ctx.set(unit.a, wa)
                ctx.set(unit.b, wb)
                ctx.set(unit.mode, mode)
            await ctx.tick()
            if t + 1 >= lat and len(out) < len(words):
                out.append(ctx.get(unit.result))
    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("preset", ["int8", "int16"])
@pytest.mark.parametrize("op", ["add", "max", "mul", "exp", "recip", "div", "relu", "sigmoid", "log"])
def test_fixed_unit_bit_exact_with_the_format_model(op, preset):
    rng = np.random.default_rng(hash((op, preset)) % (1 << 31))
    a = _arith(preset)
    vals = _values(rng, 150)
    if op in ("log", "sigmoid", "exp"):
        vals += FN_EDGES + [(int(rng.integers(1, 1 << int(b))), int(f))
                            for b, f in zip(rng.integers(1, 62, 60), rng.integers(-128, 128, 60))]
    premuls = [1.0, -1.0, 0.35355339059327373, -2.0, 0.5]
    cases, want = [], []
    for n, x in enumerate(vals):
        y = vals[int(rng.integers(0, len(vals)))]
        mode = int(n % 2) if op in ("add", "max", "mul") else 0
        premul = premuls[n % len(premuls)]
        if op in ("exp", "sigmoid"):
            if abs(x[0]) < POS and abs(x[0]) > (1 << 40):
                x = (x[0] >> 20, x[1])
            if op == "exp":
                y, mode = (exp_constant(premul, a.p.scale_bits), 0), 0
        try:
            w = _model(op, a, x, y, mode, premul)
        except OverflowError:
            continue
        cases.append((pack_value(*x), pack_value(*y), mode))
        want.append(w)
    assert len(cases) > 100
    unit = {"relu": FixedReluUnit, "sigmoid": FixedSigmoidUnit}.get(op, FIXED_UNITS.get(op))(a.p)
    got = [unpack_value(g) for g in _run(unit, cases)]
    bad = [(unpack_value(c[0]), unpack_value(c[1]), c[2], g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not bad, bad[:4]


def test_pack_round_trip():
    for c, f in [(0, 0), (-1, -3), (POS, 7), (NEG, 127), (12345, -128)]:
        assert unpack_value(pack_value(c, f)) == (c, f)


def test_fixed_unit_latencies_are_the_declared_stages_and_the_schedule_reads_them():
    """Each unit's latency is its declared constant (elaboration refuses a datapath with another
    number of stages), the lane's schedule reads it (+ the issue overhead), and a unit whose depth
    depends on the parameters (the reciprocal's Newton steps) follows them."""
    from dataclasses import replace

    from amaranth.back import rtlil

    from einloom.rtl.lanes.units import ISSUE_OVERHEAD, schedule_latency
    params = PRESETS["int8"]
    want = {"add": 2, "max": 2, "mul": 4, "exp": 7, "recip": 8, "div": 12, "log": 7}
    lat = schedule_latency(params)
    for name, cls in FIXED_UNITS.items():
        unit = cls(params)
        assert unit.latency == want[name] and lat[name] == want[name] + ISSUE_OVERHEAD, name
        rtlil.convert(unit)                          # builds: the stages match the declared latency
    assert FixedSigmoidUnit(params).latency == want["exp"] + want["add"] + want["recip"]
    assert lat["fn:sigmoid"] == want["exp"] + want["add"] + want["recip"] + ISSUE_OVERHEAD
    two = replace(params, recip_nr_steps=2)
    assert schedule_latency(two)["recip"] == lat["recip"] + 3 and schedule_latency(True) == lat


def test_a_unit_with_a_wrong_declared_latency_is_refused():
    from amaranth.back import rtlil

    from einloom.rtl.lanes.fixed_units import FixedAddUnit

    class Wrong(FixedAddUnit):
        STAGES = 2
    with pytest.raises(AssertionError, match="1 stages built, 2 declared"):
        rtlil.convert(Wrong())


@pytest.mark.parametrize("op", ["mul", "div"])
def test_sentinel_times_zero_and_every_scale_pair(op):
    """The product's corner the multipliers do not see: a sentinel times zero (the model's ``1 * 1``
    floored to the scale), each sign, with fraction bits on either side (drop < 0, = 0, > 0)."""
    a = _arith("int8")
    codes = [POS, NEG, 0, 1, -1, 12345, -(1 << 40)]
    fs = [-3, 0, 2, 9]
    cases, want = [], []
    for x in codes:
        for y in codes:
            for fx in fs:
                for fy in fs:
                    try:
                        w = _model(op, a, (x, fx), (y, fy), 0, 1.0)
                    except OverflowError:
                        continue
                    cases.append((pack_value(x, fx), pack_value(y, fy), 0))
                    want.append(w)
    unit = FIXED_UNITS[op](a.p)
    got = [unpack_value(g) for g in _run(unit, cases)]
    bad = [(unpack_value(c[0]), unpack_value(c[1]), g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not bad, bad[:4]
