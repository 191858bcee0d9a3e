"""Re-export of the user-facing error types (defined in :mod:`einloom.base.errors`, below every
package, so each layer can raise them without importing upward)."""
from einloom.base.errors import (  # noqa: F401
    ArchError, EinloomError, ExperimentError, Location, MappingError, SpecError, ToolError, WorkloadError,
)
