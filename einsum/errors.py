"""Re-export of the user-facing error types, which live in :mod:`einloom.base.errors` (the layer below
every package).  Kept so ``from einloom.einsum.errors import SpecError`` keeps working."""
from einloom.base.errors import (  # noqa: F401
    ArchError, EinloomError, ExperimentError, Location, MappingError, SpecError, ToolError, WorkloadError,
)
