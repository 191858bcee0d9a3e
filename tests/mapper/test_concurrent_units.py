"""The mapper's model of an array whose units run different Einsums at once (``array_1d.concurrent_units``,
the generated core's lanes), checked against the core's cycles (``sim/rtl_core``, = RTL).

Without the flag an interleaved group's 1D time is the sum of its Einsums' (FuseMax's 1D PE, the paper
figures); with it, the busiest unit's, bounded below by the hand-off chain 2D -> 1D -> 2D per iteration
(the core's period when its lanes' latencies, not its 2D work, set it: bf16).  The model must not be
optimistic against the core it ranks mappings for.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.einsum.errors import ArchError
from einloom.mapper.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ROOT / "examples" / "archs"
SMALL = ROOT / "examples" / "workloads" / "rtl-small.yaml"


def _model(spec: str, arch_path: Path, seq_len: int = 64, e: int | None = None) -> float:
    from einloom.commands.schedule_args import rtl_core_mapping
    arch = load_arch(arch_path)
    cascade = load_cascade(spec)
    workload = load_workload(str(SMALL), seq_len=seq_len)
    if e:
        workload = workload.with_ranks({"E": e, "F": e})
    return evaluate(cascade, rtl_core_mapping(cascade, arch, required=True), arch, workload).latency_cycles


def _without_flag(tmp_path: Path, name: str) -> Path:
    text = (ARCHS / f"{name}.yaml").read_text()
    lines = text.splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("  concurrent_units: true"))
    del lines[i:i + 2]                      # the flag and its comment's continuation line
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(lines))
    assert "concurrent_units" not in path.read_text()
    return path


def test_the_flag_is_read_and_defaults_to_off():
    assert load_arch(ARCHS / "rtl-4x4-int8.yaml").array_1d.concurrent_units is True
    fusemax = load_arch("fusemax-cloud")
    assert fusemax.array_1d.concurrent_units is False and fusemax.array_2d.concurrent_units is False


def test_a_bad_flag_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((ARCHS / "rtl-4x4-int8.yaml").read_text().replace("concurrent_units: true", "concurrent_units: 2"))
    with pytest.raises(ArchError) as err:
        load_arch(path)
    assert "array_1d.concurrent_units" in str(err.value) and "true or false" in str(err.value)


def _core_cycles(arch: str, seq_len: int = 64, causal: bool = False) -> int:
    """The generated core's cycles at M = P = ``seq_len`` (``sim/rtl_core.run_core``, = RTL)."""
    from einloom.rtl.attention import core_params
    from einloom.rtl.config import RtlConfig
    from einloom.sim.rtl_core import run_core
    return run_core(core_params(RtlConfig.from_yaml(str(ARCHS / f"{arch}.yaml"))), seq_len, seq_len, causal).cycles


@pytest.mark.parametrize("spec,arch", [("fusemax-1pass", "rtl-4x4-int8"), ("fusemax-1pass", "rtl-8x8-int8"),
                                       ("causal-1pass", "rtl-8x8-int8")])
def test_the_core_mapping_is_modelled_near_the_core_and_not_below(spec, arch):
    core = _core_cycles(arch, causal=spec.startswith("causal"))
    assert core > 1000                      # the core's cycles at M = P = 64 (8,265 / 2,129 / 1,249 at 6be32bb)
    model = _model(spec, ARCHS / f"{arch}.yaml")
    assert core <= model <= 1.3 * core


def test_without_the_flag_the_lanes_are_summed(tmp_path):
    """The old model (each Einsum's 1D work after the other's): 12,832 for the core's 8,265 cycles."""
    assert _model("fusemax-1pass", _without_flag(tmp_path, "rtl-4x4-int8")) == pytest.approx(12832, abs=1)
    assert _model("fusemax-1pass", ARCHS / "rtl-4x4-int8.yaml") == pytest.approx(8282, abs=1)


def test_the_hand_off_chain_bounds_a_latency_bound_core(monkeypatch):
    """bf16 4x4, E = F = 8: the core's period (37) is set by its lanes' latencies (exp 18, the fp32
    accumulate), not its 2D work (16 cycles a tile): without the hand-off bound the busiest-unit model
    would be about half the core's cycles (2,448 at M = P = 32, from the core's simulator)."""
    core = _core_cycles("rtl-4x4-bf16", 32)
    model = _model("fusemax-1pass", ARCHS / "rtl-4x4-bf16.yaml", seq_len=32, e=8)
    assert core <= model <= 1.15 * core
    import einloom.mapper.evaluate as ev
    monkeypatch.setattr(ev, "_hand_off_bound", lambda fam, comp, g: fam.zeros())
    assert _model("fusemax-1pass", ARCHS / "rtl-4x4-bf16.yaml", seq_len=32, e=8) < 0.6 * core
