"""The error a malformed sweep file or sweep directory raises (exit status 2, one line)."""
from __future__ import annotations

from einloom.einsum.errors import EinloomError


class SweepError(EinloomError):
    """A malformed sweep file, a bad sweep option, or a sweep directory that cannot be used."""
