"""The ``xpnet`` command (also ``python -m xpnet``).

Exit codes: 0 success, 2 usage errors (argparse), 1 runtime errors with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .backend import format_backends_report
from .errors import XpnetError


def _cmd_backends(args: argparse.Namespace) -> int:
    print(format_backends_report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xpnet`` command, one sub-command per job."""
    parser = argparse.ArgumentParser(prog="xpnet", description="Dense neural networks on any Array API backend.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("backends", help="list the backends, whether each is usable here, devices and float64")
    p.set_defaults(func=_cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except XpnetError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
