"""``einloom verify --shape`` past a core's query/key limit: the hint names what raises that limit."""
from __future__ import annotations

from pathlib import Path

from hostile import run_cli

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "examples" / "archs" / "rtl-4x4-int8.yaml"
SMALL = ROOT / "examples" / "workloads" / "rtl-small.yaml"


def test_counters_sized_from_a_workload_name_the_workload():
    """rtl-small (M = 64) sizes the key-tile counter for 64 keys; the buffers hold 256: raising
    rtl.max_keys would change nothing, so the hint says to size the schedule instead."""
    status, out, err = run_cli(["verify", "fusemax-1pass", "--arch", ARCH, "--workload", SMALL, "--shape", "64x128"])
    assert status == 2 and "Traceback" not in err
    assert "--shape" in err and "(64 queries, 64 keys)" in err and "drop --workload" in err
    assert "rtl.max_" not in err


def test_buffers_name_the_arch_limits():
    status, out, err = run_cli(["verify", "fusemax-1pass", "--arch", ARCH, "--shape", "64x512"])
    assert status == 2 and "(64 queries, 256 keys)" in err and "rtl.max_keys" in err
