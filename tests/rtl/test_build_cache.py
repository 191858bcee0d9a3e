"""rtl/tb/runner.build: the Verilator model cache is safe under concurrent builds of one design (a
second process waits for the first's build and reuses it; two at once deleted each other's files)."""
from __future__ import annotations

import subprocess
import sys

import pytest

#: builds a one-register design into the cache given as argv[1]; prints the build directory
_BUILD = """
import sys
from pathlib import Path
from einloom.rtl.tb.runner import build
verilog = "module tiny(input wire clk, input wire d, output reg q);\\n  always @(posedge clk) q <= d;\\nendmodule\\n"
print(build(verilog, "tiny", cache=Path(sys.argv[1]), quiet=True))
"""


@pytest.mark.slow
def test_concurrent_builds_of_one_design_share_one_model(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    dirs = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(dirs) == 1
    (build_dir,) = dirs
    assert (tmp_path / build_dir.rsplit("/", 1)[-1] / "einloom-build-ok").exists()
