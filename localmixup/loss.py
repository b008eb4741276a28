"""The Local Mixup loss, Eq. (2) of the paper, for a mixed batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from localmixup.mixing import MixedBatch


def per_sample_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, validate: bool = True) -> torch.Tensor:
    """Cross-entropy of each sample, (B,), for class indices (B,) or soft targets (B, C).

    Computed in float32 (also under autocast). With ``validate``, class indices outside
    [0, C - 1] raise a ``ValueError``; the check reads the labels on the host, so a tuned
    GPU loop (or a captured CUDA graph) switches it off.
    """
    logits = logits.float()
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(f"soft targets must have the shape of logits {tuple(logits.shape)}, got {tuple(target.shape)}")
        return -(target.to(logits.dtype) * logits.log_softmax(dim=1)).sum(dim=1)
    classes = logits.shape[1]
    if validate and target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
        raise ValueError(f"labels must be in [0, {classes - 1}] for logits with {classes} classes, got {int(target.min())}..{int(target.max())}")
    return F.cross_entropy(logits, target, reduction="none")


def mixup_loss(logits: torch.Tensor, batch: MixedBatch, *, validate: bool = True) -> torch.Tensor:
    """Weighted Mixup loss of Eq. (2), a scalar.

    ``l_i = CE(logits_i, y_a_i) + (1 - lam) (CE(logits_i, y_b_i) - CE(logits_i, y_a_i))``,
    which is ``lam CE(y_a) + (1 - lam) CE(y_b)`` written so that a self-pair gives
    exactly the plain cross-entropy; the loss is ``sum_i w_i l_i / sum_i w_i``.

    Normalising by the sum of the weights keeps the loss on the scale of a
    cross-entropy whatever the graph (a batch whose pairs are mostly far apart is not
    silently turned into a small learning rate). If every weight is 0 the batch
    carries no information and the loss is 0, with zero gradients.

    Args:
        logits: (B, C) scores.
        batch: the :class:`~.MixedBatch` the logits were computed on.
        validate: check that class indices fit the logits (synchronises a GPU).
    """
    ce_a = per_sample_cross_entropy(logits, batch.y_a, validate=validate)
    ce_b = per_sample_cross_entropy(logits, batch.y_b, validate=validate)
    per_sample = ce_a + (1.0 - batch.lam) * (ce_b - ce_a)
    weight = batch.weight.to(per_sample.dtype)
    return (weight * per_sample).sum() / weight.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)
