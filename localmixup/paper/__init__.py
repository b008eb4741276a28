"""The paper's experiments: data, models, trainers, sweeps, records and the book's helpers.

Needs the ``paper`` extra (torchvision, pandas, scipy, matplotlib, seaborn, tqdm). The chapters
import the method as ``localmixup`` and these helpers as ``localmixup.paper``.
"""

from localmixup.extras import require

require("paper", "localmixup.paper")  # one line naming the extra, not a traceback from deep inside

from localmixup.paper.profiles import PROFILES, chapter_header, check_profile, start_chapter
from localmixup.paper.provenance import default_device, device_name, environment, git_commit
from localmixup.paper.records import data_dir, load_records, missing, project_root, read_record, results_dir, write_record
from localmixup.paper.spirals import Split, make_spirals

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
