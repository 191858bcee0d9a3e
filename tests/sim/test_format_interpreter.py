"""The golden model as the cascade interpreter in a number format (einloom.sim.formats.interpret).

* ``golden_attention`` (the RTL-order cascade run by the format interpreter) is bit-identical to the
  hand-coded hardware loop it replaced (``golden_attention_loop``) for every configuration of the RTL
  tests (int8 4x4 and 8x8, bf16 4x4; plain and causal; ragged shapes), on many random inputs;
* the format interpreter runs other library cascades within each format's error of float64;
* the primitives round as documented, and the reduction order decides the bits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from einloom.einsum.interpret import run_cascade
from einloom.einsum.loader import load_cascade, parse_cascade_text
from einloom.rtl.config import RtlConfig
from einloom.sim.formats import FixedFormat, FixedParams, golden_attention
from einloom.sim.formats import bf16 as B
from einloom.sim.formats.arith import arith_for
from einloom.sim.formats.arith.fixed import FixedArith
from einloom.sim.formats.arith.float import Fp32Arith
from einloom.sim.formats.base import attention_mask, golden_attention_loop
from einloom.sim.formats.fixed import PRESETS
from einloom.sim.formats.interpret import run_in_format

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
RTL_ARCHS = ["rtl-4x4-int8", "rtl-8x8-int8", "rtl-4x4-bf16"]
# (P, M): square, ragged last tile, P > M (queries that see no key), decode, M < one tile, long
SHAPES = [(16, 16), (5, 9), (12, 7), (1, 13), (9, 3), (20, 33)]
SEEDS = range(4)


def _draw(fmt, rng, e, f, p, m, sd):
    return (fmt.quantize(rng.normal(0, sd, (e, p))), fmt.quantize(rng.normal(0, sd, (e, m))),
            fmt.quantize(rng.normal(0, 1, (f, m))))


def _assert_same(fmt, q, k, v, tile, causal):
    new, tn = golden_attention(fmt, q, k, v, tile_m=tile, causal=causal, trace=True)
    old, to = golden_attention_loop(fmt, q, k, v, tile_m=tile, causal=causal, trace=True)
    np.testing.assert_array_equal(new, old)
    valid = attention_mask(k.shape[1], q.shape[1], causal)
    seen = valid.any(axis=0)
    np.testing.assert_array_equal(tn.recip, to.recip)
    assert len(tn.rd) == len(to.rd)
    for m1, (a, b) in enumerate(zip(tn.qk, to.qk)):           # scores of the unmasked keys
        np.testing.assert_array_equal(np.where(valid[m1 * tile:m1 * tile + len(a)], a, 0),
                                      np.where(valid[m1 * tile:m1 * tile + len(b)], b, 0))
    for name in ("rm", "rd", "rnv"):           # running state of the queries that see a key
        for a, b in zip(getattr(tn, name), getattr(to, name)):
            np.testing.assert_array_equal(a[..., seen], b[..., seen], err_msg=name)


@pytest.mark.parametrize("arch", RTL_ARCHS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("p,m", SHAPES)
def test_golden_attention_bit_identical_to_the_hardware_loop(arch, causal, p, m):
    cfg = RtlConfig.from_yaml(ARCHS / f"{arch}.yaml")
    for seed in SEEDS:
        rng = np.random.default_rng(seed * 1000 + p * 37 + m)
        sd = 1.0 if seed % 2 == 0 else 3.0                     # sd 3: deep exp underflow, big maxima
        q, k, v = _draw(cfg.fmt, rng, cfg.head_dim, cfg.value_dim, p, m, sd)
        _assert_same(cfg.fmt, q, k, v, cfg.rows, causal)


@pytest.mark.parametrize("fmt", [FixedFormat(PRESETS["int16"], head_dim=8), FixedFormat(head_dim=8, scale=False),
                                 FixedFormat(FixedParams(recip_nr_steps=0, exp_frac_bits=5), head_dim=8),
                                 B.Bf16Format(head_dim=8, output="fp32"), B.Bf16Format(head_dim=8, scale=False)],
                         ids=["int16", "int8-noscale", "int8-coarse", "bf16-fp32out", "bf16-noscale"])
def test_golden_attention_bit_identical_other_formats(fmt):
    for k, (p, m) in enumerate(SHAPES):
        for causal in (False, True):
            rng = np.random.default_rng(k)
            q, kk, v = _draw(fmt, rng, 8, 8, p, m, 2.0)
            _assert_same(fmt, q, kk, v, 4, causal)


def test_a_changed_op_order_is_not_bit_identical():
    # the comparison can fail: the library's fusemax-1pass scales the scores before the max (not in the
    # exp unit) and sums a tile's probabilities in ascending order, which changes fp32 bits
    fmt = B.Bf16Format(head_dim=8, output="fp32")
    rng = np.random.default_rng(5)
    q, k, v = _draw(fmt, rng, 8, 8, 16, 16, 2.0)
    old, _ = golden_attention_loop(fmt, q, k, v, tile_m=4)
    lib = run_in_format(load_cascade("fusemax-1pass"), arith_for(fmt), {"Q": q, "K": k, "V": v}, {"M0": 4})
    assert not np.array_equal(lib.codes["AV"], old)
    assert np.abs(fmt.output_to_float(lib.codes["AV"]) - fmt.output_to_float(old)).max() < 1e-5


# ---- other cascades against the float64 interpreter ---------------------------------------------

FORMATS = {"int8": lambda: FixedFormat(PRESETS["int8"], head_dim=8),
           "int16": lambda: FixedFormat(PRESETS["int16"], head_dim=8),
           "bf16": lambda: B.Bf16Format(head_dim=8)}
VARIANTS = [("fusemax-1pass", {"M0": 4}), ("softmax-3pass", {}), ("causal-1pass", {"M0": 4}),
            ("causal-1pass", {"M0": 4, "P": 24}), ("sliding-window", {"M0": 4, "window": 6}),
            ("gqa", {"M0": 4, "J": 2, "G": 2}), ("linear", {}), ("sigmoid", {})]


def format_error(name: str, extra: dict, fmt, seed: int = 1) -> tuple[float, float]:
    """(max |format - float64|, max |float64|) of ``name``'s output on random quantized inputs."""
    cascade = load_cascade(name)
    ranks = {"P": 12, "M": 20, "E": 8, "F": 8, **extra}
    rng = np.random.default_rng(seed)
    shapes = {n: tuple(ranks[r] for r in cascade.tensors[n].ranks) for n in cascade.inputs}
    codes = {n: fmt.quantize(rng.normal(0, 1, s)) for n, s in shapes.items()}
    out = cascade.outputs[0]
    ref = run_cascade(cascade, {n: fmt.dequantize(c) for n, c in codes.items()}, ranks).outputs[out]
    got = fmt.output_to_float(run_in_format(cascade, arith_for(fmt), codes, ranks).codes[out])
    assert np.all(np.isfinite(ref)) and np.all(np.isfinite(got))
    return float(np.abs(got - ref).max()), float(np.abs(ref).max())


