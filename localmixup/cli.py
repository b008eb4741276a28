"""Command line: ``localmixup book`` (execute the chapters and build the book)."""

from __future__ import annotations

import argparse
import sys

from .book import NotebookFailed, build_book


def _book(args: argparse.Namespace) -> int:
    only = [name for part in args.only for name in part.split(",") if name] if args.only else None
    index = build_book(args.profile, only)
    print(f"The book is at {index}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``localmixup`` argument parser (one sub-command per task)."""
    main_parser = argparse.ArgumentParser(prog="localmixup", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    book = commands.add_parser("book", help="execute every chapter with papermill, then build the Jupyter Book")
    book.add_argument("--profile", default="auto", choices=["auto", "quick", "paper"],
                      help="quick: minutes on a CPU; paper: the paper's protocol (GPU); auto: paper if a GPU is visible")
    book.add_argument("--only", action="append", metavar="NAME", help="execute only these chapters (comma-separated notebook names); the book is still built whole")
    book.set_defaults(run=_book)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors are printed as one clear message with a non-zero exit code."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (NotebookFailed, ValueError, RuntimeError) as error:
        print(f"localmixup {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"localmixup {args.command}: interrupted", file=sys.stderr)
        return 130
