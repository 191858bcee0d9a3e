"""Evaluate one sweep point: the only module of the sweep that calls the mapper (and the FPGA flow).

:func:`evaluate_point` takes a :class:`~einloom.sweep.space.PointSpec` (plain data) and returns a
plain dict of metrics.  The dict is a pure function of the spec (no timings, no host names), so the
same sweep gives the same results, bit for bit, on every executor; a search is bounded by
``max_families`` for that reason (a ``budget_s`` time budget, when a sweep sets one, is the exception).

Result keys: ``latency_s``, ``energy_pj``, ``energy_J``, ``power_W`` (average: energy / latency),
``area_mm2``, ``macs`` (the multiply-accumulates executed: attention, plus the linear layers in
end-to-end scope), ``tops`` (2 x macs / latency / 1e12), ``tops_per_W``, ``tops_per_mm2``, ``util_2d``,
``util_1d``, ``dram_bytes``, ``buffer_used_bytes``, ``energy_breakdown_pj``, ``mapping`` (the mapping
as data), ``mapping_source`` (``baseline:NAME``, ``file:PATH`` or ``search:OBJECTIVE``), ``search``
(candidates evaluated, families), with FPGA synthesis ``fpga`` (the core generated for the variant
or ``core: refused`` and why; resources, Fmax, the core's cycles and GOP/s) or
``fpga_skipped`` (why not), and with ``simulate:`` ``sim`` (the simulator's latency, utilization,
DRAM bytes, energy, and its latency over the model's).  ``macs`` are the evaluator's executed ones.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Mapping

from einloom.einsum.errors import MappingError
from einloom.sweep.archdoc import build_arch


@functools.lru_cache(maxsize=64)
def _cascade(ref: str) -> Any:
    from einloom.einsum.loader import load_cascade
    return load_cascade(ref)


_ARCHS: dict[str, Any] = {}


def _arch(spec: Mapping[str, Any]) -> Any:
    """The point's architecture, built once per design per worker process."""
    design = spec["design_id"]
    if design not in _ARCHS:
        if len(_ARCHS) > 256:
            _ARCHS.clear()
        _ARCHS[design] = build_arch(spec["arch_document"], spec["arch_label"])
    return _ARCHS[design]


def _workload(data: Mapping[str, Any]) -> Any:
    from einloom.cost_models.workload import Workload
    return Workload(**dict(data))


def _mapping(settings: Mapping[str, Any], cascade: Any, arch: Any, workload: Any) -> tuple[Any, str, dict | None]:
    """(mapping, its source label, search statistics or None) under the sweep's mapping settings."""
    from einloom.mapper.baselines import baseline_mapping, default_baseline
    kind = settings["kind"]
    if kind == "auto":
        match = default_baseline(cascade, workload)          # found by role: any softmax-family variant
        if match is not None:
            try:
                return baseline_mapping(match, cascade, arch, workload), f"baseline:{match}", None
            except MappingError:
                pass                                         # does not fit this design: search instead
        kind = "search"
    if kind == "baseline":
        return baseline_mapping(settings["name"], cascade, arch, workload), f"baseline:{settings['name']}", None
    if kind == "file":
        from einloom.mapper.mapping import load_mapping
        return load_mapping(settings["name"]), f"file:{Path(settings['name']).name}", None
    from einloom.mapper.search import search
    found = search(cascade, arch, workload, objective=settings.get("objective", "edp"),
                   max_families=int(settings.get("max_families", 40)), time_budget_s=settings.get("budget_s"))
    stats = {"evaluated": int(getattr(found, "evaluated", 0)), "families": int(getattr(found, "families", 0))}
    return found.mapping, f"search:{settings.get('objective', 'edp')}", stats


