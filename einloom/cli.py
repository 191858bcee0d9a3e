"""The ``einloom`` command line.

Each subcommand lives in ``einloom/commands/<name>.py`` and exposes ``register(subparsers)`` which adds
its parser and sets ``func`` to a callable ``(args) -> int``.  Errors in user input
(:class:`einloom.errors.EinloomError`) are printed as one line on stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from einloom.base.errors import EinloomError

#: Subcommand modules, in the order ``einloom --help`` lists them.
COMMANDS = ["check", "run", "synth", "evaluate", "rtl", "verify", "lanes", "map", "sim", "sweep", "gpu-bench", "report"]


class OneLineParser(argparse.ArgumentParser):
    """argparse with einloom's error format: one line naming the command, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        text = message.replace("\n", " ")
        self.exit(2, f"{self.prog}: error: {text} (hint: see '{self.prog} --help')\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("einloom")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="einloom",
        description="Attention as extended-Einsum cascades: analyse, map, simulate, generate RTL.",
        epilog="Run 'einloom COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"einloom {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"einloom.commands.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EinloomError as error:
        print(f"einloom {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except RecursionError:  # a safety net: the readers refuse deep nesting before this can happen
        print(f"einloom {args.command}: error: input nested too deeply to process "
              f"(hint: simplify the expression or file)", file=sys.stderr)
        return 2
    except MemoryError:  # a safety net: sizes are limited at the door (README "Limits")
        print(f"einloom {args.command}: error: out of memory (hint: use smaller rank sizes; see the README's "
              f"limits)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("einloom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
