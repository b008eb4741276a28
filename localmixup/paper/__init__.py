"""The paper's experiments: data, models, trainers, sweeps, records and the book's helpers.

Laid out by experiment: ``spirals`` (Figure 3), ``table1`` (the image benchmarks and the size
study), ``adamixup`` (the comparison with AdaMixup, the method included); the rest is shared by
them (records, provenance, datasets, networks, the image trainer in ``training``, the image sweep
in ``sweep``, the book's pipeline, the ``localmixup`` command in ``cli``).

Needs the ``paper`` extra (torchvision, pandas, scipy, matplotlib, seaborn, tqdm). The chapters
import the method as ``localmixup`` and these helpers as ``localmixup.paper``; the method's core
never imports this package.
"""

import sys
from pathlib import Path

from localmixup.extras import MissingExtra, require

try:
    require("paper", "localmixup.paper")  # one line naming the extra, not a traceback from deep inside
except MissingExtra as error:
    # the `localmixup` command, or `python -m localmixup.paper` (argv[0] is "-m" while its package loads)
    if Path(sys.argv[0]).name == "localmixup" or sys.argv[0] == "-m":
        sys.exit(f"localmixup: {error}")
    raise

from localmixup.paper.page import chapter_header, start_chapter
from localmixup.paper.profiles import PROFILES, check_profile
from localmixup.paper.provenance import default_device, device_name, environment, git_commit
from localmixup.paper.record_files import data_dir, load_records, missing, project_root, read_record, results_dir, write_record
from localmixup.paper.spirals.data import Split, make_spirals

__all__ = [
    "PROFILES",
    "Split",
    "chapter_header",
    "check_profile",
    "start_chapter",
    "data_dir",
    "default_device",
    "device_name",
    "environment",
    "git_commit",
    "load_records",
    "make_spirals",
    "missing",
    "project_root",
    "read_record",
    "results_dir",
    "write_record",
]
