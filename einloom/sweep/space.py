"""From a sweep to its points: sample the designs, cross them with configurations and workloads, prune.

Designs (parameter values) are sampled once and shared by every configuration and workload, so the
same design is compared across workloads.  Sampling is deterministic: ``grid`` enumerates the
parameters' values in file order; ``random`` and ``lhs`` (Latin hypercube: each parameter's range cut
into ``samples`` equal strata, one sample per stratum, strata paired by independent permutations) draw
from ``numpy.random.default_rng(seed)``.  Duplicate designs (possible when values are drawn from a
list) are dropped, first kept.

Each point is a plain dict (:class:`PointSpec` documents its keys) that pickles cheaply to any worker,
and carries its ``key``: a SHA-256 over (cascade text, architecture document, mapping settings,
workload, scope, synthesis settings, einloom version; the cascade by the SHA-256 of its text), the identity under which the store keeps its
result.  Constraints are evaluated here, before any evaluation: ``area_mm2`` (the area roll-up of
:mod:`einloom.cost_models.area`), ``peak_power_W`` (:func:`peak_power_w`) and ``working_set_fits``
(:func:`working_set_bytes` at most the global buffer); a point that breaks one is marked pruned with
the reason.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TypedDict

import numpy as np

import einloom
from einloom.einsum.errors import EinloomError
from einloom.sweep.archdoc import build_arch, canonical_json, document_hash, with_overrides
from einloom.sweep.spec import Parameter, Sweep, format_bytes


class PointSpec(TypedDict, total=False):
    """What a worker needs to evaluate one point (all plain data)."""

    key: str                       # content hash: the point's identity in the store
    index: int                     # position in the sweep's enumeration (design-major)
    design: dict[str, Any]         # parameter name -> value
    design_id: str                 # short hash of the architecture document
    arch_label: str
    arch_document: dict[str, Any]
    variant: str                   # cascade reference (library name or file)
    workload_model: str
    workload_label: str
    seq_len: int
    workload: dict[str, Any]       # Workload fields at this sequence length
    scope: str
    mapping: dict[str, Any]        # MappingSettings.to_dict()
    synth: dict[str, Any] | None
    simulate: dict[str, int] | None  # cycle-level simulation settings (part of the key)
    static: dict[str, Any]         # area_mm2, peak_power_W, working_set_bytes, buffer_bytes
    pruned: str | None             # why a constraint pruned it (None: evaluate it)
    timeout_s: float | None        # fail the point after this long (not part of the key)
    invalid: str | None            # why the design is not a valid architecture


@dataclass
class SweepPoints:
    """The enumerated points, and how many designs sampling produced and deduplication dropped."""

    points: list[PointSpec]
    designs: int
    duplicates_dropped: int = 0
    parameter_names: list[str] = field(default_factory=list)

    @property
    def to_evaluate(self) -> list[PointSpec]:
        return [p for p in self.points if not p.get("pruned") and not p.get("invalid")]


def sample_designs(sweep: Sweep) -> tuple[list[dict[str, Any]], int]:
    """Parameter-value dicts, one per design, in a deterministic order; and the duplicates dropped."""
    params = sweep.parameters
    if not params:
        return [{}], 0
    if sweep.sampling == "grid":
        return [dict(zip((p.name for p in params), combo)) for combo in itertools.product(*(p.values for p in params))], 0
    rng = np.random.default_rng(sweep.seed)
    n = sweep.samples
    columns = []
    for p in params:
        if sweep.sampling == "lhs":
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        columns.append([_value_at(p, float(x)) for x in u])
    designs, seen, dropped = [], set(), 0
    for row in zip(*columns):
        design = dict(zip((p.name for p in params), row))
        marker = canonical_json(design)
        if marker in seen:
            dropped += 1
            continue
        seen.add(marker)
        designs.append(design)
    return designs, dropped


def _value_at(p: Parameter, u: float) -> Any:
    """The value at quantile ``u`` in [0, 1) of parameter ``p`` (a list: by index; a range: linear/log)."""
    if p.values:
        return p.values[min(int(u * len(p.values)), len(p.values) - 1)]
    assert p.low is not None and p.high is not None
    if p.log:
        x = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
    else:
        x = p.low + u * (p.high - p.low)
    if p.integer:
        return int(round(x))
    return float(f"{x:.6g}")


def design_label(base: str, design: Mapping[str, Any], parameters: Sequence[Parameter]) -> str:
    """``fusemax-cloud[array=128, buffer=16 MiB]``: byte-valued fields (paths ending in ``_bytes``) in KiB/MiB."""
    if not design:
        return base
    parts = []
    for p in parameters:
        value = design[p.name]
        if isinstance(value, int) and any(path.endswith("_bytes") for path in p.paths):
            value = format_bytes(value)
        parts.append(f"{p.name}={value}")
    return f"{base}[{', '.join(parts)}]"


def enumerate_points(sweep: Sweep) -> SweepPoints:
    """Every point of ``sweep`` (designs x configurations x workloads), keyed and checked against constraints."""
    from einloom.cost_models.workload import load_workload
    from einloom.einsum.loader import load_cascade
    designs, dropped = sample_designs(sweep)
    cascades = {v: load_cascade(v) for v in sweep.variants}
    digests = {v: hashlib.sha256(_cascade_text(c, v).encode()).hexdigest() for v, c in cascades.items()}
    workloads = {w: load_workload(w.model).with_seq_len(w.seq_len) for w in sweep.workloads}
    mappings = {}
    for config in sweep.configurations:
        mapping = config.mapping.to_dict()
        if mapping.get("kind") == "file":
            mapping["text"] = Path(mapping["name"]).read_text()
        mappings[config.name] = mapping
    synth = None if sweep.synth is None else vars(sweep.synth).copy()
    points: list[PointSpec] = []
    index = 0
    sets: dict[tuple[str, Any, int], int] = {}

    def working_sets(variant: str, wpoint: Any, bits: int) -> int:
        key = (variant, wpoint, bits)
        if key not in sets:
            sets[key] = working_set_bytes(cascades[variant], workloads[wpoint], bits)
        return sets[key]

    for design in designs:
        for config in sweep.configurations:
            base_name = str(config.arch_document.get("name", Path(config.arch_file).stem))
            label = design_label(base_name, design, sweep.parameters)
            document = with_overrides(config.arch_document, {path: design[p.name] for p in sweep.parameters
                                                             for path in p.paths})
            document["name"] = label
            invalid, arch = None, None
            try:
                arch = build_arch(document, label)
            except EinloomError as exc:
                invalid = str(exc)
            design_id = document_hash(document)[:12]
            design_static = {} if arch is None else {"area_mm2": float(arch.area_report().total_mm2),
                                                      "peak_power_W": peak_power_w(arch)}
            for wpoint, workload in workloads.items():
                spec: PointSpec = {
                    "index": index, "design": dict(design), "design_id": design_id, "arch_label": label,
                    "arch_document": document, "configuration": config.name, "variant": config.variant,
                    "workload_model": wpoint.model, "workload_label": wpoint.label, "seq_len": wpoint.seq_len,
                    "workload": workload.to_dict(), "scope": sweep.scope, "mapping": mappings[config.name],
                    "synth": synth, "simulate": sweep.simulate, "invalid": invalid, "pruned": None, "static": {},
                    "timeout_s": sweep.timeout_s}
                spec["key"] = point_key(digests[config.variant], document, mappings[config.name], spec["workload"],
                                        sweep.scope, synth, sweep.simulate)
                if arch is not None:
                    spec["static"] = dict(design_static, working_set_bytes=working_sets(
                        config.variant, wpoint, int(arch.data.bits)), buffer_bytes=int(arch.global_buffer.capacity_bytes))
                    spec["pruned"] = violated(sweep, spec["static"])
                points.append(spec)
                index += 1
    return SweepPoints(points, len(designs), dropped, [p.name for p in sweep.parameters])


def _cascade_text(cascade: Any, ref: str) -> str:
    file = getattr(cascade, "file", None)
    if file and Path(file).is_file():
        return Path(file).read_text()
    from einloom.einsum.loader import resolve_spec_path
    return resolve_spec_path(ref).read_text()


def point_key(cascade_digest: str, arch_document: Mapping[str, Any], mapping: Mapping[str, Any],
              workload: Mapping[str, Any], scope: str, synth: Mapping[str, Any] | None,
              simulate: Mapping[str, int] | None = None) -> str:
    """The content hash a point's result is stored under (see the module docstring)."""
    payload = {"cascade": cascade_digest, "arch": arch_document, "mapping": mapping, "workload": workload,
               "scope": scope, "synth": synth, "einloom": einloom.__version__}
    if simulate:
        payload["simulate"] = dict(simulate)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def peak_power_w(arch: Any) -> float:
    """An upper bound of the design's power: every PE runs its most energetic unit and its register
    file (two reads, one write) every cycle, every buffer bank reads a row every cycle, and DRAM moves
    data at its full bandwidth.  A power budget is a peak budget, so this is what it is checked on."""
    per_cycle_pj = 0.0
    for pe_array in (arch.array_2d, arch.array_1d):
        unit = max((arch.unit_energy_pj(pe_array.kind, u) for u in pe_array.dedicated_units), default=0.0)
        rf = 2 * arch.register_file_energy_pj(pe_array.kind, "read") + arch.register_file_energy_pj(pe_array.kind, "write")
        per_cycle_pj += pe_array.num_pes * (unit + rf)
    per_cycle_pj += arch.global_buffer.banks * arch.buffer_energy_pj("read")
    dram_w = arch.dram.bandwidth_bytes_per_s * arch.dram_energy_pj_per_byte() * 1e-12
    return per_cycle_pj * 1e-12 * arch.clock_hz + dram_w


