"""einloom.mapper: mappings (binding, tiling, spatial ranks, loop order, fusion), the analytical
evaluator, baseline mappings (FuseMax, FLAT, Unfused, linear layers) and the mapping search.

Public API (``evaluate`` and ``search`` are also the names of their modules: import them from there)::

    from einloom.mapper.evaluate import evaluate, evaluate_end_to_end
    from einloom.mapper.search import search
    from einloom.mapper import load_mapping, baseline_mapping
    ev = evaluate("fusemax-1pass", "fusemax", arch, workload)      # or a Mapping / a Cascade
    ev.to_dict()["latency_s"]
"""
from __future__ import annotations

_EXPORTS = {
    "evaluate_end_to_end": "einloom.mapper.evaluate",
    "Evaluation": "einloom.mapper.evaluate", "EndToEnd": "einloom.mapper.evaluate",
    "evaluate_family": "einloom.mapper.evaluate", "check_mapping": "einloom.mapper.evaluate",
    "Mapping": "einloom.mapper.mapping", "FusionGroup": "einloom.mapper.mapping",
    "load_mapping": "einloom.mapper.mapping", "mapping_from_dict": "einloom.mapper.mapping",
    "baseline_mapping": "einloom.mapper.baselines", "fusemax_mapping": "einloom.mapper.baselines",
    "flat_mapping": "einloom.mapper.baselines", "unfused_mapping": "einloom.mapper.baselines",
    "evaluate_linear_layers": "einloom.mapper.baselines",
    "SearchResult": "einloom.mapper.search",
    "CascadeView": "einloom.mapper.model", "EinsumInfo": "einloom.mapper.model",
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
