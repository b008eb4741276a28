"""Exact pairwise Euclidean distances between the samples of a batch."""

from __future__ import annotations

import torch


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the flattened samples of a batch.

    Args:
        x: tensor of shape (B, ...); each sample is flattened to a vector.

    Returns:
        float32 tensor of shape (B, B), symmetric, exactly zero on the diagonal,
        without gradient (locality weights are constants of the loss).

    The distances are computed in float32 even under autocast, and without the
    ``|a|^2 + |b|^2 - 2ab`` matrix-product shortcut that ``torch.cdist`` uses by
    default: that shortcut cancels catastrophically for close points, and the
    locality graph depends precisely on the small distances.
    """
    flat = x.detach().reshape(x.shape[0], -1).float()
    with torch.autocast(device_type=flat.device.type, enabled=False):
        return torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
