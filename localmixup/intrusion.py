"""Manifold intrusion: virtual points that land among training points of another class."""

from __future__ import annotations

import torch

from localmixup.validation import check_batch


def intrusion_rate(x_virtual: torch.Tensor, y_virtual: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor) -> float:
    """Fraction of virtual points whose nearest training point has another class.

    Args:
        x_virtual: (M, ...) mixed inputs.
        y_virtual: (M,) class each virtual point is trained towards (its dominant label,
            ``y_a`` where lam >= 1/2, else ``y_b``).
        x_train, y_train: (N, ...) training inputs and their (N,) class indices.

    Returns:
        A rate in [0, 1]: 0 when every virtual point lies nearest to its own class.
    """
    check_batch(x_virtual, y_virtual)
    check_batch(x_train, y_train)
    flat_v = x_virtual.reshape(x_virtual.shape[0], -1).float()
    flat_t = x_train.reshape(x_train.shape[0], -1).float()
    nearest = torch.cdist(flat_v, flat_t, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
    return float((y_train[nearest] != y_virtual).float().mean())
