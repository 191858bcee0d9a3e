"""einloom.rtl: Amaranth generators for the attention accelerator, Verilog export, testbenches.

Public API: :func:`generate` (config -> :class:`GeneratedDesign`) and :class:`RtlConfig`.
"""
from einloom.rtl.config import RtlConfig  # noqa: F401
from einloom.rtl.generate import GeneratedDesign, generate  # noqa: F401

__all__ = ["RtlConfig", "GeneratedDesign", "generate"]