def working_set_bytes(cascade: Any, workload: Any, bits: int) -> int:
    """Bytes of one instance's inputs and outputs (e.g. Q, K, V and the output of one head) at the
    data width ``bits``: what the global buffer must hold for every byte to come from DRAM once."""
    from einloom.einsum.ranks import resolve
    sizes = workload.rank_sizes()
    given = {r: sizes[r] for r in cascade.ranks if r in sizes}
    ranks, _ = resolve(cascade, given)
    elements = sum(math.prod(ranks[r] for r in cascade.tensors[t].ranks) for t in (*cascade.inputs, *cascade.outputs))
    return int(math.ceil(elements * bits / 8))


def violated(sweep: Sweep, static: Mapping[str, Any]) -> str | None:
    """The first constraint ``static`` breaks, as a sentence; None when it meets them all."""
    c = sweep.constraints
    if c.area_mm2 is not None and static["area_mm2"] > c.area_mm2:
        return f"area {static['area_mm2']:.4g} mm^2 > budget {c.area_mm2:g} mm^2"
    if c.peak_power_W is not None and static["peak_power_W"] > c.peak_power_W:
        return f"peak power {static['peak_power_W']:.4g} W > budget {c.peak_power_W:g} W"
    if c.working_set_fits and static["working_set_bytes"] > static["buffer_bytes"]:
        return (f"working set {format_bytes(static['working_set_bytes'])} does not fit the "
                f"{format_bytes(static['buffer_bytes'])} global buffer")
    return None


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
