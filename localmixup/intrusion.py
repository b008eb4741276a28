"""Manifold intrusion: virtual points that land among training points of another class, and the
margin between a class and the segments that Mixup or Local Mixup draws inside another."""

from __future__ import annotations

import torch

from localmixup.distances import DIRECT_MAX_DIM, pairwise_distances
from localmixup.checks import check_batch, check_integer

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
    for name, x, y in (("y_virtual", x_virtual, y_virtual), ("y_train", x_train, y_train)):
        if y.ndim != 1:
            raise ValueError(f"{name} must hold class indices of shape ({x.shape[0]},), got shape {tuple(y.shape)}")
    if x_virtual.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"x_virtual and x_train must have the same features per sample, got {tuple(x_virtual.shape[1:])} and "
                         f"{tuple(x_train.shape[1:])}")
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
    """Fraction of virtual points whose nearest training point has another class (``intruders``).

    Returns:
        A rate in [0, 1]: 0 when every virtual point lies nearest to its own class.
    """
    return float(intruders(x_virtual, y_virtual, x_train, y_train).float().mean())


_SEGMENT_CHUNK = 1 << 15  # entries of the (points x segments) block held at once: small enough to stay in cache


def _squared_segment_distances(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, S) squared distances from float64 points p (P, d) to segments [a_s, b_s] (S, d), one feature at a time."""
    u = b - a
    length2 = u.square().sum(dim=1)
    inverse = torch.where(length2 > 0, 1.0 / torch.where(length2 > 0, length2, 1.0), 0.0)  # degenerate: t = 0
    diff = [p[:, f : f + 1] - a[:, f] for f in range(p.shape[1])]  # each (P, S)
    t = torch.zeros(p.shape[0], a.shape[0], dtype=p.dtype)
    for f, d in enumerate(diff):
        t.add_(d * u[:, f])
    t.mul_(inverse).clamp_(0.0, 1.0)
    out = torch.zeros_like(t)
    for f, d in enumerate(diff):
        out.add_(d.sub_(t * u[:, f]).square_())
    return out


def segment_distances(points: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distance from each point to each closed segment ``[start_s, end_s]``.

    Args:
        points: (P, d) points.
        start, end: (S, d) endpoints of S segments; ``start_s == end_s`` is a degenerate
            segment (a single point) and is allowed.

    Returns:
        float64 tensor (P, S) of distances >= 0, from direct differences to the closest point
        of the segment (no Gram matrix: small distances keep full precision).
    """
    p, a, b = (t.detach().double().reshape(t.shape[0], -1) for t in (points, start, end))
    if a.shape != b.shape or p.shape[1] != a.shape[1]:
        raise ValueError(f"points (P, d), start and end (S, d) must share d, got {tuple(p.shape)}, {tuple(a.shape)}, {tuple(b.shape)}")
    return _squared_segment_distances(p, a, b).sqrt()


