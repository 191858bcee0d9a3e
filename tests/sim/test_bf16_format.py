"""The bf16 NumberFormat: registration, spec errors, and its attention through the shared skeleton."""
from pathlib import Path
import numpy as np
import pytest

from einloom.einsum.errors import ArchError
from einloom.sim.formats import FormatSpecError, golden_attention, make_format
from einloom.sim.formats import bf16 as B


def test_make_format_builds_bf16_with_the_scale_in_fp32():
    fmt = make_format({"kind": "bf16"}, head_dim=8)
    assert isinstance(fmt, B.Bf16Format)
    assert (fmt.input_bits, fmt.output_bits) == (16, 16)
    assert fmt.scale_bits == int(B.fp32_bits(1 / np.sqrt(8)))
    assert make_format({"kind": "bf16", "output": "fp32"}, head_dim=8).output_bits == 32
    assert make_format({"kind": "bf16"}, head_dim=8, scale=False).scale_bits == B.FP32_ONE


@pytest.mark.parametrize("spec, field, text", [
    ({"kind": "bf16", "acc_bits": 32}, "acc_bits", "unknown bf16 parameter"),
    ({"kind": "bf16", "output": "fp16"}, "output", "must be bf16 or fp32"),
    ({"kind": "bf16", "scale_value": -1}, "scale_value", "positive number"),
])
def test_bad_specs_name_the_field(spec, field, text):
    with pytest.raises(FormatSpecError) as info:
        make_format(spec, head_dim=8)
    assert info.value.field == field and text in info.value.message


def test_arch_yaml_error_points_at_the_line(tmp_path):
    from einloom.rtl.config import RtlConfig
    path = tmp_path / "a.yaml"
    text = (Path(__file__).resolve().parents[2] / "examples" / "archs" / "rtl-4x4-bf16.yaml").read_text()
    text = text.replace("number_format: {kind: bf16, acc_latency: 4}", "number_format: {kind: bf16, acc_latency: 4, output: fp8}")
    path.write_text(text)
    line = text[:text.index("output: fp8")].count("\n") + 1
    with pytest.raises(ArchError) as info:
        RtlConfig.from_yaml(path)
    assert "fp32" in str(info.value) and f":{line}" in str(info.value.location)


def test_primitives_are_the_unit_models():
    fmt = B.Bf16Format(head_dim=4)
    x = B.fp32_bits(np.array([-3.0, -1.0, 0.0], dtype=np.float32)).astype(np.int64)
    m = np.full(3, int(B.fp32_bits(np.float32(0.5))), dtype=np.int64)
    want = B.fp32_exp(B.fp32_mul(B.fp32_sub(x, m), np.uint32(fmt.scale_bits)))
    np.testing.assert_array_equal(fmt.exp_diff(x, m), want)
    psum = B.fp32_bits(np.float32(1.25)).astype(np.int64)
    sln = B.fp32_bits(np.float32(0.3)).astype(np.int64)         # not a bf16 value: rounded on entry
    v = B.bf16_bits(np.float32(2.0)).astype(np.int64)
    got = B.fp32_value(np.uint32(fmt.column_mac(psum, sln, v)))
    assert got == np.float32(1.25) + 2 * B.bf16_quantize(np.float32(0.3))


def test_golden_attention_bf16_is_the_skeleton_with_bf16():
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=(8, 6)), rng.normal(size=(8, 10)), rng.normal(size=(8, 10))
    fmt = B.Bf16Format(head_dim=8)
    codes, trace = golden_attention(fmt, fmt.quantize(q), fmt.quantize(k), fmt.quantize(v), tile_m=4,
                                    causal=True, trace=True)
    np.testing.assert_array_equal(B.golden_attention_bf16(q, k, v, tile=4, causal=True),
                                  fmt.output_to_float(codes).astype(np.float32))
    assert len(trace.rm) == 3                                  # ragged: 10 keys in tiles of 4
    # the running denominator is the sum of exp over keys seen so far: RD >= 1 after tile 0
    assert np.all(B.fp32_value(trace.rd[0].astype(np.uint32)) >= 1.0)
