"""Manifold intrusion: virtual points that land among training points of another class."""

from __future__ import annotations

import torch

from localmixup.distances import DIRECT_MAX_DIM
from localmixup.validation import check_batch

_CHUNK = 1 << 24  # entries of the (virtual x train) distance block computed at once


def intruders(x_virtual: torch.Tensor, y_virtual: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor) -> torch.Tensor:
    """Which virtual points are intruders: their nearest training point has another class.

    Args:
        x_virtual: (M, ...) mixed inputs.
        y_virtual: (M,) class each virtual point is trained towards (its dominant label,
            ``y_a`` where lam >= 1/2, else ``y_b``).
        x_train, y_train: (N, ...) training inputs and their (N,) class indices.

    Returns:
        bool tensor (M,). Up to :data:`~localmixup.distances.DIRECT_MAX_DIM` features the distances
        are direct differences; above, float64 ``|v|^2 - 2 v.t + |t|^2`` (exact enough to rank
        neighbours, and one matrix product: an image batch against 60,000 training images costs
        a fraction of a second).
    """
    check_batch(x_virtual, y_virtual)
    check_batch(x_train, y_train)
    flat_v = x_virtual.detach().reshape(x_virtual.shape[0], -1)
    flat_t = x_train.detach().reshape(x_train.shape[0], -1)
    if flat_v.shape[1] <= DIRECT_MAX_DIM:
        distances = torch.cdist(flat_v.float(), flat_t.float(), compute_mode="donot_use_mm_for_euclid_dist")
        nearest = distances.argmin(dim=1)
    else:
        flat_t = flat_t.double()
        norms = flat_t.square().sum(dim=1)
        rows = max(1, _CHUNK // flat_t.shape[0])
        nearest = torch.cat([(norms - 2.0 * part.double() @ flat_t.T).argmin(dim=1) for part in flat_v.split(rows)])
    return y_train[nearest] != y_virtual


def intrusion_rate(x_virtual: torch.Tensor, y_virtual: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor) -> float:
    """Fraction of virtual points whose nearest training point has another class (:func:`intruders`).

    Returns:
        A rate in [0, 1]: 0 when every virtual point lies nearest to its own class.
    """
    return float(intruders(x_virtual, y_virtual, x_train, y_train).float().mean())