def intrusion_margins(x: torch.Tensor, y: torch.Tensor, eps: list[float] | torch.Tensor) -> torch.Tensor:
    """Manifold-intrusion margin for each threshold of ``eps``: see :func:`intrusion_margin`.

    One pass over all same-class segments serves every threshold: each segment's distance to
    the nearest point of another class is computed once (chunked, float64), and the margin at
    ``eps`` is the smallest such distance over the segments of length ``<= eps``.

    Args:
        x: (N, ...) training inputs (flattened to (N, d)); y: (N,) class indices.
        eps: thresholds, each in [0, inf] (``inf``: every segment, i.e. Mixup).

    Returns:
        float64 tensor (len(eps),), non-increasing in eps; ``inf`` where no two classes exist.

    Cost: about ``sum_c n_c^2 / 2 * (N - n_c)`` point-to-segment distances, i.e. 5e8 for two
    classes of 800 points (about ten seconds on one CPU core; memory bounded by the chunk).
    """
    check_batch(x, y)
    if y.ndim != 1:
        raise ValueError(f"y must hold (N,) class indices, got shape {tuple(y.shape)}")
    eps = torch.as_tensor(eps, dtype=torch.float64).reshape(-1)
    if torch.isnan(eps).any() or (eps < 0).any():
        raise ValueError(f"eps must be thresholds in [0, inf], got {eps.tolist()}")
    flat = x.detach().reshape(x.shape[0], -1)
    out = torch.full(eps.shape, float("inf"), dtype=torch.float64)
    for c in torch.unique(y):
        own, others = flat[y == c], flat[y != c].double()
        if others.shape[0] == 0:
            continue
        # segment lengths as the threshold graph reads them (same distances, so same admissible pairs)
        lengths = pairwise_distances(own, validate=False).double()
        i, j = torch.triu_indices(own.shape[0], own.shape[0])  # i <= j: unordered pairs, self-pairs included
        lengths = lengths[i, j]
        # a segment matters only up to the largest finite threshold it can be admitted by
        keep = lengths <= eps.max()
        i, j, lengths = i[keep], j[keep], lengths[keep]
        ends = own.double()
        step = max(1, _SEGMENT_CHUNK // others.shape[0])
        nearest = torch.cat([_squared_segment_distances(others, ends[i[s : s + step]], ends[j[s : s + step]]).amin(dim=0)
                             for s in range(0, i.numel(), step)]).sqrt()
        admitted = lengths[None, :] <= eps[:, None]  # (E, S)
        best = torch.where(admitted, nearest[None, :], torch.full_like(nearest, float("inf"))[None, :]).amin(dim=1)
        out = torch.minimum(out, best)
    return out


def intrusion_margin(x: torch.Tensor, y: torch.Tensor, eps: float | None = None) -> float:
    """Manifold-intrusion margin: the smallest distance from a training point to an admissible
    segment joining two training points of another (same) class.

    Mixing two points of class c along a segment gives virtual points labelled c all along it;
    a point of another class at distance ``m`` from that segment forces any classifier that fits
    both to change its output by the class gap within ``m``: its Lipschitz constant is at least
    (change of output) / m (paper, Section 4.3, long version). A segment is admissible when its
    length is ``<= eps`` (the threshold graph of Local Mixup); ``eps=None`` admits every segment
    (Mixup). Self-pairs are admissible segments of length 0, so with ``eps=0`` the margin is the
    smallest distance between two points of different classes (training without mixing).

    Args:
        x: (N, ...) training inputs; y: (N,) class indices; eps: threshold in [0, inf] or None.

    Returns:
        The margin (>= 0; ``inf`` if y holds a single class).
    """
    return float(intrusion_margins(x, y, [float("inf") if eps is None else eps])[0])


def threshold_virtual_points(
    x: torch.Tensor, y: torch.Tensor, eps: float, count: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Virtual points of Local Mixup with the threshold graph, for :func:`intrusion_rate`.

    ``count`` ordered pairs (i, j) are drawn uniformly among those with ``W[i, j] = 1`` in
    :func:`~localmixup.graphs.locality_weights` (``D[i, j] <= eps``, self-pairs included, as in
    the sum of Eq. 2), with ``lam ~ U(0, 1)``; each virtual point is labelled with its dominant
    class (``y_i`` where lam >= 1/2, else ``y_j``).

    Args:
        x: (N, ...) inputs; y: (N,) class indices; eps: threshold in [0, inf];
        count: number of virtual points, >= 1; generator: torch RNG (seed it for reproducibility).

    Returns:
        ``(x_virtual, y_virtual)`` of shapes (count, ...) and (count,), x_virtual in x's dtype.
    """
    from localmixup.graphs import locality_weights

    check_batch(x, y)
    count = check_integer("count", count, low=1)
    pairs = locality_weights(x, "threshold", eps=eps).nonzero()  # (P, 2), never empty: the diagonal
    pick = pairs[torch.randint(pairs.shape[0], (count,), generator=generator)]
    lam = torch.rand(count, generator=generator, dtype=torch.float64)
    shape = (count,) + (1,) * (x.ndim - 1)
    xi, xj = x[pick[:, 0]].double(), x[pick[:, 1]].double()
    mixed = lam.reshape(shape) * xi + (1 - lam.reshape(shape)) * xj
    label = torch.where(lam >= 0.5, y[pick[:, 0]], y[pick[:, 1]])
    return mixed.to(x.dtype), label