def evaluate_point(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Map and evaluate one point (see the module docstring for the keys of the result)."""
    from einloom.mapper.evaluate import evaluate, evaluate_end_to_end
    cascade, arch, workload = _cascade(spec["variant"]), _arch(spec), _workload(spec["workload"])
    mapping, source, stats = _mapping(spec["mapping"], cascade, arch, workload)
    if spec.get("scope") == "end_to_end":
        data = evaluate_end_to_end(cascade, mapping, arch, workload).to_dict()
        macs = int(data["attention"]["macs"]) + sum(m * k * n for m, k, n in workload.linear_layers().values())
    else:
        data = evaluate(cascade, mapping, arch, workload).to_dict()
        macs = int(data["macs"])                 # executed: empty masked tiles skipped, heads counted once
    latency, energy_pj = float(data["latency_s"]), float(data["energy_pj"])
    area_mm2 = float(data.get("area_um2") or arch.area_report().total_um2) / 1e6
    if not (latency > 0 and energy_pj > 0):
        raise MappingError(f"the evaluator returned latency {latency} s and energy {energy_pj} pJ",
                           hint="a design point must take time and energy; this is an evaluator bug")
    tops = 2 * macs / latency / 1e12
    power = energy_pj * 1e-12 / latency
    result: dict[str, Any] = {
        "latency_s": latency, "energy_pj": energy_pj, "energy_J": energy_pj * 1e-12, "power_W": power,
        "area_mm2": area_mm2, "macs": macs, "tops": tops, "tops_per_W": tops / power,
        "tops_per_mm2": tops / area_mm2 if area_mm2 > 0 else None,
        "util_2d": data.get("util_2d"), "util_1d": data.get("util_1d"), "dram_bytes": data.get("dram_bytes"),
        "buffer_used_bytes": (data.get("buffer") or {}).get("used_bytes"),
        "energy_breakdown_pj": data.get("energy_breakdown_pj") or {},
        "mapping": mapping.to_dict() if hasattr(mapping, "to_dict") else str(mapping),
        "mapping_source": source, "search": stats,
    }
    if spec.get("synth"):
        result.update(synthesize_point(spec, arch))
    if spec.get("simulate"):
        result["sim"] = simulate_point(spec["simulate"], cascade, mapping, arch, workload, latency)
    return result


def simulate_point(settings: Mapping[str, int], cascade: Any, mapping: Any, arch: Any, workload: Any,
                   model_latency_s: float) -> dict[str, Any]:
    """The cycle-level simulator on the point's attention schedule (``instances`` instances and
    ``slice`` outer tile iterations simulated, the rest extrapolated; ``extrapolation`` says whether
    that was exact)."""
    from einloom.mapper.lower import lower
    from einloom.sim.simulator import SimOptions, simulate
    schedule = lower(cascade, mapping, arch, workload)
    run = simulate(schedule, SimOptions(max_instances=settings["instances"], slice_blocks=settings["slice"]))
    return {"latency_s": run.latency_s, "util_2d": run.utilization.get("2d"), "util_1d": run.utilization.get("1d"),
            "dram_bytes": run.dram_bytes, "energy_pj": run.energy_pj, "extrapolation": run.extrapolation,
            "vs_model": run.latency_s / model_latency_s if model_latency_s else None}


def synthesize_point(spec: Mapping[str, Any], arch: Any) -> dict[str, Any]:
    """FPGA resources and Fmax of the core the generator builds for the point's variant, when the
    design is small enough (:func:`einloom.report.hardware.point_hardware`: the fixed-function core,
    the lane core, or ``core: refused`` with the Einsum and the reason; with the core's cycles and GOP/s).

    Only designs with an ``rtl:`` section and at most ``synth.max_pes`` 2D PEs are synthesized; the
    FPGA flow caches its runs by design hash and tool versions, so a design shared by many points
    (several workloads, several variants) is synthesized once.
    """
    settings = spec["synth"]
    if not spec["arch_document"].get("rtl"):
        return {"fpga_skipped": "the architecture has no rtl: section"}
    pes = arch.array_2d.num_pes
    if pes > settings["max_pes"]:
        return {"fpga_skipped": f"{pes} 2D PEs > synth.max_pes {settings['max_pes']}"}
    from einloom.report.hardware import point_hardware
    document = dict(spec["arch_document"])     # the core's name names its Verilog module
    document["name"] = re.sub(r"[^A-Za-z0-9_-]+", "_", str(document.get("name", "design"))).strip("_")
    return point_hardware(_cascade(spec["variant"]), build_arch(document, spec["arch_label"]), settings["target"],
                          part=settings.get("part"), pnr=bool(settings.get("pnr")))
