"""What each chapter renders for each profile, so the book can pick the most faithful recorded one.

A chapter with recorded runs has a *plan*: the sizes its profile sets (seeds, datasets, grids)
and the record files it renders. The notebook takes its defaults from the plan, and
:func:`choose_profile` picks, for ``localmixup book --profile auto``, the most faithful profile
whose records are all present, so that a CPU machine renders the largest recorded protocol
without training anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localmixup.paper.profiles import FAITHFUL_FIRST
from localmixup.paper.provenance import default_device
from localmixup.paper.adamixup.plan import ADAMIXUP_PROFILES, adamixup_plan
from localmixup.paper.spirals.protocol import SPIRALS_PROFILES
from localmixup.paper.spirals.sweep import spirals_plan
from localmixup.paper.table1.plan import TABLE1_PROFILES, table1_plan


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: the profiles it defines and, for a chapter
    that renders recorded runs, ``plan(profile)`` returning the record files it renders."""

    profiles: tuple[str, ...]
    plan: Callable[[str], list[Path]] | None = None


CHAPTERS: dict[str, Chapter] = {
    "method": Chapter(("paper", "quick")),
    "theory_1d": Chapter(("paper", "quick")),
    "spirals": Chapter(tuple(SPIRALS_PROFILES), lambda profile: spirals_plan(profile).paths),
    "table1": Chapter(tuple(TABLE1_PROFILES), lambda profile: table1_plan(profile).paths),
    "adamixup": Chapter(tuple(ADAMIXUP_PROFILES), lambda profile: adamixup_plan(profile).paths),
}


def recorded(chapter: str, profile: str) -> bool:
    """Whether every record ``chapter`` renders in ``profile`` is present and readable (``False``
    for a chapter without recorded runs, or one whose plan is empty)."""
    from localmixup.paper.record_files import find_corrupt

    plan = CHAPTERS[chapter].plan
    paths = plan(profile) if plan is not None else []
    return bool(paths) and all(p.is_file() for p in paths) and not find_corrupt(paths, fields=None)


def choose_profile(chapter: str, requested: str = "auto") -> tuple[str, bool]:
    """The profile to execute ``chapter`` with, and whether it may run on a CPU (``allow_cpu``).

    ``auto``: the most faithful profile whose records are all present (it trains nothing, so a
    CPU may execute it); else ``paper`` where a GPU is visible and ``quick`` elsewhere. A named
    profile is used as is where the chapter defines it, and ``quick`` elsewhere.
    """
    from localmixup.checks import check_choice

    check_choice("profile", requested, ("auto", *FAITHFUL_FIRST))
    known = CHAPTERS[chapter].profiles
    if requested != "auto":
        profile = requested if requested in known else "quick"
        return profile, recorded(chapter, profile)
    for profile in (p for p in FAITHFUL_FIRST if p in known):
        if recorded(chapter, profile):
            return profile, True
    return ("paper" if default_device().type == "cuda" else "quick"), False
