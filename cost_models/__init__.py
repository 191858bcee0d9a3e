"""einloom.cost_models: what each action costs on a given architecture.

* :mod:`~einloom.cost_models.arch`: the architecture description (:func:`load_arch`,
  :class:`Architecture`, :meth:`Architecture.op_cost`);
* :mod:`~einloom.cost_models.technology`: energy per action and area per component at a node
  (:class:`TechnologyModel`), with the data and its sources in ``data/``;
* :mod:`~einloom.cost_models.area`: the area roll-up of a design (:func:`area_report`);
* :mod:`~einloom.cost_models.workload`: transformer workloads (:func:`load_workload`).
"""
from einloom.cost_models.arch import (OP_CLASSES, Architecture, ArrayKind, DataFormat, Dram, GlobalBuffer,
                                      OpCost, PEArray, RegisterFile, UnitSpec, arch_from_dict, load_arch,
                                      presets)
from einloom.cost_models.area import AreaItem, AreaReport, area_report
from einloom.cost_models.technology import TechnologyModel, supported_nodes
from einloom.cost_models.workload import (Workload, load_workload, workload_from_dict, workload_from_hf_config,
                                          workload_presets)

__all__ = ["OP_CLASSES", "Architecture", "ArrayKind", "DataFormat", "Dram", "GlobalBuffer", "OpCost", "PEArray",
           "RegisterFile", "UnitSpec", "arch_from_dict", "load_arch", "presets", "TechnologyModel",
           "supported_nodes", "AreaItem", "AreaReport", "area_report", "Workload", "load_workload",
           "workload_from_dict", "workload_from_hf_config", "workload_presets"]
