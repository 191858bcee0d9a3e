"""End-to-end: the generated attention core on Verilator vs the golden model, bit for bit.

One Verilator build and one simulator run per configuration (module-scoped fixture); each case of
``einloom.rtl.tb.suite.default_cases`` is then asserted separately.  See ``TESTPLAN`` there.
"""
from pathlib import Path

import pytest

from einloom.rtl.config import RtlConfig
from einloom.rtl.tb.suite import default_cases, run_suite

#: Builds Verilator models and simulates them (minutes on a cold cache): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
CONFIGS = ["rtl-4x4-int8.yaml", "rtl-8x8-int8.yaml"]


@pytest.fixture(scope="module", params=CONFIGS)
def suite(request):
    cfg = RtlConfig.from_yaml(ARCHS / request.param)
    result = run_suite(cfg)
    for name, r in sorted(result["tests"].items()):
        print(f"{request.param} {name}: P={r.get('P')} M={r.get('M')} cycles={r.get('cycles')} "
              f"expected={r.get('expected_cycles')} passed={r['passed']}")
    return cfg, result


CASE_NAMES = [c["name"] for c in default_cases(RtlConfig.from_yaml(ARCHS / CONFIGS[0]))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case(suite, name):
    cfg, result = suite
    r = result["tests"][name]
    if r["expect_fail"]:
        assert not r["passed"] and any("AV[" in e for e in r["errors"]), r
        return
    assert r["passed"], r["errors"]
    if not r.get("stalls"):
        assert r["cycles"] == r["expected_cycles"]
    if name == "m128" and (cfg.rows, cfg.cols) == (8, 8):
        # issue 14's target, measured in the RTL: MACs / (PEs x compute cycles) >= 85% at M >= 16 R
        assert r["M"] >= 16 * cfg.rows and r["util_2d"] >= 0.85, r["util_2d"]


def test_non_square_array_with_small_buffers(tmp_path):
    """A 5x2 array (rows != cols) whose buffers hold 7 keys/queries: the last tile's padding keys
    reach index 7 + 5 - 2 = 10, past max_keys, and must still be masked (a key index as wide as
    max_keys wrapped them to valid keys); ragged and causal shapes, cycles == formula."""
    from rtl_archs import shaped
    text = shaped(5, 2, 4, 4, max_keys=7, max_queries=7, name="rtl-5x2-small")
    path = tmp_path / "rtl-5x2-small.yaml"
    path.write_text(text)
    cfg = RtlConfig.from_yaml(path)
    cases = [{"name": "m7p7", "P": 7, "M": 7, "seed": 11}, {"name": "m7p7_causal", "P": 7, "M": 7, "causal": True,
             "seed": 12}, {"name": "m6p3", "P": 3, "M": 6, "seed": 13}]
    result = run_suite(cfg, cases)
    for name in ("m7p7", "m7p7_causal", "m6p3"):
        r = result["tests"][name]
        assert r["passed"], (name, r["errors"])
        assert r["cycles"] == r["expected_cycles"], name
