"""The chapters' execution profiles: their names, from the most faithful to the lightest, and the check of one.

``paper`` follows the paper's protocol (a GPU), ``cpu`` is a protocol sized for a 2-core CPU
(where a chapter defines one), ``quick`` runs in minutes on a CPU (a smoke test of the pipeline,
not evidence). What a profile sets is defined once per experiment, read by its sweep, the book
and the command line: :data:`localmixup.paper.protocols.PROTOCOLS` (how an image run trains),
:data:`localmixup.paper.table1.plan.TABLE1_PROFILES` and
:data:`localmixup.paper.adamixup.plan.ADAMIXUP_PROFILES` (which image runs a chapter renders) and
:data:`localmixup.paper.spirals.protocol.SPIRALS_PROFILES`.
"""

from __future__ import annotations


import torch

from localmixup.paper.provenance import default_device
from localmixup.checks import check_choice

PROFILES = ("quick", "cpu", "paper")
FAITHFUL_FIRST = ("paper", "cpu", "quick")


def check_profile(profile: str, *, allow_cpu: bool = False) -> torch.device:
    """Validate ``profile`` (a chapter's profile, or another training protocol of
    :data:`~localmixup.paper.protocols.PROTOCOLS`) and return the device to run it on.

    The paper profile on a CPU would take days: it is refused unless ``allow_cpu`` (which
    the book sets when every run of the profile is already recorded, so nothing trains).
    """
    from localmixup.paper.protocols import PROTOCOLS

    check_choice("profile", profile, tuple(dict.fromkeys((*PROFILES, *PROTOCOLS))))
    device = default_device()
    if profile == "paper" and device.type == "cpu" and not allow_cpu:
        raise RuntimeError(
            "profile='paper' follows the paper's protocol and needs a GPU; none is visible. "
            "Use profile='quick', or pass allow_cpu=True to run it on the CPU anyway."
        )
    return device