def error_bound(fmt, ref_max: float) -> float:
    """The test's bound per format: fixed point, :meth:`FixedFormat.error_bound` at ``max|ref|``; bf16,
    ``2**-7 * max|ref|`` (output rounding 2**-9, probabilities entering the 2D array as bf16 2**-9,
    fp32 terms ~1e-7, with a 2x margin)."""
    if fmt.kind == "fixed":
        return fmt.error_bound(ref_max)
    return 2.0 ** -7 * ref_max


@pytest.mark.parametrize("fmt_name", list(FORMATS))
@pytest.mark.parametrize("name,extra", VARIANTS, ids=[f"{n}-{'-'.join(map(str, e.values()))}" for n, e in VARIANTS])
def test_variants_within_the_format_error_of_float64(fmt_name, name, extra):
    fmt = FORMATS[fmt_name]()
    err, ref_max = format_error(name, extra, fmt)
    assert ref_max > 0.1
    assert err <= error_bound(fmt, ref_max), (err, error_bound(fmt, ref_max))
    assert err > 0                                   # the format's arithmetic really ran


def test_variant_error_bound_can_fail():
    coarse = FixedFormat(FixedParams(exp_frac_bits=2, prob_bits=6, output_frac_bits=5), head_dim=8)
    err, ref_max = format_error("softmax-3pass", {}, coarse)
    assert err > error_bound(FORMATS["int8"](), ref_max)


# ---- primitives and order -------------------------------------------------------------------------

def test_fixed_primitives_round_as_documented():
    fmt = FixedFormat(head_dim=16)
    a = FixedArith(fmt)
    x = a.from_input(np.array([7, -7]))                       # 7/16, -7/16 at frac 4
    prob = np.array([(3 << 13, 15)], dtype=a.dtype)           # 0.75 at frac 15
    prod = a.mul(x, prob)                                     # exact 21/64 -> floor at frac 15
    assert list(prod["f"]) == [15, 15]
    np.testing.assert_array_equal(prod["c"], (np.array([7, -7]) * (3 << 13)) >> 4)
    mac = a.mac(a.fill((2,)), x, x)                           # exact at frac 8
    assert list(mac["c"]) == [49, 49] and list(mac["f"]) == [8, 8]
    d = np.array([-300, -5, 0], dtype=np.int64)               # QK - RM codes at 2*frac_bits
    qk = np.zeros(3, dtype=a.dtype)
    qk["c"], qk["f"] = d, 8
    np.testing.assert_array_equal(a.exp(qk, premul=fmt.scale_value)["c"], fmt.exp_diff(d, np.zeros(3, np.int64)))
    ninf = a.const(-np.inf)
    assert a.exp(a.sub(ninf, qk[:1]))["c"][0] == 0            # exp(-inf - x) = 0
    assert a.sub(ninf, ninf)["c"] == ninf["c"]                 # masked - masked stays masked
    rd = np.array([(40000, 15)], dtype=a.dtype)
    r = a.recip(rd)
    y, s = fmt.split_recip(fmt.reciprocal(np.array([40000])))
    assert r["c"][0] == y[0] and r["f"][0] == fmt.p.recip_bits + s[0] - 15
    assert abs(a.to_float(r)[0] - 2**15 / 40000) < 1e-4


