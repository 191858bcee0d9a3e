"""The golden order of a pipelined fp32 accumulate (interleaved partial sums) and its use by the format
model and the format interpreter (sim/formats/arith/fp32.py ``fp32_sum_interleaved``, bf16.py ``dot``,
attention.py's split QK)."""
from __future__ import annotations

import numpy as np
import pytest

from einloom.sim.formats import FormatSpecError, make_format
from einloom.sim.formats.arith.fp32 import (bf16_mul, fp32_add, fp32_bits, fp32_sum_interleaved,
                                            interleaved_combine_cycles)
from einloom.sim.formats.attention import golden_attention
from einloom.sim.formats.bf16 import Bf16Format, golden_attention_bf16


def pipeline_model(terms: np.ndarray, lat: int) -> int:
    """A cycle model of the hardware (an adder of latency ``lat`` looping its result back, then the
    partials combined as they leave it), written independently of ``fp32_sum_interleaved``."""
    pipe: list[tuple[int, bool]] = [(0, False)] * lat      # (value, is a partial of this sum), oldest first
    for i, x in enumerate(terms):
        back, live = pipe.pop(0)
        pipe.append((int(fp32_add(back if live and i >= lat else 0, x)), True))
    if lat == 1:
        return pipe[0][0]
    released = [value if live else 0 for value, live in pipe]   # in the order they leave the pipeline
    total = 0
    for value in released:
        total = int(fp32_add(total, value))
    return total


def wide_terms(rng, n: int) -> np.ndarray:
    return fp32_bits(rng.standard_normal(n) * 2.0 ** rng.integers(-12, 12, n))


@pytest.mark.parametrize("lat", [1, 2, 3, 4])
def test_interleaved_order_is_the_pipeline_order(lat):
    rng = np.random.default_rng(lat)
    for n in list(range(1, 3 * lat + 2)) + [16, 33]:
        for _ in range(6):
            terms = wide_terms(rng, n)
            assert int(fp32_sum_interleaved(terms, lat)) == pipeline_model(terms, lat), (n, terms)


def test_latency_one_is_the_sequential_chain_and_others_differ():
    rng = np.random.default_rng(0)
    terms = wide_terms(rng, 16 * 200).reshape(16, 200)          # 200 sums of 16 terms
    acc = np.zeros(200, dtype=np.uint32)
    for t in terms:
        acc = fp32_add(acc, t)
    assert np.array_equal(fp32_sum_interleaved(terms, 1), acc)
    # the order is visible in the bits: a test that compares orders can fail
    for lat in (2, 4):
        assert (fp32_sum_interleaved(terms, lat) != acc).sum() > 20, lat


def test_combine_reads_negative_zero_partial_as_plus_zero():
    # P_0 = -1.5*2**-126 + 2**-126 underflows to -0; +0 + -0 = +0 and the other partials are -0
    terms = np.array([0x80C00000, 0x80000000, 0x00800000, 0x80000000], dtype=np.uint32)
    assert int(fp32_sum_interleaved(terms, 2)) == 0x00000000
    assert pipeline_model(terms, 2) == 0
    assert [interleaved_combine_cycles(lat) for lat in (1, 2, 3, 4)] == [1, 4, 8, 14]


@pytest.mark.parametrize("lat", [2, 4])
def test_format_dot_uses_the_interleaved_order(lat):
    rng = np.random.default_rng(5)
    fmt = Bf16Format(head_dim=16, acc_latency=lat)
    q = fmt.quantize(rng.standard_normal((16, 3)) * 4)
    k = fmt.quantize(rng.standard_normal((5, 16)) * 4)
    products = bf16_mul(k.T.astype(np.uint16)[:, :, None], q.astype(np.uint16)[:, None, :])
    assert np.array_equal(fmt.dot(q, k), fp32_sum_interleaved(products, lat, axis=0).astype(np.int64))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lat", [2, 4])
def test_interpreter_split_is_the_format_model(lat, causal):
    """The golden attention (the cascade run by the format interpreter, QK split into (E1, E0 = L))
    computes each tile's QK exactly as ``Bf16Format.dot`` with ``acc_latency`` L does."""
    rng = np.random.default_rng(10 * lat + causal)
    e, p, m, tile = 16, 6, 11, 4
    fmt = Bf16Format(head_dim=e, acc_latency=lat)
    q = fmt.quantize(rng.standard_normal((e, p)) * 3)
    k = fmt.quantize(rng.standard_normal((e, m)) * 3)
    v = fmt.quantize(rng.standard_normal((e, m)))
    _, trace = golden_attention(fmt, q, k, v, tile_m=tile, causal=causal, trace=True)
    sequential = Bf16Format(head_dim=e)
    differs = 0
    for m1, qk in enumerate(trace.qk):
        keys = k[:, m1 * tile:m1 * tile + qk.shape[0]].T
        want = fmt.dot(q, keys)
        if causal:   # masked entries are absent in the trace: compare the visible ones
            visible = np.arange(m1 * tile, m1 * tile + qk.shape[0])[:, None] <= np.arange(p)[None, :] + m - p
            assert np.array_equal(qk[visible], want[visible])
        else:
            assert np.array_equal(qk, want)
        differs += int((want != sequential.dot(q, keys)).sum())
    assert differs > 0      # the split changed some bits: the interpreter really follows L


def test_golden_attention_bf16_takes_the_latency():
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((8, 8)) * 3, rng.standard_normal((8, 12)) * 3, rng.standard_normal((8, 12))
    a1 = golden_attention_bf16(q, k, v, tile=4, output="fp32")
    a4 = golden_attention_bf16(q, k, v, tile=4, output="fp32", acc_latency=4)
    assert np.allclose(a1, a4, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value,match", [
    (3, "must divide head_dim 16"), (0, "integer 1..4"), (5, "integer 1..4"), (True, "integer 1..4"),
    ("4", "integer 1..4"),
])
def test_acc_latency_spec_errors_name_the_field(value, match):
    with pytest.raises(FormatSpecError, match=match) as info:
        make_format({"kind": "bf16", "acc_latency": value}, head_dim=16)
    assert info.value.field == "acc_latency"


def test_acc_latency_spec_builds_the_format():
    fmt = make_format({"kind": "bf16", "acc_latency": 4}, head_dim=16)
    assert fmt.acc_latency == 4 and fmt.describe()["acc_latency"] == 4
    assert make_format({"kind": "bf16"}, head_dim=16).acc_latency == 1
