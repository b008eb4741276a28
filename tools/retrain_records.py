"""Retrain the first epochs of recorded image runs with the code at hand and say which differ.

Usage::

    python tools/retrain_records.py "results/table1/size*/fashion_mnist/*.json" --epochs 2

Prints one line per record (identical, or the first epoch that differs with both test errors) and
a count; exits with status 1 if any record differs. See :func:`localmixup.paper.training.retrain.retrain_prefix`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from localmixup.paper.training.retrain import retrain_prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+", help="globs of record files, relative to the working directory")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to retrain per record (default 2)")
    args = parser.parse_args(argv)
    paths = sorted({p for pattern in args.patterns for p in Path().glob(pattern)})
    if not paths:
        parser.error(f"no record matches {args.patterns}")
    differing = 0
    for path in tqdm(paths, unit="record"):
        result = retrain_prefix(path, args.epochs)
        differing += not result.identical
        tqdm.write(f"{path}: " + ("identical" if result.identical else
                                  f"differs from epoch {result.first_difference} ({result.recorded_pct} % recorded, "
                                  f"{result.retrained_pct} % retrained)"))
    print(f"{len(paths) - differing} of {len(paths)} record(s) retrain identically over {args.epochs} epoch(s)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