def test_fp32_primitives_round_as_documented():
    a = Fp32Arith()
    x = a.from_float(np.array([1.0 + 2**-12, -3.3]))
    y = a.from_float(np.array([0.3, 7.1]))
    acc = a.from_float(np.array([1e-3, 2.0]))
    np.testing.assert_array_equal(a.mac(acc, x, y),
                                  B.fp32_add(acc, B.bf16_mul(B.fp32_to_bf16(x), B.fp32_to_bf16(y))))
    np.testing.assert_array_equal(a.div(x, y), B.fp32_mul(x, B.fp32_recip(y)))
    np.testing.assert_array_equal(a.exp(x, premul=0.25), B.fp32_exp(B.fp32_mul(x, B.fp32_bits(0.25))))
    assert a.to_output(a.from_float(np.array([1.0 + 2**-12])))[0] == 0x3F80   # RNE to bf16


ORDER_SPEC = """\
name: order-probe
ranks: {A: 3, B: 5, P: 4}
tensors: {X: [A, B, P], S: [P]}
inputs: [X]
outputs: [S]
einsums:
  - S[p] = sum[a, b] X[a, b, p]
"""


def test_the_loop_order_fixes_the_bits():
    cascade = parse_cascade_text(ORDER_SPEC, "order-probe")
    a = Fp32Arith(output="fp32")
    rng = np.random.default_rng(0)
    # terms 2**0 .. 2**28 apart: an fp32 sum drops low bits, and which ones depends on the order
    x = rng.normal(0, 1, (3, 5, 64)) * np.exp2(rng.permutation(15).reshape(3, 5, 1) * 2.0)
    codes = B.bf16_bits(x).astype(np.int64)
    ab = run_in_format(cascade, a, {"X": codes}, loop_order=("A", "B")).codes["S"]
    ba = run_in_format(cascade, a, {"X": codes}, loop_order=("B", "A")).codes["S"]
    wide = a.from_input(codes)
    for order, got in ((("A", "B"), ab), (("B", "A"), ba)):
        acc = np.zeros(64, dtype=np.uint32)
        pairs = [(i, j) for i in range(3) for j in range(5)] if order == ("A", "B") else \
            [(i, j) for j in range(5) for i in range(3)]
        for i, j in pairs:                                   # the documented sequential chain
            acc = B.fp32_add(acc, wide[i, j])
        np.testing.assert_array_equal(got, acc.astype(np.int64))
    assert not np.array_equal(ab, ba)


def test_absent_outputs_and_final_iterates():
    # causal with P > M: the cascade's where(RD > 0, ..., 0) gives 0 for queries that see no key, and
    # the format run agrees with float64 there exactly; the final iterate RNV[M1] is what AV reads
    cascade = load_cascade("causal-1pass")
    fmt = B.Bf16Format(head_dim=8)
    rng = np.random.default_rng(2)
    codes = {"Q": fmt.quantize(rng.normal(size=(8, 10))), "K": fmt.quantize(rng.normal(size=(8, 6))),
             "V": fmt.quantize(rng.normal(size=(8, 6)))}
    res = run_in_format(cascade, arith_for(fmt), codes, {"M0": 4}, keep_intermediates=True)
    assert np.all(res.codes["AV"][:, :4] == 0) and np.all(res.codes["AV"][:, 4:] != 0)
    assert res.intermediates["RNV"].shape[0] == 3            # M1 + 1 iterates of 2 tiles


@pytest.mark.parametrize("arch", RTL_ARCHS)
def test_golden_attention_bit_identical_random_shapes(arch):
    """20 random (P, M, causal, spread) draws per RTL configuration, shapes up to 3 tiles past M."""
    cfg = RtlConfig.from_yaml(ARCHS / f"{arch}.yaml")
    rng = np.random.default_rng(sum(map(ord, arch)))
    for _ in range(20):
        p, m = int(rng.integers(1, 24)), int(rng.integers(1, 3 * cfg.rows + 3))
        q, k, v = _draw(cfg.fmt, rng, cfg.head_dim, cfg.value_dim, p, m, float(rng.choice([0.5, 1.0, 4.0])))
        _assert_same(cfg.fmt, q, k, v, cfg.rows, bool(rng.integers(2)))


def test_cli_sim_functional_in_a_format_runs_any_cascade(capsys):
    # softmax-3pass is not the RTL's 1-pass cascade: a format run goes through the format interpreter in
    # the schedule's loop order (it used to be refused for anything but Q/K/V 1-pass attention)
    import json

    from einloom.cli import main
    rc = main(["sim", "softmax-3pass", "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "128",
               "--batch", "1", "--json", "--functional", "int8"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)["functional"]
    assert out["format"] == "int8" and out["outputs"] == 64 * 128
    assert 0 < out["max_abs_error"] < 5e-3
    assert set(out["loop_order"]) >= {"P", "M", "E"}
