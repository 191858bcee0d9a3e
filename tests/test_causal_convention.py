"""One meaning of causal (issue 12, item 6): bottom-right aligned everywhere when P != M.

Query p (0-based, of P) sees key m (of M) iff m <= p + M - P (FlashAttention >= 2.1); a query that
sees no key (P > M: the first P - M) outputs 0.  This file runs the same inputs through every layer
that has a causal mask and asserts they agree:

* the library's causal cascades (interpreter, float64) and ``einloom run --check``'s reference;
* the golden models of ``sim/formats`` (float64 reference, fixed point, bf16), which the RTL matches
  bit for bit (tests/rtl run the ``causal_8x24``, ``causal_decode`` and ``causal_p_gt_m`` cases);
* the RTL's tile count per query block (``tiles_per_block``, which the manifest's cycle formula and
  the controller use) against the tiles that the spec's predicate leaves non-empty;
* the cost model's causal pair count (``Workload.attention_macs``).

The 8 queries x 24 keys case is the one issue 12 quotes (max difference 2.22 between the cascades and
the then top-left golden model/RTL); ``test_top_left_would_be_caught`` shows the check is sharp.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import einloom.einsum as einsum_pkg
from einloom.cost_models.workload import load_workload
from einloom.einsum import references
from einloom.rtl.attention import tiles_per_block
from einloom.rtl.config import RtlConfig
from einloom.sim.formats.base import attention_mask, float_attention, golden_attention
from einloom.sim.formats.bf16 import bf16_quantize, golden_attention_bf16

ARCHS = Path(__file__).resolve().parents[1] / "examples" / "archs"
CAUSAL_SPECS = ["causal-1pass", "causal-3pass"]
#: (P, M): issue 12's case, its transpose, decode, square, P > M with a ragged tile, P < M ragged
SHAPES = [(8, 24), (24, 8), (1, 24), (24, 24), (13, 6), (40, 17), (5, 37)]
E = F = 16


def _inputs(p: int, m: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 101 * p + m)
    return {"Q": 1.5 * rng.standard_normal((E, p)), "K": 1.5 * rng.standard_normal((E, m)),
            "V": rng.standard_normal((F, m))}


def _cascade(name: str, x: dict[str, np.ndarray], **extra: int) -> np.ndarray:
    p, m = x["Q"].shape[1], x["K"].shape[1]
    run = einsum_pkg.run_cascade(einsum_pkg.load_cascade(name), x, {"P": p, "M": m, "E": E, "F": F, **extra})
    return run.outputs["AV"]


def test_mask_is_bottom_right():
    """The definition itself: decode sees everything, P = M is the lower triangle, P > M starts empty."""
    assert attention_mask(24, 1, True).all()
    np.testing.assert_array_equal(attention_mask(5, 5, True), np.tril(np.ones((5, 5), bool)).T)
    wide = attention_mask(24, 8, True)                        # [key, query]
    assert [int(wide[:, p].sum()) for p in range(8)] == list(range(17, 25))
    tall = attention_mask(3, 5, True)
    assert [int(tall[:, p].sum()) for p in range(5)] == [0, 0, 1, 2, 3]


@pytest.mark.parametrize("p,m", SHAPES)
@pytest.mark.parametrize("name", CAUSAL_SPECS)
def test_cascade_matches_golden_float_and_reference(name, p, m):
    x = _inputs(p, m)
    got = _cascade(name, x)
    want = float_attention(x["Q"], x["K"], x["V"], scale=1 / math.sqrt(E), causal=True)
    ref = references.causal_attention(x, scale=1 / math.sqrt(E))["AV"]
    assert np.all(np.isfinite(got))
    assert np.abs(got - want).max() < 1e-12
    assert np.abs(ref - want).max() < 1e-12


def test_issue_case_8x24_agrees():
    """The quoted case: before this change the cascades and the golden model differed by 2.22."""
    x = _inputs(8, 24, seed=12)
    diff = np.abs(_cascade("causal-1pass", x) - float_attention(x["Q"], x["K"], x["V"], scale=0.25, causal=True))
    assert diff.max() < 1e-12


def test_top_left_would_be_caught():
    """The top-left mask (PyTorch SDPA's is_causal, the RTL's old one) differs by O(1) at 8 x 24."""
    x = _inputs(8, 24)
    top_left = np.arange(24)[:, None] <= np.arange(8)[None, :]
    scores = np.where(top_left, 0.25 * (x["K"].T @ x["Q"]), -np.inf)
    weights = np.exp(scores - scores.max(axis=0))
    old = x["V"] @ (weights / weights.sum(axis=0))
    assert np.abs(old - _cascade("causal-1pass", x)).max() > 0.5


@pytest.mark.parametrize("p,m", [(24, 8), (13, 6), (40, 17)])
def test_queries_that_see_no_key_output_zero(p, m):
    """P > M: the first P - M queries output exactly 0 in every implementation, the others do not."""
    x = _inputs(p, m)
    outputs = {name: _cascade(name, x) for name in CAUSAL_SPECS}
    outputs["sliding-window"] = _cascade("sliding-window", x, M0=4)
    outputs["sinks-window"] = _cascade("sinks-window", x, M0=4)
    outputs["alibi"] = _cascade("alibi", x, M0=4)                 # issue 15's causal variants
    outputs["softcap"] = _cascade("softcap", x, M0=4)
    outputs["prefix-lm, no prefix"] = _cascade("prefix-lm", x, M0=4, prefix=0)
    outputs["reference"] = references.causal_attention(x, scale=0.25)["AV"]
    outputs["float64 golden"] = float_attention(x["Q"], x["K"], x["V"], scale=0.25, causal=True)
    fmt = RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml").fmt
    codes, trace = golden_attention(fmt, fmt.quantize(x["Q"]), fmt.quantize(x["K"]), fmt.quantize(x["V"]),
                                    tile_m=4, causal=True, trace=True)
    outputs["fixed golden"] = fmt.output_to_float(codes)
    outputs["bf16 golden"] = golden_attention_bf16(x["Q"], x["K"], x["V"], tile=4, causal=True)
    empty = p - m
    for name, av in outputs.items():
        assert np.all(av[:, :empty] == 0), name
        assert np.all(np.abs(av[:, empty:]).max(axis=0) > 0), name
    assert np.all(trace.recip[:empty] == 0)


@pytest.mark.parametrize("p,m", SHAPES)
def test_fixed_golden_within_its_bound_of_the_cascade(p, m):
    """The RTL's number format (int8 preset of rtl-4x4-int8, tile R = 4) against the cascade on the
    same quantized inputs: within the format's documented error bound."""
    fmt = RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml").fmt
    x = _inputs(p, m)
    q, k, v = (fmt.quantize(x[n] / 1.5 if n != "V" else x[n]) for n in ("Q", "K", "V"))
    xq = {"Q": fmt.dequantize(q), "K": fmt.dequantize(k), "V": fmt.dequantize(v)}
    codes, _ = golden_attention(fmt, q, k, v, tile_m=4, causal=True)
    assert fmt.scale_value == 1 / math.sqrt(E)
    diff = np.abs(fmt.output_to_float(codes) - _cascade("causal-1pass", xq))
    assert diff.max() <= fmt.error_bound(float(np.abs(xq["V"]).max()))


