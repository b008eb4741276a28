"""The two interleaved spirals of the paper's Figure 3: drawn by the authors' recipe
(:func:`make_spirals`, one data set per seed), or read from the files the authors ship
(:func:`load_authors_spirals`), the very data set of the paper's figure."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from localmixup.paper.data import DatasetUnavailable
from localmixup.paper.record_files import data_dir
from localmixup.checks import check_integer, check_real, check_seed


class Split(NamedTuple):
    """Train and test tensors: inputs (N, 2) float32, labels (N,) int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_spirals(
    points_per_class: int = 1000,
    *,
    turns_degrees: float = 720.0,
    noise: float = 0.5,
    test_fraction: float = 0.2,
    standardise: bool = True,
    seed: int = 0,
) -> Split:
    """Two interleaved spirals, class 1 being the point reflection of class 0.

    Angle ``t = sqrt(U) * turns_degrees`` (in radians after conversion), point
    ``(-cos(t) t + U' noise, sin(t) t + U'' noise)`` with U, U', U'' ~ U(0, 1) — the
    authors' recipe. The 2 * points_per_class points are standardised (zero mean,
    unit variance per coordinate, over the whole set, as the authors do) then split
    at random into train and test (``test_fraction`` in (0, 1)).
    """
    n = check_integer("points_per_class", points_per_class, low=1)
    turns = check_real("turns_degrees", turns_degrees, low=0.0, low_open=True, high=math.inf, high_open=True)
    noise = check_real("noise", noise, low=0.0, high=math.inf, high_open=True)
    test_fraction = check_real("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    g = torch.Generator().manual_seed(check_seed("seed", seed))

    t = torch.rand(n, generator=g, dtype=torch.float64).sqrt() * math.radians(turns)
    jitter = torch.rand(n, 2, generator=g, dtype=torch.float64) * noise
    arm = torch.stack([-torch.cos(t) * t, torch.sin(t) * t], dim=1) + jitter
    x = torch.cat([arm, -arm])
    y = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)])
    if standardise:
        x = (x - x.mean(0)) / x.std(0)
    order = torch.randperm(2 * n, generator=g)
    n_test = max(1, round(test_fraction * 2 * n))
    test, train = order[:n_test], order[n_test:]
    x = x.float()
    return Split(x[train], y[train], x[test], y[test])


AUTHORS_FILES = {
    "x_train.npy": "66e84c8edd1edf4495afe7fe931fc6af39e9cc88d17f8d0dafa859947ae3edad",
    "y_train.npy": "2ee7a575b241d237de0c4e48a0aa1d2f7d23c951b1ecee7d0d9a392e4606b922",
    "x_test.npy": "678699233e0fe8632d1da6ddc5d332a2cff3457351872e74a0d058fe57e73abb",
    "y_test.npy": "020ae0f605205d9f13b7c61e6e181b2236a66aa4ea539a8328c44c6c0a204044",
}
"""The four files of the authors' spirals data set and their SHA-256: ``x_*`` float64 (N, 2),
already standardised; ``y_*`` float64 (N, 1) holding 0 or 1; 1600 training and 400 test points."""

AUTHORS_SOURCE = "the folder data/spirals_dataset/ of the authors' repository raphael-baena/Local-Mixup (GPL-2)"
"""Where the authors' files come from. Their licence is not this project's, so they are never
committed here: a user copies them into :func:`authors_spirals_dir`."""


def authors_spirals_dir() -> Path:
    """Where :func:`load_authors_spirals` looks by default: ``<data>/spirals_dataset``."""
    return data_dir() / "spirals_dataset"


def load_authors_spirals(folder: Path | str | None = None, *, verify: bool = True) -> Split:
    """The authors' own spirals data set (the data of the paper's Figure 3), read from its files.

    Args:
        folder: the folder holding :data:`AUTHORS_FILES` (default :func:`authors_spirals_dir`).
        verify: check each file's SHA-256 against :data:`AUTHORS_FILES`, so that every run
            recorded on "the authors' data" trained on exactly their data.

    Returns:
        a :class:`Split`: inputs float32 (N, 2) (their loader's ``.float()``), labels int64 (N,).

    Raises :class:`~localmixup.paper.data.DatasetUnavailable` naming the folder, the missing or
    altered files and where to get them.
    """
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or os.PathLike) or None, got {type(folder).__name__}")
    root = Path(folder) if folder is not None else authors_spirals_dir()
    absent = [name for name in AUTHORS_FILES if not (root / name).is_file()]
    if absent:
        raise DatasetUnavailable(f"the authors' spirals data set is not in {root} (missing {', '.join(absent)}): "
                                 f"copy the four files {', '.join(AUTHORS_FILES)} from {AUTHORS_SOURCE} into that folder")
    if verify:
        altered = [name for name, digest in AUTHORS_FILES.items()
                   if hashlib.sha256((root / name).read_bytes()).hexdigest() != digest]
        if altered:
            raise DatasetUnavailable(f"{', '.join(str(root / n) for n in altered)} differ(s) from the authors' files "
                                     f"(SHA-256 mismatch): copy them again from {AUTHORS_SOURCE}")
    arrays = {}
    for name in AUTHORS_FILES:
        try:
            arrays[name] = np.load(root / name, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise DatasetUnavailable(f"{root / name} is not a readable .npy file ({error})") from None
    parts = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}.npy"], arrays[f"y_{split}.npy"]
        if x.ndim != 2 or x.shape[1] != 2 or y.reshape(-1).shape[0] != x.shape[0] or not np.isin(y, (0, 1)).all():
            raise DatasetUnavailable(f"{root}: x_{split}.npy must hold (N, 2) points and y_{split}.npy N labels in {{0, 1}}, "
                                     f"got shapes {x.shape} and {y.shape}")
        parts += [torch.from_numpy(x).float(), torch.from_numpy(y.reshape(-1)).long()]
    return Split(*parts)
