"""End-to-end: the generated attention core on Verilator vs the golden model, bit for bit.

One Verilator build and one simulator run per configuration (module-scoped fixture); each case of
``einloom.rtl.tb.suite.default_cases`` is then asserted separately.  See ``TESTPLAN`` there.
"""
from pathlib import Path

import pytest

from einloom.rtl.config import RtlConfig
from einloom.rtl.tb.suite import default_cases, run_suite

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
