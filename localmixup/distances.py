"""Pairwise Euclidean distances between the samples of a batch, accurate where the graph needs them."""

from __future__ import annotations

import math

import torch

from localmixup.checks import check_partner, check_points

DIRECT_MAX_DIM = 32
"""Up to this many features per sample, distances are direct differences (they cost no more than a Gram matrix)."""
_TAU = 0.5  # a pair whose squared distance is below _TAU * (|a_i|^2 + |a_j|^2) is recomputed directly
_CHUNK = 1 << 22  # elements of differences held at once while recomputing pairs


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

    Accuracy. ``torch.cdist``'s default ``|a|^2 + |b|^2 - 2ab`` shortcut cancels
    catastrophically for close points, and the locality graph depends precisely on the small
    distances. Here every distance has a relative error within a small factor of what a
    direct float32 computation ``|x_i - x_j|`` guarantees, with u = 2**-24 and
    gamma_d = d u / (1 - d u) for d features per sample:

    * d <= 32: direct differences (``cdist``'s elementwise mode), relative error <= gamma_d.
    * on the CPU, outside ``torch.compile``: the batch is centred (a_i = x_i - mean; distances
      do not change) and ``s_ij = |a_i|^2 + |a_j|^2 - 2 a_i.a_j`` is formed in float32. Its error
      is at most ``(2 gamma_d + 3u) S_ij`` with ``S_ij = |a_i|^2 + |a_j|^2`` (each float32 dot
      product errs by at most ``gamma_d |a| |b| <= gamma_d S_ij / 2``). The pairs where this can matter,
      s_ij < S_ij / 2, are recomputed directly in float32 (relative error <= gamma_d); for
      the others the relative error of s_ij is at most (2 gamma_d + 3u) / (1/2 - 2 gamma_d
      - 3u), about 4 gamma_d, so that of the distance about 2 gamma_d (a direct computation:
      gamma_d / 2). On Fashion-MNIST batches about 9% of the pairs are recomputed. The float32
      Gram matrix costs about a third of the float64 one on this CPU.
    * elsewhere (CUDA, compiled code; no host round trip, fixed shapes): the same Gram matrix
      in float64, whose error (about 1e-16 S_ij) lies below float32 resolution except for
      near-duplicates far from the batch mean.

    float64 inputs are handled in float64 throughout. Autocast is switched off inside.
    """
    flat = _flatten(x, batched, validate)
    wide = flat.dtype == torch.float64
    with torch.autocast(device_type=flat.device.type, enabled=False):
        flat = flat.to(torch.float64 if wide else torch.float32)
        if flat.shape[-1] <= DIRECT_MAX_DIM:
            return torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").float()
        fast = not wide and flat.device.type == "cpu" and not torch.compiler.is_compiling()
        a = flat if fast else flat.double()
        a = a - a.mean(dim=-2, keepdim=True)
        gram = a @ a.transpose(-1, -2)
        norms = gram.diagonal(dim1=-2, dim2=-1)
        spread = norms.unsqueeze(-1) + norms.unsqueeze(-2)
        squared = spread - 2.0 * gram
        squared = 0.5 * (squared + squared.transpose(-1, -2))  # exactly symmetric
        if fast:
            _recompute_close_pairs(squared, spread, flat)
        squared.diagonal(dim1=-2, dim2=-1).zero_()
        return squared.clamp_min_(0.0).sqrt_().float()


def paired_distances(x: torch.Tensor, partner: torch.Tensor, *, batched: bool = False, validate: bool = True) -> torch.Tensor:
    """The distance from each sample to its partner: ``D[i, partner[i]]``.

    Args:
        x: tensor of shape (B, ...) ((R, B, ...) with ``batched``), as in :func:`pairwise_distances`.
        partner: integer tensor (B,) ((R, B) with ``batched``) of indices in [0, B).
        batched: R independent batches, one partner row each.
        validate: check that x is finite and the indices in range.

    Returns:
        float32 tensor (B,) ((R, B) with ``batched``): only the B pairs are computed, as direct
        differences (O(B d) instead of the matrix's O(B^2 d)). With at most
        :data:`DIRECT_MAX_DIM` features per sample the kernel is the full matrix's, so the values
        equal ``pairwise_distances(x)`` read at the pairs bit for bit; above, the matrix comes
        from a Gram matrix and the two agree within its rounding (a relative few 1e-7), the
        direct difference being the more accurate of the two.
    """
    flat = _flatten(x, batched, validate)
    lead = tuple(flat.shape[:-1])
    partner = check_partner(partner, lead, validate)
    with torch.autocast(device_type=flat.device.type, enabled=False):
        flat = flat.to(torch.float64 if flat.dtype == torch.float64 else torch.float32)
        other = flat.gather(-2, partner[..., None].expand(*lead, flat.shape[-1]))
        if flat.shape[-1] > DIRECT_MAX_DIM:
            return torch.linalg.vector_norm(flat - other, dim=-1).float()
        # one 1 x 1 cdist per pair: the kernel, and so the rounding, of the full matrix
        pairs = torch.cdist(flat.unsqueeze(-2), other.unsqueeze(-2), compute_mode="donot_use_mm_for_euclid_dist")
        return pairs[..., 0, 0].float()


def _flatten(x: torch.Tensor, batched: bool, validate: bool) -> torch.Tensor:
    """x detached, each sample flattened: (B, d), or (R, B, d) with ``batched``; checked finite."""
    lead = len(check_points(x, batched))
    if x.is_complex():
        raise ValueError(f"x must hold real numbers, got {x.dtype}")
    if validate and not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite: it contains NaN or infinite values")
    return x.detach().reshape(*x.shape[:lead], math.prod(x.shape[lead:]))  # explicit d: an empty batch has one too


def _recompute_close_pairs(squared: torch.Tensor, spread: torch.Tensor, flat: torch.Tensor) -> None:
    """Replace in place, by direct differences of ``flat``, the squared distances (both (i, j)
    and (j, i)) of the pairs i < j where the Gram matrix may have cancelled: s_ij < _TAU * S_ij."""
    close = torch.triu(squared < _TAU * spread, diagonal=1).nonzero()  # (P, 1 + batched) index rows
    if close.shape[0] == 0:
        return
    *run, i, j = close.unbind(dim=1)
    step = max(1, _CHUNK // flat.shape[-1])
    chunks = []
    for start in range(0, i.shape[0], step):
        part = slice(start, start + step)
        rows = tuple(r[part] for r in run)
        chunks.append((flat[(*rows, i[part])] - flat[(*rows, j[part])]).square().sum(dim=-1))
    values = torch.cat(chunks)
    squared[(*run, i, j)] = values
    squared[(*run, j, i)] = values
