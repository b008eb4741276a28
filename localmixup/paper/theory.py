"""The theory chapter's profiles: the sizes of its computations, and its verdicts at those sizes
(:mod:`localmixup.theory.verdicts`) for the book's landing page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localmixup.checks import check_choice

if TYPE_CHECKING:
    from localmixup.theory.verdicts import Verdict

THEORY_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"n_datasets": 3, "brute_draws": 60_000, "n_periodic": 32, "mc_draws": 4_000, "k_max_iid": 128,
              "n_grid": (10, 30, 100, 300, 1000), "virtual_count": 20_000},
    "paper": {"n_datasets": 20, "brute_draws": 400_000, "n_periodic": 128, "mc_draws": 20_000, "k_max_iid": 256,
              "n_grid": (10, 30, 100, 300, 1000, 3000), "virtual_count": 200_000},
}
"""The sizes of each profile's computations, by name (random data sets for the brute force and
Theorem 4.1, lambda draws per pair in the brute force, the period n of Z/nZ, Monte Carlo draws, the
largest K of Theorem 4.2, the grid sizes of Theorem 4.3, virtual points of the intrusion rate);
"quick" takes seconds on a CPU."""

FIT_FROM_N = 30
"""Theorem 4.3's rates are fitted over the grid sizes from this one on (below, the boundary rows dominate)."""


def chapter_verdicts(profile: str, *, seed: int = 0, n_random: int = 8, k_grid: int = 2, eps_grid: float = 0.1,
                     **sizes: Any) -> list[Verdict]:
    """The verdicts the theory chapter shows first (:func:`~localmixup.theory.verdicts.theory_verdicts`),
    at ``profile``'s sizes (:data:`THEORY_PROFILES`), any of them overridden by ``sizes``; the other
    arguments are the chapter's parameters of the same names."""
    from localmixup.theory.verdicts import theory_verdicts

    size = {**THEORY_PROFILES[check_choice("profile", profile, tuple(THEORY_PROFILES))],
            **{k: v for k, v in sizes.items() if v is not None}}
    return theory_verdicts(seed=seed, n_random=n_random, n_periodic=size["n_periodic"], draws=size["n_datasets"],
                           k_max=size["k_max_iid"], n_grid=[n for n in size["n_grid"] if n >= FIT_FROM_N], k_grid=k_grid, eps_grid=eps_grid)
