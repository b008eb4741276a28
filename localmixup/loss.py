"""The Local Mixup loss, Eq. (2) of the paper, for a mixed batch (one run, or R runs at once)."""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F

from localmixup.mixing import MixedBatch, SoftMixedBatch
from localmixup.checks import check_choice, check_label_dtype, check_real, check_soft_targets, check_tensor

NORMALIZATIONS = ("weights", "size")


def per_sample_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, validate: bool = True) -> torch.Tensor:
    """Cross-entropy of each sample: logits (..., C), target (...) class indices (int8 to int64 or
    uint8; bool labels raise a ``ValueError``: use ``.long()``) or (..., C) soft targets (float, or
    integer one-hot); returns (...).

    Computed in float32 (also under autocast). With ``validate``, class indices outside
    [0, C - 1] and soft targets that are not probability vectors raise a ``ValueError``; the
    check reads the values on the host, so a tuned GPU loop (or a captured CUDA graph)
    switches it off.
    """
    if check_tensor("logits", logits).ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., C) with C >= 1 classes, got {tuple(logits.shape)}")
    logits = logits.float()
    classes = logits.shape[-1]
    if check_tensor("target", target).ndim == logits.ndim:
        if target.shape != logits.shape:
            raise ValueError(f"soft targets must have the shape of logits {tuple(logits.shape)}, got {tuple(target.shape)}")
        check_label_dtype("soft targets", target, soft=True)
        if validate:
            check_soft_targets("soft targets", target)
        return -(target.to(logits.dtype) * logits.log_softmax(dim=-1)).sum(dim=-1)
    if target.shape != logits.shape[:-1] or target.is_floating_point():
        raise ValueError(f"targets must be integer class indices of shape {tuple(logits.shape[:-1])} or soft targets of "
                         f"shape {tuple(logits.shape)}, got {target.dtype} of shape {tuple(target.shape)}")
    check_label_dtype("targets", target, soft=False)
    if validate and target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
        raise ValueError(f"labels must be in [0, {classes - 1}] for logits with {classes} classes, got {int(target.min())}..{int(target.max())}")
    return F.cross_entropy(logits.reshape(-1, classes), target.long().reshape(-1), reduction="none").view(target.shape)


def mixup_loss(logits: torch.Tensor, batch: MixedBatch | SoftMixedBatch, *, normalize: str = "weights",
               label_smoothing: float = 0.0, validate: bool = True) -> torch.Tensor:
    """Weighted Mixup loss of Eq. (2): a scalar, or one loss per run (R,) for a batch of R runs.

    ``l_i = CE(logits_i, y_a_i) + (1 - lam) (CE(logits_i, y_b_i) - CE(logits_i, y_a_i))``,
    which is ``lam CE(y_a) + (1 - lam) CE(y_b)`` written so that a self-pair gives
    exactly the plain cross-entropy; the loss is ``sum_i w_i l_i / sum_i w_i``.

    Normalising by the sum of the weights keeps the loss on the scale of a
    cross-entropy whatever the graph (a batch whose pairs are mostly far apart is not
    silently turned into a small learning rate). If every weight is 0 the batch
    carries no information and the loss is 0, with zero gradients.
    ``normalize="size"`` divides by the batch size B instead (the other estimator of the
    paper's sum; with every weight equal to the batch's mean pair weight it is the authors'
    spirals code: the mean loss scaled by the fraction of kept pairs).

    Args:
        logits: (B, C) scores, or (R, B, C) for R runs.
        batch: the :class:`~.MixedBatch` the logits were computed on: lam a float or a tensor
            of shape () (or (R,)), weight (B,) (or (R, B)), exactly (no broadcasting); or its
            :class:`~.SoftMixedBatch` (``l_i = CE(logits_i, target_i)``). Anything else (plain
            targets) raises a ``TypeError``: the loss needs the pair weights.
        normalize: ``"weights"`` (Eq. (2)) or ``"size"``.
        label_smoothing: s in [0, 1], as timm's and torch's: each target t becomes
            ``(1 - s) t + s / C``, so ``l_i`` becomes ``(1 - s) l_i + s * mean_c(-log p_ic)``.
        validate: check the values: lam in [0, 1], weights finite and >= 0, class indices in
            range, soft targets probability vectors. Reads them on the host (synchronises a
            GPU); shapes are always checked.

    Returns:
        float32 loss, shape () (or (R,)).
    """
    if not isinstance(batch, (MixedBatch, SoftMixedBatch)):
        raise TypeError(f"batch must be the MixedBatch returned by LocalMixup (or the SoftMixedBatch of its .soft), "
                        f"which holds the pair weights of Eq. (2), got {type(batch).__name__}; for plain targets use "
                        "torch.nn.functional.cross_entropy")
    normalize = check_choice("normalize", normalize, NORMALIZATIONS)
    smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_tensor("logits", logits)
    weight = check_tensor("batch.weight", batch.weight)
    if logits.ndim not in (2, 3) or tuple(weight.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"logits must be (B, C) or (R, B, C) and batch.weight one weight per sample ({tuple(logits.shape[:-1])}), "
                         f"got logits {tuple(logits.shape)} and weight {tuple(weight.shape)}")
    if isinstance(batch, SoftMixedBatch):
        per_sample = per_sample_cross_entropy(logits, check_tensor("batch.target", batch.target), validate=validate)
    else:
        per_sample = _mixed_cross_entropy(logits, batch, validate)
    if smoothing:
        per_sample = torch.lerp(per_sample, -logits.float().log_softmax(dim=-1).mean(dim=-1), smoothing)
    if validate and not bool((weight >= 0).all() & torch.isfinite(weight).all()):
        raise ValueError("batch.weight must hold finite weights >= 0, got a negative, NaN or infinite weight")
    weight = weight.to(per_sample.dtype)
    total = (weight * per_sample).sum(dim=-1)
    if normalize == "size":
        return total / per_sample.shape[-1]
    return total / weight.sum(dim=-1).clamp_min(torch.finfo(per_sample.dtype).tiny)


def _mixed_cross_entropy(logits: torch.Tensor, batch: MixedBatch, validate: bool) -> torch.Tensor:
    """``lam CE(y_a) + (1 - lam) CE(y_b)`` of each sample, (B,) (or (R, B)), lam checked in [0, 1]."""
    lam = batch.lam
    lead = tuple(logits.shape[:-2])
    if isinstance(lam, bool) or not isinstance(lam, (Real, torch.Tensor)):
        raise TypeError(f"batch.lam must be a float or a tensor of shape {lead}, got {type(lam).__name__}")
    if isinstance(lam, torch.Tensor):
        if tuple(lam.shape) != lead:
            raise ValueError(f"batch.lam must have shape {lead} (one per run), got {tuple(lam.shape)}")
        if validate and not bool(((lam >= 0) & (lam <= 1)).all()):
            raise ValueError(f"batch.lam must be in [0, 1], got {lam.tolist()}")
        other = (1.0 - lam.float())[..., None]
    else:
        if not 0.0 <= float(lam) <= 1.0:  # NaN fails too
            raise ValueError(f"batch.lam must be in [0, 1], got {lam!r}")
        other = 1.0 - float(lam)
    ce_a = per_sample_cross_entropy(logits, check_tensor("batch.y_a", batch.y_a), validate=validate)
    ce_b = per_sample_cross_entropy(logits, check_tensor("batch.y_b", batch.y_b), validate=validate)
    return ce_a + other * (ce_b - ce_a)
