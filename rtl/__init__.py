"""einloom.rtl: Amaranth generators for the attention accelerator, Verilog export, testbenches.

Public API: :func:`generate` (config -> :class:`GeneratedDesign`) and :class:`RtlConfig` (derived from an
:class:`~einloom.cost_models.arch.Architecture` with :meth:`RtlConfig.from_arch`); which cascades and
mappings the core implements: :mod:`einloom.rtl.core_form`.
"""
from einloom.rtl.config import RtlConfig  # noqa: F401
from einloom.rtl.generate import GeneratedDesign, generate  # noqa: F401

__all__ = ["RtlConfig", "GeneratedDesign", "generate"]
