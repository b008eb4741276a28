"""The protocol of Figure 3: the authors' eps grid and batch sizes, the chapter's three settings,
the data sets (a draw of ``make_spirals`` or the authors' files), and the sizes of each profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from localmixup.checks import check_choice, check_integer
from localmixup.paper.spirals.data import AUTHORS_FILES, Split, load_authors_spirals, make_spirals
from localmixup.paper.spirals.config import AUTHORS, ManyRunsConfig


PAPER_EPS = (0.0, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 10.0)
"""The eps grid of the authors' spirals code (Figure 3)."""

PAPER_BATCH_SIZES = dict(zip(PAPER_EPS, (20, 241, 103, 50, 33, 25, 22, 20, 20, 20)))
"""Batch size per eps in the authors' code ("determined by experiments")."""

SETTINGS: dict[str, dict[str, str]] = {
    "authors": AUTHORS,
    "eq2-permutation": {"pairing": "permutation", "weighting": "pair", "output": "logits"},
    "eq2-graph": {"pairing": "graph", "weighting": "pair", "output": "logits"},
}
"""The three settings of the chapter, (a) the authors' code (permutation pairing, batch
scaling, softmax output); (b) Eq. (2) with permutation pairing and plain logits (the paper's
equation); (c) Eq. (2) with graph pairing (partners drawn among the neighbours)."""

DATA_DEFAULTS = {"points_per_class": 1000, "turns_degrees": 720.0, "noise": 0.5, "test_fraction": 0.2, "standardise": True, "seed": 0}
"""Arguments of :func:`~localmixup.paper.spirals.data.make_spirals` for the paper's data set (one
fixed data set for every run, as in the authors' code)."""

AUTHORS_DATA = {"source": "authors", "sha256": dict(AUTHORS_FILES)}
"""The ``data`` of a record trained on the authors' own files
(:func:`~localmixup.paper.spirals.data.load_authors_spirals`), their digests included."""

DRAW_SEED_STRIDE = 1000
"""Run ``r`` of data draw ``d`` has the run seed ``DRAW_SEED_STRIDE * d + r``: the runs of two
draws never share a seed (so never an initialisation), and a draw holds up to this many runs."""

SPIRALS_PROFILES = {
    "quick": {"eps_grid": (0.0, 0.6, 1.0, 2.0, 3.0, 10.0), "runs": {"authors": 20, "eq2-permutation": 20, "eq2-graph": 20},
              "epochs": 15, "chunk_size": 20, "curve_every": 1},
    "paper": {"eps_grid": PAPER_EPS, "runs": {"authors": 1000, "eq2-permutation": 1000, "eq2-graph": 200},
              "epochs": 200, "chunk_size": 200, "curve_every": 10},
}
"""Sizes of the chapter's profiles, ``quick`` (about a minute on a CPU, a smoke test, not the
paper's protocol) and ``paper`` (the paper's grid and 200 epochs; 1000 runs per threshold for
settings (a) and (b), 200 for (c)). Chunks of 200 runs: large enough that the library's per-step
sampling costs little per run, small enough that a sweep killed at the end of a session loses a
few minutes of work; the files are the same whether a CPU or a GPU made them."""


def paper_batch_size(eps: float) -> int:
    """The authors' batch size for ``eps`` (a value of :data:`PAPER_EPS`)."""
    if float(eps) not in PAPER_BATCH_SIZES:
        raise ValueError(f"eps={eps!r} is not on the authors' grid {list(PAPER_EPS)}, which fixes a batch size per eps: "
                         "give one (--batch-size on the command line, batch_sizes={eps: size} in Python)")
    return PAPER_BATCH_SIZES[float(eps)]


def paper_config(setting: str, eps: float, **overrides: Any) -> ManyRunsConfig:
    """The protocol of ``setting`` (a key of :data:`SETTINGS`) at ``eps``: the authors' batch size
    for it, their Adam (lr 0.01) and 200 epochs, unless ``overrides`` (fields of
    :class:`~localmixup.paper.spirals.config.ManyRunsConfig`) say otherwise."""
    check_choice("setting", setting, tuple(SETTINGS))
    if "batch_size" not in overrides:
        overrides["batch_size"] = paper_batch_size(eps)
    return ManyRunsConfig(eps=eps, **{**SETTINGS[setting], **overrides})


def draw_seeds(draw: int, runs: int) -> list[int]:
    """The run seeds of the ``runs`` runs of data draw ``draw`` (see :data:`DRAW_SEED_STRIDE`)."""
    runs = check_integer("runs", runs, low=1, high=DRAW_SEED_STRIDE)
    first = DRAW_SEED_STRIDE * check_integer("draw", draw, low=0)
    return list(range(first, first + runs))


def sweep_data(data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DATA_DEFAULTS` with the overrides ``data`` (arguments of ``make_spirals``), or
    :data:`AUTHORS_DATA` for ``{"source": "authors"}`` (the authors' files)."""
    if data is not None and data.get("source") == "authors":
        if set(data) - set(AUTHORS_DATA) or data.get("sha256", AUTHORS_DATA["sha256"]) != AUTHORS_DATA["sha256"]:
            raise ValueError(f"the authors' data set is {AUTHORS_DATA}, got {dict(data)}")
        return dict(AUTHORS_DATA)
    unknown = set(data or {}) - set(DATA_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown data parameters {sorted(unknown)}; accepted: {sorted(DATA_DEFAULTS)}")
    return {**DATA_DEFAULTS, **(data or {})}


def load_split(data: Mapping[str, Any]) -> Split:
    """The data set that a record's ``data`` (:func:`sweep_data`) names."""
    return load_authors_spirals() if data.get("source") == "authors" else make_spirals(**data)


def data_label(data: Mapping[str, Any]) -> str:
    """A short name of a record's data set: ``"authors"``, or ``"draw <seed>"`` for a drawn one."""
    return "authors" if data.get("source") == "authors" else f"draw {data['seed']}"


def sweep_configs(setting: str, eps_grid: Sequence[float], *, epochs: int = 200, batch_sizes: Mapping[float, int] | None = None,
                  hidden: Sequence[int] = (100, 100, 100)) -> list[ManyRunsConfig]:
    """The protocol of ``setting`` at each eps (see :func:`paper_config`; ``batch_sizes`` overrides the authors')."""
    sizes = dict(batch_sizes or {})
    return [paper_config(setting, eps, epochs=epochs, hidden=tuple(hidden), **({"batch_size": sizes[eps]} if eps in sizes else {}))
            for eps in eps_grid]
