"""Re-export of the YAML reader with line maps, which lives in :mod:`einloom.base.yamlio` (the layer
below every package).  Kept so ``from einloom.einsum.yamlio import load_yaml`` keeps working."""
from einloom.base.yamlio import KeyPath, LineMap, load_yaml  # noqa: F401
