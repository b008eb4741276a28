"""Exact pairwise Euclidean distances between the samples of a batch."""

from __future__ import annotations

import torch


def pairwise_distances(x: torch.Tensor, *, batched: bool = False) -> torch.Tensor:
    """Euclidean distances between the flattened samples of a batch.

    Args:
        x: tensor of shape (B, ...); each sample is flattened to a vector. With
            ``batched=True``, a stack of R independent batches of shape (R, B, ...).
        batched: treat the first dimension as R independent batches (for instance
            R runs trained at once) and return one distance matrix per batch.

    Returns:
        float32 tensor of shape (B, B) (or (R, B, B) when ``batched``), symmetric,
        exactly zero on the diagonal, without gradient (locality weights are
        constants of the loss).

    The distances are computed in float32 even under autocast, and without the
    ``|a|^2 + |b|^2 - 2ab`` matrix-product shortcut that ``torch.cdist`` uses by
    default: that shortcut cancels catastrophically for close points, and the
    locality graph depends precisely on the small distances.
    """
    if batched:
        if x.ndim < 2:
            raise ValueError(f"batched=True needs x of shape (R, B, ...), got shape {tuple(x.shape)}")
        flat = x.detach().reshape(x.shape[0], x.shape[1], -1).float()
    else:
        flat = x.detach().reshape(x.shape[0], -1).float()
    with torch.autocast(device_type=flat.device.type, enabled=False):
        return torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
