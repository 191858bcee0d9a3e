"""Per-component cocotb tests (exp, reciprocal, output and rescale units, PE, 2D array) against the
golden model."""
from pathlib import Path

import pytest

from einloom.rtl.config import RtlConfig
from einloom.rtl.generate import to_verilog
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.pe import ProcessingElement
from einloom.rtl.tb import runner
from einloom.rtl.units import units_for

#: Builds Verilator models and simulates them (minutes on a cold cache): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

ARCH = Path(__file__).resolve().parents[2] / "examples" / "archs" / "rtl-4x4-int8.yaml"


def build_unit(kind: str):
    cfg = RtlConfig.from_yaml(ARCH)
    units = cfg.units()
    component = {"exp": units.exp_unit, "recip": units.recip_unit, "output": units.output_unit,
                 "rescale": lambda: units.rescale_unit("acc"),
                 "pe": lambda: ProcessingElement(units),
                 "array": lambda: SystolicArray(units, cfg.rows, cfg.cols)}[kind]()
    top = f"unit_{kind}"
    build_dir = runner.build(to_verilog(component, top), top, quiet=True)
    return cfg, component, top, build_dir


@pytest.mark.parametrize("kind", ["exp", "recip", "output", "rescale", "pe", "array"])
def test_unit(kind):
    cfg, component, top, build_dir = build_unit(kind)
    if kind in ("exp", "recip", "output", "rescale"):
        assert component.latency == getattr(units_for(cfg.fmt), f"{kind}_latency")
    out = runner.run_tests(build_dir, top, "einloom.rtl.tb.units_tb", quiet=True,
                           spec={"unit": kind, "config": cfg.to_dict(), "count": 1500})
    assert out["num_tests"] == 1 and out["num_failed"] == 0, open(Path(out["xml"]).parent / "sim.log").read()[-3000:]
