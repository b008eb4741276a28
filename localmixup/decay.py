"""An automatic decay rate for the exponential locality graph ``W = exp(-decay * D)``.

The paper leaves the rate as a hyper-parameter and names "a deterministic method to select
it" as future work. This module derives it from the training data alone, under one of two
rules (:func:`auto_decay`):

* ``"nearest_other_class"`` (needs labels): for each training point ``x_i``, ``d_i`` is the
  distance to the nearest training point of another class: how far one can go from ``x_i``
  before meeting another class. The rate is ``ln 2 / median_i d_i`` (for an even count, the
  median is the mean of the two middle values): a pair as far apart as
  the typical point is from another class counts half, shorter pairs (whose segment stays
  near ``x_i``) count more, and longer ones, whose segment can cross other classes (manifold
  intrusion), fall off exponentially. Nearest-neighbour distances shrink as the data set grows,
  so the rate belongs to the training set it was computed on (all of it: pass the whole split).
* ``"mean_weight"`` (labels unused): the rate at which the mean weight of a random pair of
  distinct training points equals ``target``: a set fraction of Mixup's pairs is kept on
  average, whatever the scale of the data.

Both rates are in inverse units of the distances: scaling the data by ``c`` divides the rate by
``c``, and translating or rotating it changes nothing. Distances are Euclidean between
flattened samples, computed in float64 after centring (exact small distances, as
:func:`~localmixup.distances.pairwise_distances`); feed the data exactly as the mixing sees
it (normalised, at the training resolution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from localmixup.checks import check_choice, check_integer, check_real, check_seed

RULES = ("nearest_other_class", "mean_weight")


def auto_decay(x: torch.Tensor, y: torch.Tensor | None = None, *, rule: str = "nearest_other_class",
               target: float = 0.5, samples: int = 2000, seed: int = 0, chunk: int = 4096) -> float:
    """The decay rate of the exponential graph chosen from the training data by ``rule``.

    Args:
        x: training inputs (N, ...), N >= 2, finite; each sample is flattened.
        y: (N,) integer class labels (``"nearest_other_class"`` only; at least two classes).
        rule: ``"nearest_other_class"`` or ``"mean_weight"`` (see the module docstring).
        target: ``"nearest_other_class"``: the weight of a pair at the median nearest-other-class
            distance (default 1/2: the rate is ``-ln(target) / median_i d_i``);
            ``"mean_weight"``: the mean weight of a random pair of distinct points. In (0, 1).
        samples: size of the seeded subsample: the query points ``x_i`` whose ``d_i`` is taken
            (their nearest other-class point is searched among all N points), or the points whose
            ``samples * (samples - 1) / 2`` distinct pairs are averaged; integer >= 2. With
            N <= samples every point is used and the result does not depend on ``seed``.
        seed: seed of the subsample (integer in [0, 2**64)).
        chunk: reference points per distance block, which bounds memory to about
            ``samples * chunk`` float64 numbers (integer >= 1); it does not change the result.

    Returns:
        The rate, a float in (0, inf).

    Raises:
        ValueError: naming the parameter, for a bad argument; for ``"nearest_other_class"`` if the
            median nearest-other-class distance is 0, for ``"mean_weight"`` if at least ``target``
            of the pairs are duplicates (no finite rate reaches the target).
    """
    rule = check_choice("rule", rule, RULES)
    flat = _flatten("x", x)
    target = check_real("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    samples = check_integer("samples", samples, low=2)
    seed = check_seed("seed", seed)
    chunk = check_integer("chunk", chunk, low=1)
    if rule == "mean_weight":
        if y is not None:
            raise ValueError("y is not used by rule='mean_weight' (it needs no labels); pass y=None")
        return _rate_for_mean_weight(pair_distances(flat, samples=samples, seed=seed), target)
    if y is None:
        raise ValueError("y (the class labels) is needed by rule='nearest_other_class'; rule='mean_weight' needs none")
    distances = nearest_other_class_distances(flat, y, samples=samples, seed=seed, chunk=chunk)
    ordered = distances.sort().values
    typical = 0.5 * (ordered[(ordered.numel() - 1) // 2] + ordered[ordered.numel() // 2]).item()  # the median
    if typical == 0.0:
        raise ValueError("x has a median nearest-other-class distance of 0 (identical inputs with different labels "
                         "for at least half of the points): no finite decay rate separates the classes")
    return -math.log(target) / typical


def nearest_other_class_distances(x: torch.Tensor, y: torch.Tensor, *, samples: int = 2000, seed: int = 0,
                                  chunk: int = 4096) -> torch.Tensor:
    """Distance from each of a seeded subsample of points to the nearest point of another class.

    Args:
        x: (N, ...) inputs, N >= 2, finite. y: (N,) integer labels with at least two classes.
        samples, seed, chunk: as in :func:`~.auto_decay` (queries: ``min(N, samples)`` points drawn
            without replacement; candidates: all N points, ``chunk`` at a time).

    Returns:
        float64 tensor (min(N, samples),) of distances >= 0, the queries in the subsample's order.
    """
    flat = _flatten("x", x)
    n = flat.shape[0]
    if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.is_floating_point() or y.is_complex():
        got = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be (N,) = ({n},) integer class labels, got {got}")
    if y.unique().numel() < 2:
        raise ValueError("y must hold at least two classes: the distance to another class is undefined otherwise")
    samples = check_integer("samples", samples, low=2)
    chunk = check_integer("chunk", chunk, low=1)
    queries = _subsample(n, samples, check_seed("seed", seed), flat.device)
    centre = flat.mean(dim=0, dtype=torch.float64)
    q = flat[queries].double() - centre
    q_norms = (q * q).sum(dim=1)
    labels = y.to(flat.device)
    nearest = torch.full((q.shape[0],), math.inf, dtype=torch.float64, device=flat.device)
    for start in range(0, n, chunk):
        r = flat[start:start + chunk].double() - centre
        squared = q_norms[:, None] + (r * r).sum(dim=1)[None, :] - 2.0 * (q @ r.T)
        squared[labels[queries][:, None] == labels[None, start:start + chunk]] = math.inf
        nearest = torch.minimum(nearest, squared.min(dim=1).values)
    return nearest.clamp_min_(0.0).sqrt_()


def pair_distances(x: torch.Tensor, *, samples: int = 2000, seed: int = 0) -> torch.Tensor:
    """Distances of every pair of distinct points of a seeded subsample of ``x``.

    Args:
        x: (N, ...) inputs, N >= 2, finite. samples, seed: as in :func:`~.auto_decay`.

    Returns:
        float64 tensor (m (m - 1) / 2,) of distances >= 0 with m = min(N, samples), in the
        order of ``torch.triu_indices(m, m, 1)`` over the subsample.
    """
    flat = _flatten("x", x)
    chosen = _subsample(flat.shape[0], check_integer("samples", samples, low=2), check_seed("seed", seed),
                        flat.device)
    points = flat[chosen].double()
    points = points - points.mean(dim=0)
    norms = (points * points).sum(dim=1)
    i, j = torch.triu_indices(points.shape[0], points.shape[0], 1, device=flat.device)
    squared = norms[:, None] + norms[None, :] - 2.0 * (points @ points.T)
    return squared[i, j].clamp_min_(0.0).sqrt_()


def mean_pair_weight(distances: torch.Tensor, decay: float | Sequence[float] | torch.Tensor,
                     *, batch_size: int | None = None) -> torch.Tensor:
    """Mean weight ``exp(-decay * D)`` of a random pair, for one or several rates.

    Args:
        distances: (P,) distances of random distinct pairs (e.g. :func:`~.pair_distances`), P >= 1.
        decay: a rate or a sequence (K,) of rates, each in [0, inf).
        batch_size: None: pairs of distinct points. B (integer >= 1): the mean weight of the
            pair (i, pi(i)) of a uniform random permutation pi of a batch of B points, where
            pi(i) = i (weight 1) with probability 1/B: ``1/B + (1 - 1/B) * mean``.

    Returns:
        float64 tensor of decay's shape (0-dim for one rate), values in (0, 1].
    """
    if not isinstance(distances, torch.Tensor) or distances.ndim != 1 or distances.numel() == 0:
        got = tuple(distances.shape) if isinstance(distances, torch.Tensor) else type(distances).__name__
        raise ValueError(f"distances must be a non-empty (P,) tensor, got {got}")
    if not bool(torch.isfinite(distances).all()) or bool((distances < 0).any()):
        raise ValueError("distances must be finite and >= 0")
    rates = torch.as_tensor(decay, dtype=torch.float64, device=distances.device)
    if rates.ndim > 1 or not bool(torch.isfinite(rates).all()) or bool((rates < 0).any()):
        raise ValueError(f"decay must be a rate or a sequence of rates in [0, inf), got {decay!r}")
    mean = torch.exp(-rates[..., None] * distances.double()).mean(dim=-1)
    if batch_size is None:
        return mean
    b = check_integer("batch_size", batch_size, low=1)
    return 1.0 / b + (1.0 - 1.0 / b) * mean


def _rate_for_mean_weight(distances: torch.Tensor, target: float) -> float:
    """The rate r >= 0 with mean(exp(-r d)) = target, by Newton's method from r = 0.

    g(r) = mean(exp(-r d)) is decreasing and convex, so Newton's iterates from the left of the
    root increase monotonically to it without overshooting; g(inf) is the fraction of zero
    distances, which must lie below the target.
    """
    d = distances[distances > 0]
    if d.numel() <= (1.0 - target) * distances.numel():
        raise ValueError(f"target={target} cannot be reached: at least that fraction of the pairs are duplicates "
                         f"(distance 0), whose weight is 1 at every rate")
    rate = 0.0
    for _ in range(1000):
        w = torch.exp(-rate * distances)
        step = (w.mean().item() - target) / (distances * w).mean().item()
        if step <= 1e-15 * rate:  # converged (rounding may leave it a hair past the root: step <= 0)
            return rate
        rate += step
    raise RuntimeError(f"the rate for a mean weight of {target} did not converge (reached {rate})")


def _subsample(n: int, samples: int, seed: int, device: torch.device) -> torch.Tensor:
    if n <= samples:
        return torch.arange(n, device=device)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:samples].to(device)


def _flatten(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] < 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor (N, ...) of at least 2 samples, got {got}")
    if not (x.is_floating_point() or x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got {x.dtype}")
    flat = x.detach().reshape(x.shape[0], -1)
    if flat.is_floating_point() and not bool(torch.isfinite(flat).all()):
        raise ValueError(f"{name} must be finite: it contains NaN or infinite values")
    return flat


__all__ = ["RULES", "auto_decay", "mean_pair_weight", "nearest_other_class_distances", "pair_distances"]
