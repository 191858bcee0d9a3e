"""Re-export of the user-facing error types (defined in :mod:`einloom.einsum.errors`, the lowest layer,
so every package can raise them without importing upward)."""
from einloom.einsum.errors import (  # noqa: F401
    ArchError, EinloomError, ExperimentError, Location, MappingError, SpecError, ToolError, WorkloadError,
)
