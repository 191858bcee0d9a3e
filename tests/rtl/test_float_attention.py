"""End-to-end in bf16: the generated attention core with the bf16 number format on Verilator vs the
golden model (``Bf16Format`` in ``einloom.sim.formats.golden_attention``), bit for bit.

One Verilator build of examples/archs/rtl-4x4-bf16.yaml (4x4 array, E = F = 8) and one simulator run
for all cases; each case is asserted separately, including that the scoreboard catches a corrupted
reference and that the compute cycles equal the manifest formula.
"""
from pathlib import Path

import pytest

from einloom.rtl.config import RtlConfig

#: Builds Verilator models and simulates them (minutes on a cold cache): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ARCH = Path(__file__).resolve().parents[2] / "examples" / "archs" / "rtl-4x4-bf16.yaml"

CASES = [
    {"name": "smoke", "P": 4, "M": 5},
    {"name": "m16p16", "P": 16, "M": 16},
    {"name": "m16p16_causal", "P": 16, "M": 16, "causal": True},
    {"name": "ragged", "P": 9, "M": 13},
    {"name": "wide_logits", "P": 6, "M": 18, "sd": 3.0},
    {"name": "backpressure", "P": 10, "M": 11, "backpressure": 0.5, "input_gaps": 0.3},
    {"name": "negative_corrupt", "P": 3, "M": 3, "corrupt": True},
    # causal with P != M, bottom-right aligned: issue 12's 8 x 24, decode, and P > M (queries 0..6 see
    # no key and output bf16 +0; block 0 runs no tile, block 1 mixes empty and non-empty queries)
    {"name": "causal_8x24", "P": 8, "M": 24, "causal": True},
    {"name": "causal_decode", "P": 1, "M": 11, "causal": True},
    {"name": "causal_p_gt_m", "P": 13, "M": 6, "causal": True},
]
for _i, _c in enumerate(CASES):
    _c.setdefault("seed", 2000 + _i)


@pytest.fixture(scope="module")
def suite():
    from einloom.rtl.tb.suite import run_suite
    cfg = RtlConfig.from_yaml(ARCH)
    result = run_suite(cfg, [dict(c) for c in CASES])
    for name, r in sorted(result["tests"].items()):
        print(f"bf16 {name}: P={r.get('P')} M={r.get('M')} cycles={r.get('cycles')} "
              f"expected={r.get('expected_cycles')} passed={r['passed']}")
    return result


@pytest.mark.parametrize("name", [c["name"] for c in CASES])
def test_bf16_attention_case(suite, name):
    r = suite["tests"][name]
    if r["expect_fail"]:
        assert not r["passed"] and any("AV[" in e for e in r["errors"]), r
        return
    assert r["passed"], r["errors"]
    if not r.get("stalls"):
        assert r["cycles"] == r["expected_cycles"]
