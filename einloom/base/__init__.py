"""einloom.base: what every layer needs and nothing else (imports nothing of einloom).

* :mod:`~einloom.base.errors`: the user-facing error classes (one line, file:line: field: problem (hint));
* :mod:`~einloom.base.yamlio`: the YAML/JSON reader with line maps, refusing hostile documents;
* :mod:`~einloom.base.fields`: the declarative field reader (type, range, finite, integer, choices,
  size suffixes, did-you-mean);
* :mod:`~einloom.base.output`: safe output writing (parents, folders, unwritable paths);
* :mod:`~einloom.base.limits`: the documented size limits.
"""
from einloom.base.errors import (
    ArchError, CheckFailed, EinloomError, ExperimentError, InputError, Location, MappingError, SpecError, ToolError,
    WorkloadError,
)
from einloom.base.fields import Field, FieldReader, did_you_mean, describe, parse_size
from einloom.base.yamlio import LineMap, load_json, load_yaml, read_user_file

__all__ = ["ArchError", "CheckFailed", "EinloomError", "ExperimentError", "InputError", "Location",
           "MappingError", "SpecError", "ToolError", "WorkloadError", "Field", "FieldReader", "did_you_mean",
           "describe", "parse_size", "LineMap", "load_json", "load_yaml", "read_user_file"]