@pytest.mark.parametrize("p,m", SHAPES)
def test_bf16_golden_close_to_the_cascade(p, m):
    x = _inputs(p, m)
    xb = {n: bf16_quantize(a).astype(np.float64) for n, a in x.items()}
    got = golden_attention_bf16(x["Q"], x["K"], x["V"], tile=4, causal=True, output="fp32")
    want = _cascade("causal-1pass", xb)
    assert np.abs(got - want).max() / np.abs(want).max() < 2 ** -8


@pytest.mark.parametrize("p,m", SHAPES + [(64, 256), (3, 64), (64, 20)])
@pytest.mark.parametrize("arch", ["rtl-4x4-int8.yaml", "rtl-8x8-int8.yaml"])
def test_rtl_tiles_are_the_predicates_nonempty_tiles(arch, p, m):
    """The RTL processes, per block of C queries, exactly the key tiles (M0 = R) in which the spec's
    predicate leaves a coordinate: the predicate is the one source of the tile count."""
    cfg = RtlConfig.from_yaml(ARCHS / arch)
    r, c = cfg.rows, cfg.cols
    rng = np.random.default_rng(0)
    x = {"Q": rng.standard_normal((E, p)), "K": rng.standard_normal((E, m)), "V": rng.standard_normal((F, m))}
    run = einsum_pkg.run_cascade(einsum_pkg.load_cascade("causal-1pass"), x,
                                 {"P": p, "M": m, "E": E, "F": F, "M0": r}, keep_intermediates=True)
    present = ~np.isnan(run.intermediates["QK"])              # [M1, M0, P]: the predicate holds
    from_spec = [int(present[:, :, b * c:(b + 1) * c].any(axis=(1, 2)).sum()) for b in range(-(-p // c))]
    assert tiles_per_block(cfg, p, m, causal=True) == from_spec


@pytest.mark.parametrize("p,m", [(1, 4096), (4096, 4096), (8, 24), (24, 8), (1000, 3000), (3000, 1000)])
def test_attention_macs_count_the_visible_pairs(p, m):
    w = dataclasses.replace(load_workload("llama3-8b-decode"), seq_len_q=p, seq_len_kv=m, causal=True)
    pairs = int(attention_mask(m, p, True).sum())
    assert w.attention_macs() == w.batch * w.heads * pairs * (w.head_dim_e + w.head_dim_f)
