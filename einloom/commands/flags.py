"""Command-line value types shared by the subcommands: the same rules as the file readers.

Each function is an argparse ``type=``: it returns the value or raises ``ArgumentTypeError`` with what
is wrong and what to write, which the CLI prints as one line (``einloom map: error: argument
--seq-len: ...``) with exit status 2.  Sizes accept the K/M suffixes experiment files accept
(``16k`` = ``16K`` = 16384); numbers are finite; every value has the documented upper limit.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable

from einloom.base.fields import parse_size
from einloom.base.limits import MAX_BATCH, MAX_SEQ_LEN


def size(high: int, what: str = "a size") -> Callable[[str], int]:
    """A positive integer with an optional K/M/G suffix (K = 1024), at most ``high``."""

    def parse(text: str) -> int:
        try:
            value = parse_size(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r} (write e.g. 4096, 16K or 1M; "
                                             f"K = 1024)") from None
        if value > high:
            raise argparse.ArgumentTypeError(f"{text} is over the limit of {high} ({what})")
        return value

    parse.__name__ = what
    return parse


seq_len = size(MAX_SEQ_LEN, "a sequence length")
batch = size(MAX_BATCH, "a batch size")


def positive_number(what: str, high: float = 1e12) -> Callable[[str], float]:
    """A finite number > 0 (NaN, infinity, 0 and negatives refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected {what} (a finite number > 0), got {text!r}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text} is over the limit of {high:g} for {what}")
        return value

    parse.__name__ = what
    return parse


def nonnegative_number(what: str) -> Callable[[str], float]:
    """A finite number >= 0 (tolerances)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"expected {what} (a finite number >= 0), got {text!r}")
        return value

    parse.__name__ = what
    return parse


def seed(text: str) -> int:
    """A random seed: an integer in 0 .. 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"a seed is in 0..{2 ** 32 - 1}, got {value}")
    return value
