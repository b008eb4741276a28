"""Exact one-dimensional theory of Mixup and Local Mixup (paper, Sections 3 and 4.2).

Setting: sorted inputs ``x`` (shape (n,)), outputs ``y`` (shape (n,)), a non-negative
weight matrix ``W`` (shape (n, n); all ones for Mixup, a locality graph for Local
Mixup) and ``lam ~ Beta(a, a)``. The risk, with the squared loss, is

    R(f) = sum_{i,j} W[i, j] E_lam[(lam y_i + (1 - lam) y_j - f(lam x_i + (1 - lam) x_j))^2].

Its pointwise minimiser over all functions is a conditional mean:

* a pair with ``x_i != x_j`` reaches ``t = lam x_i + (1 - lam) x_j`` with density
  ``W[i, j] p(lam) / |x_i - x_j|``, ``lam = (t - x_j) / (x_i - x_j)``, and asks for the
  value ``lam y_i + (1 - lam) y_j`` (the chord of the pair, evaluated at ``t``);
* a pair with ``x_i == x_j`` (self-pairs ``i == j`` included) is an *atom* of mass
  ``W[i, j]`` at ``x_i`` asking for ``E[lam y_i + (1 - lam) y_j] = (y_i + y_j) / 2``.

Away from the training points ``f*`` is the density-weighted barycentre of the chords;
at a training point carrying an atom, the atom wins (a density gives a single point no
mass), so ``f*(x_k)`` is the atom's barycentre (``y_k`` for distinct inputs with
``W[k, k] > 0``). The one-sided limits at ``x_k`` are a separate, well-defined object
(``side="left"`` / ``"right"``): they are what the paper's ``f*_K(x_i)`` and Figure 2
describe. For ``a = 1`` the chord densities are constant on each interval, so ``f*`` is
linear on every open interval ``(x_k, x_{k+1})``; for ``a != 1`` it is not.

The printed Lemma 3.1 (plain barycentre over the set E(x) of combinations, each
counted once) is :func:`~.lemma31_operator` / :func:`~.lemma31_function`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from localmixup.checks import check_choice, check_integer, check_real

SIDES = ("exact", "left", "right")
READINGS = ("density", "printed")
_CHUNK = 2_000_000  # evaluation points x pairs handled at once


@dataclass(frozen=True)
class PiecewiseLinear:
    """A function linear on each open interval between knots, with explicit knot values.

    Attributes:
        knots: sorted distinct abscissae, shape (m,).
        left: left limits at the knots, shape (m,) (``nan`` where undefined, e.g. ``left[0]``).
        right: right limits at the knots, shape (m,) (``nan`` where undefined).
        at: values at the knots themselves, shape (m,).

    Calling it on points ``t`` (any shape) returns ``at`` on knots, the linear
    interpolation from ``right[k]`` to ``left[k + 1]`` inside ``(knots[k], knots[k+1])``
    and ``nan`` outside ``[knots[0], knots[-1]]``.
    """

    knots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    at: np.ndarray

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        flat = t.ravel()
        out = np.full(flat.shape, np.nan)
        k = np.clip(np.searchsorted(self.knots, flat, side="right") - 1, 0, max(len(self.knots) - 2, 0))
        inside = (flat > self.knots[0]) & (flat < self.knots[-1])
        if len(self.knots) > 1:
            lo, hi = self.knots[k], self.knots[k + 1]
            frac = (flat - lo) / (hi - lo)
            out[inside] = (self.right[k] + (self.left[k + 1] - self.right[k]) * frac)[inside]
        on_knot = np.isin(flat, self.knots)
        out[on_knot] = self.at[np.searchsorted(self.knots, flat[on_knot])]
        return out.reshape(t.shape)

    def jumps(self) -> np.ndarray:
        """``right - left`` at each knot, shape (m,); ``nan`` at the two ends."""
        return self.right - self.left


def beta_density(lam: np.ndarray, a: float) -> np.ndarray:
    """Density of Beta(a, a) at ``lam`` (any shape; values in [0, 1]), a > 0."""
    a = check_real("a", a, low=0.0, low_open=True)
    if a == 1.0:
        return np.ones_like(np.asarray(lam, dtype=float))
    return stats.beta.pdf(lam, a, a)


def _check_data(x: np.ndarray, weights: np.ndarray | None, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"x must be a finite 1-D array of shape (n,) with n >= 1, got shape {x.shape}")
    if np.any(np.diff(x) < 0):
        raise ValueError("x must be sorted in non-decreasing order (the paper's convention x_i <= x_{i+1})")
    n = x.size
    if y is not None:
        y = np.asarray(y, dtype=float)
        if y.shape != (n,) or not np.isfinite(y).all():
            raise ValueError(f"y must be a finite array of shape ({n},), got shape {y.shape}")
    w = np.ones((n, n)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n, n) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be a finite non-negative matrix of shape ({n}, {n}), got shape {w.shape}")
    return x, w


def _as_points(t: np.ndarray | float) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1 or not np.isfinite(t).all():
        raise ValueError(f"t must be a finite scalar or 1-D array, got shape {t.shape}")
    return t


def _pairs(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    i, j = np.nonzero(w > 0)
    return i, j, w[i, j], x[i] - x[j]


def _scatter(n: int, rows: int, i: np.ndarray, j: np.ndarray, ci: np.ndarray, cj: np.ndarray) -> np.ndarray:
    """Sum ``ci[r, p] e_{i[p]} + cj[r, p] e_{j[p]}`` over pairs p into a (rows, n) matrix."""
    out = np.zeros((rows, n))
    r = np.repeat(np.arange(rows), len(i))
    np.add.at(out, (r, np.tile(i, rows)), ci.ravel())
    np.add.at(out, (r, np.tile(j, rows)), cj.ravel())
    return out


def optimum_operator(
    x: np.ndarray,
    t: np.ndarray | float,
    weights: np.ndarray | None = None,
    a: float = 1.0,
    side: str = "exact",
    *,
    return_density: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Matrix ``A`` of shape (m, n) such that the exact (Local) Mixup minimiser is ``f*(t) = A @ y``.

    Args:
        x: sorted inputs, shape (n,).
        t: evaluation points, shape (m,) (or a scalar).
        weights: pair weights ``W``, shape (n, n), non-negative; ``None`` means all ones (Mixup).
        a: parameter of the mixing law Beta(a, a), a > 0.
        side: ``"exact"``: the minimiser itself (atoms decide training points; a training
            point without atom gets the mean of its one-sided limits, any value being
            optimal there); ``"left"`` / ``"right"``: one-sided limits ``f*(t-)`` / ``f*(t+)``.
            Limits at a knot: for a = 1 the chords ending at ``x_k`` on that side count with
            density ``W/|dx|``; for a < 1 their density diverges, so they decide (value
            ``y_k``); for a > 1 it vanishes, so only chords passing over ``x_k`` count
            (the ending ones only if there is no other).
        return_density: also return the total chord density at ``t`` (shape (m,),
            un-normalised, atoms excluded).

    Returns:
        ``A`` with rows summing to 1, or rows of ``nan`` where no pair reaches ``t``.
        Each row is a convex combination: the minimiser is linear in ``y``.
    """
    x, w = _check_data(x, weights)
    t = _as_points(t)
    a = check_real("a", a, low=0.0, low_open=True)
    side = check_choice("side", side, SIDES)
    n, m = x.size, t.size
    i, j, wp, dx = _pairs(x, w)
    seg, atom = dx != 0, dx == 0
    out = np.full((m, n), np.nan)
    density = np.zeros(m)
    step = max(1, _CHUNK // max(1, len(i)))
    for start in range(0, m, step):
        tt = t[start : start + step, None]
        rows = tt.shape[0]
        lam = np.where(seg, (tt - x[j]) / np.where(seg, dx, 1.0), np.nan)
        interior = seg & (lam > 0) & (lam < 1)
        dens = np.where(interior, wp * beta_density(np.clip(lam, 0, 1), a) / np.abs(np.where(seg, dx, 1.0)), 0.0)
        num = _scatter(n, rows, i, j, dens * np.where(interior, lam, 0), dens * np.where(interior, 1 - lam, 0))
        den = dens.sum(axis=1)
        density[start : start + rows] = den
        # chords ending at t, on each side: lam == 1 means t = x_i, the chord goes towards x_j
        end = seg & ((lam == 0) | (lam == 1))
        other = np.where(lam == 1, x[j], x[i])
        end_w = {
            s: np.where(end & ((other > tt) if s == "right" else (other < tt)), wp / np.abs(np.where(seg, dx, 1.0)) ** a, 0.0)
            for s in ("left", "right")
        }
        at_t = np.where(lam == 1, 1.0, 0.0)
        limits = {}
        for s, ew in end_w.items():
            e_num = _scatter(n, rows, i, j, ew * at_t, ew * (1 - at_t))
            e_den = ew.sum(axis=1)
            if a == 1.0:
                l_num, l_den = num + e_num, den + e_den
            elif a < 1.0:
                use_end = e_den > 0
                l_num = np.where(use_end[:, None], e_num, num)
                l_den = np.where(use_end, e_den, den)
            else:
                use_int = den > 0
                l_num = np.where(use_int[:, None], num, e_num)
                l_den = np.where(use_int, den, e_den)
            with np.errstate(invalid="ignore", divide="ignore"):
                limits[s] = l_num / l_den[:, None]
        if side in ("left", "right"):
            block = limits[side]
        else:
            a_w = np.where(atom & (x[i] == tt), wp, 0.0)
            a_num = _scatter(n, rows, i, j, 0.5 * a_w, 0.5 * a_w)
            a_den = a_w.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                atom_val = a_num / a_den[:, None]
                plain = num / den[:, None]
            knot = np.isin(tt[:, 0], x)
            both = np.stack([limits["left"], limits["right"]])
            mean_limits = np.where(np.isnan(both[0]), both[1], np.where(np.isnan(both[1]), both[0], both.mean(axis=0)))
            block = np.where((a_den > 0)[:, None], atom_val, np.where(knot[:, None], mean_limits, plain))
        out[start : start + rows] = block
    return (out, density) if return_density else out


def optimum_values(
    x: np.ndarray, y: np.ndarray, t: np.ndarray | float, weights: np.ndarray | None = None, a: float = 1.0, side: str = "exact"
) -> np.ndarray:
    """Exact (Local) Mixup minimiser evaluated at ``t`` (shape (m,)), for any Beta(a, a) law."""
    x, _ = _check_data(x, weights, y)
    return optimum_operator(x, t, weights, a, side) @ np.asarray(y, dtype=float)


def mixup_optimum(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, a: float = 1.0) -> PiecewiseLinear:
    """Exact minimiser of the (Local) Mixup risk with lam ~ Beta(a, a), as a :class:`~.PiecewiseLinear`.

    Only defined for a = 1 (uniform lam), the case where the minimiser *is* piecewise
    linear; for other ``a`` use :func:`~.optimum_values`, exact at any point.

    Args:
        x: sorted inputs, shape (n,); y: outputs, shape (n,); weights: W, shape (n, n)
            (``None``: all ones, i.e. Mixup); a: must be 1.
    """
    x, w = _check_data(x, weights, y)
    a = check_real("a", a, low=0.0, low_open=True)
    if a != 1.0:
        raise ValueError(f"the minimiser is piecewise linear only for a = 1 (uniform lam), got a = {a}; use optimum_values for exact values")
    knots = np.unique(x)
    y = np.asarray(y, dtype=float)
    vals = [optimum_operator(x, knots, w, 1.0, s) @ y for s in ("left", "right", "exact")]
    return PiecewiseLinear(knots, *vals)


def lemma31_operator(x: np.ndarray, t: np.ndarray | float, weights: np.ndarray | None = None, side: str = "exact") -> np.ndarray:
    """Printed Lemma 3.1 as a matrix (m, n): plain barycentre of the chords over E(t).

    Reading implemented: each ordered pair (i, j) with ``W[i, j] > 0`` whose closed
    segment contains ``t`` counts once, with weight ``W[i, j]`` (1 for Mixup); a pair
    with ``x_i == x_j`` (self-pair included) counts once, with value ``(y_i + y_j)/2``.
    ``side="left"``/``"right"``: limits, i.e. pairs whose segment extends to that side of ``t``.
    The mixing law plays no role: the printed formula ignores how often a pair reaches ``t``.
    """
    x, w = _check_data(x, weights)
    t = _as_points(t)
    side = check_choice("side", side, SIDES)
    n = x.size
    i, j, wp, dx = _pairs(x, w)
    seg = dx != 0
    lo, hi = np.minimum(x[i], x[j]), np.maximum(x[i], x[j])
    tt = t[:, None]
    if side == "exact":
        hit = np.where(seg, (lo <= tt) & (tt <= hi), x[i] == tt)
    elif side == "right":
        hit = seg & (lo <= tt) & (tt < hi)
    else:
        hit = seg & (lo < tt) & (tt <= hi)
    lam = np.where(seg, (tt - x[j]) / np.where(seg, dx, 1.0), 0.5)
    cw = np.where(hit, wp, 0.0)
    num = _scatter(n, t.size, i, j, cw * lam, cw * (1 - lam))
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / cw.sum(axis=1)[:, None]


def lemma31_function(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> PiecewiseLinear:
    """Printed Lemma 3.1 (Eq. 1) as a :class:`~.PiecewiseLinear` (it is linear between knots)."""
    x, w = _check_data(x, weights, y)
    knots = np.unique(x)
    y = np.asarray(y, dtype=float)
    vals = [lemma31_operator(x, knots, w, s) @ y for s in ("left", "right", "exact")]
    return PiecewiseLinear(knots, *vals)


def brute_force_optimum(
    x: np.ndarray,
    y: np.ndarray,
    edges: np.ndarray,
    weights: np.ndarray | None = None,
    a: float = 1.0,
    draws: int = 100_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the *sampled* risk over histogram functions (constant on each bin of ``edges``).

    Each pair with ``x_i != x_j`` gets ``draws`` independent draws of lam ~ Beta(a, a) (its
    own draws, so that pairs are independent); the minimiser of the sampled squared risk
    over histograms is, bin by bin, the W-weighted mean of the sampled targets.

    Returns ``(values, standard_errors)``, each of shape (len(edges) - 1,), ``nan`` for empty
    bins: the standard error of a bin is that of its W-weighted mean of independent draws
    (delta method: ``sqrt(sum_k w_k^2 (t_k - mean)^2) / sum_k w_k``). Compare a sampled value
    with an exact one through it (:func:`within_sampling_error`), never through a constant: a
    narrow bin holds few draws.
    """
    x, w = _check_data(x, weights, y)
    y = np.asarray(y, dtype=float)
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a strictly increasing 1-D array with at least 2 entries")
    a = check_real("a", a, low=0.0, low_open=True)
    draws = check_integer("draws", draws, low=2)
    rng = np.random.default_rng(check_integer("seed", seed, low=0))
    i, j, wp, dx = _pairs(x, w)
    keep = dx != 0
    i, j, wp = i[keep], j[keep], wp[keep]
    nb = edges.size - 1
    # per bin: sum w, sum w t, sum w^2, sum w^2 t, sum w^2 t^2 (the last three for the error)
    sums = np.zeros((5, nb))
    for p in range(i.size):
        lam = rng.beta(a, a, size=draws)
        tp = lam * x[i[p]] + (1 - lam) * x[j[p]]
        target = lam * y[i[p]] + (1 - lam) * y[j[p]]
        b = np.searchsorted(edges, tp, side="right") - 1
        ok = (b >= 0) & (b < nb)
        b, target = b[ok], target[ok]
        count = np.bincount(b, minlength=nb)
        first = np.bincount(b, weights=target, minlength=nb)
        second = np.bincount(b, weights=target**2, minlength=nb)
        sums += np.stack([count * wp[p], first * wp[p], count * wp[p] ** 2, first * wp[p] ** 2, second * wp[p] ** 2])
    mass, total, mass2, total2, squares2 = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / mass
        deviation = np.maximum(squares2 - 2 * mean * total2 + mean**2 * mass2, 0.0)  # sum w^2 (t - mean)^2
        return mean, np.sqrt(deviation) / mass


def within_sampling_error(sampled: np.ndarray, standard_error: np.ndarray, exact: np.ndarray,
                          family_level: float = 1e-3) -> tuple[bool, float, float]:
    """Whether sampled values agree with exact ones within their own sampling error.

    Each ``|sampled - exact| / standard_error`` is compared with the normal quantile at level
    ``family_level / (2 m)`` (Bonferroni over the m compared values), so that all of them pass
    with probability about ``1 - family_level`` or more when the sampler is right. Values with a
    ``nan`` (empty bins) are skipped.

    Returns ``(agree, largest standardised difference, threshold)``.
    """
    sampled, standard_error, exact = (np.asarray(v, dtype=float) for v in (sampled, standard_error, exact))
    family_level = check_real("family_level", family_level, low=0.0, low_open=True, high=1.0, high_open=True)
    ok = ~(np.isnan(standard_error) | np.isnan(sampled) | np.isnan(exact))
    z = np.abs(sampled[ok] - exact[ok]) / np.maximum(standard_error[ok], np.finfo(float).tiny)
    threshold = float(stats.norm.isf(family_level / (2 * max(int(ok.sum()), 1))))
    worst = float(z.max()) if z.size else 0.0
    return worst <= threshold, worst, threshold


def bin_means(x: np.ndarray, y: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None, a: float = 1.0, nodes: int = 16) -> np.ndarray:
    """Average of the exact minimiser over each bin, weighted by the chord density (Gauss-Legendre).

    This is the histogram that minimises the exact (not sampled) risk, computed from the
    pointwise formula of :func:`~.optimum_operator`; shape (len(edges) - 1,). Accurate for
    bins whose closure avoids the singular knots when a < 1.
    """
    x, w = _check_data(x, weights, y)
    edges = np.asarray(edges, dtype=float)
    g, gw = np.polynomial.legendre.leggauss(check_integer("nodes", nodes, low=1))
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    t = (mid[:, None] + half[:, None] * g[None, :]).ravel()
    op, dens = optimum_operator(x, t, w, a, "right", return_density=True)
    f = np.nan_to_num(op @ np.asarray(y, dtype=float))
    num = (f * dens).reshape(-1, g.size) @ gw
    den = dens.reshape(-1, g.size) @ gw
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def band_weights(n: int, k: int) -> np.ndarray:
    """kNN graph of a regular 1-D grid with ``k`` neighbours on each side: ``W[i, j] = 1{|i - j| <= k}``, shape (n, n)."""
    n = check_integer("n", n, low=1)
    k = check_integer("k", k, low=0)
    idx = np.arange(n)
    return (np.abs(idx[:, None] - idx[None, :]) <= k).astype(float)


def band_coefficients(k: int, a: float = 1.0, reading: str = "density") -> np.ndarray:
    """Coefficients of ``f*_K(x_0) = sum_o c[o + K] y_o`` on the grid Z with K neighbours on each side.

    Only inputs within K of ``x_0`` enter (a chord over ``x_0`` has length <= K), so the
    window ``-K..K`` is exact, not an approximation. ``reading="density"`` gives the
    one-sided limit of the exact minimiser (left and right limits coincide on this grid);
    ``"printed"`` gives Lemma 3.1 at the training point (self-pair counted once).
    Returns shape (2K + 1,), non-negative, summing to 1.
    """
    k = check_integer("k", k, low=1)
    reading = check_choice("reading", reading, READINGS)
    a = check_real("a", a, low=0.0, low_open=True)
    # chord [-s, m - s] (length m, 1 <= m <= K) reaches 0 at lam = (m - s)/m on y_{-s}, 1 - lam on y_{m-s}
    m, s = np.meshgrid(np.arange(1, k + 1), np.arange(0, k + 1), indexing="ij")
    exists = s <= m
    lam = np.where(exists, (m - s) / m, 0.0)
    ends = exists & ((s == 0) | (s == m))
    if reading == "printed":  # each ordered pair counts once (x2 for the two orders), the self-pair once
        weight = np.where(exists, 2.0, 0.0)
        centre_extra = 1.0
    else:  # right limit: chords with s < m; the one ending at 0 (s = 0) follows the law of lam there
        inner = np.where(exists & ~ends, beta_density(np.clip(lam, 0, 1), a) / m, 0.0)
        end_w = np.where(exists & (s == 0), 1.0 / m**a, 0.0)
        if a == 1.0:
            weight = inner + end_w
        elif a < 1.0:  # diverging density at the end: the chords ending at 0 decide
            weight = end_w
        else:  # vanishing density at the end: only chords passing over 0 count, if any
            weight = inner if inner.sum() > 0 else end_w
        centre_extra = 0.0
    c = np.zeros(2 * k + 1)
    np.add.at(c, (k - s).ravel(), (weight * lam).ravel())
    np.add.at(c, (k + m - s).ravel(), (weight * (1 - lam)).ravel())
    c[k] += centre_extra
    return c / c.sum()


def periodic_operator(n: int, k: int, a: float = 1.0, reading: str = "density") -> np.ndarray:
    """Matrix ``C`` (n, n) with ``f*_K(x_i) = (C @ y)_i`` for the n-periodic data set on Z (the paper's Z/nZ).

    The training set is ``x_i = i`` for every integer i with ``y_{i+n} = y_i``, and the kNN
    graph links inputs at most ``k`` apart (k neighbours on each side); ``k`` may exceed n.
    Rows are non-negative and sum to 1; ``C`` is circulant.
    """
    n = check_integer("n", n, low=1)
    c = band_coefficients(k, a, reading)
    first = np.zeros(n)
    np.add.at(first, np.arange(-k, k + 1) % n, c)
    return np.stack([np.roll(first, r) for r in range(n)])


def bias_variance(f_at_x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Definition 4.1 on the training set: ``Bias^2 = mean (f(x_i) - y_i)^2``, ``Var = mean (f(x_i) - mean f)^2``."""
    f_at_x, y = np.asarray(f_at_x, dtype=float), np.asarray(y, dtype=float)
    if f_at_x.shape != y.shape or f_at_x.ndim != 1:
        raise ValueError(f"f_at_x and y must both have shape (n,), got {f_at_x.shape} and {y.shape}")
    return float(np.mean((f_at_x - y) ** 2)), float(np.var(f_at_x))


def linear_optimum(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, a: float = 1.0) -> tuple[float, float]:
    """Closed-form minimiser (slope, intercept) of the (Local) Mixup risk over ``f(x) = s x + b``.

    With residuals ``r = y - s x - b`` the risk is ``r^T Q r`` where
    ``Q = m2 diag(W 1 + W^T 1) + 2 c (W + W^T)/2``, ``m2 = E[lam^2]``, ``c = E[lam (1 - lam)]``;
    the minimiser solves the weighted normal equations. Needs two distinct inputs.
    """
    x, w = _check_data(x, weights, y)
    q = linear_risk_matrix(w, a)
    design = np.stack([x, np.ones_like(x)], axis=1)
    gram = design.T @ q @ design
    if np.linalg.matrix_rank(gram) < 2:
        raise ValueError("the linear minimiser is not unique: the weighted design is singular (too few distinct, linked inputs)")
    slope, intercept = np.linalg.solve(gram, design.T @ q @ np.asarray(y, dtype=float))
    return float(slope), float(intercept)


def linear_risk_matrix(weights: np.ndarray, a: float = 1.0) -> np.ndarray:
    """Matrix Q (n, n) of the (Local) Mixup risk of a linear model in its residuals: ``R = r^T Q r``."""
    w = np.asarray(weights, dtype=float)
    a = check_real("a", a, low=0.0, low_open=True)
    m2 = (a + 1) / (2 * (2 * a + 1))  # E[lam^2] for Beta(a, a)
    c = 0.5 - m2
    return m2 * np.diag(w.sum(axis=0) + w.sum(axis=1)) + c * (w + w.T)


def linear_invariance_defect(x: np.ndarray, weights: np.ndarray | None = None, a: float = 1.0) -> float:
    """How far span{x, 1} is from being invariant under Q(W): ``||(I - P) Q X|| / ||Q X||``.

    Zero exactly when the Local Mixup and the least-squares (= Mixup) linear minimisers
    coincide for *every* output vector y.
    """
    x, w = _check_data(x, weights)
    design = np.stack([x, np.ones_like(x)], axis=1)
    qx = linear_risk_matrix(w, a) @ design
    proj = design @ np.linalg.lstsq(design, qx, rcond=None)[0]
    return float(np.linalg.norm(qx - proj) / np.linalg.norm(qx))


def grid_weights(n: int, *, k: int | None = None, eps: float | None = None, periodic: bool = False) -> np.ndarray:
    """Locality graph on the regular grid ``x_i = i / n``, i = 0..n-1 (inputs in [0, 1)), shape (n, n).

    Exactly one of:
        k: neighbours on each side (integer >= 0): ``W[i, j] = 1{|i - j| <= k}``, the kNN graph of
            Section 4.2 (:func:`band_weights`);
        eps: threshold on the input distance, in units of x (>= 0): ``W[i, j] = 1{|x_i - x_j| <= eps}``,
            compared on the integer index distance (``|i - j| <= eps n``, exact at the boundary), so the
            number of neighbours, about ``eps n`` on each side, grows with n.
    periodic: measure the index distance on Z/nZ (``min(|i - j|, n - |i - j|)``), the graph of
        Theorem 4.1 put on the inputs ``i / n`` of the line (the pairs that wrap join both ends).
    """
    n = check_integer("n", n, low=1)
    if (k is None) == (eps is None):
        raise ValueError("grid_weights needs exactly one of k (neighbours on each side) or eps (threshold)")
    idx = np.arange(n)
    gap = np.abs(idx[:, None] - idx[None, :])
    if periodic:
        gap = np.minimum(gap, n - gap)
    if k is not None:
        reach = check_integer("k", k, low=0)
    else:
        eps = check_real("eps", eps, low=0.0)
        reach = int(np.floor(eps * n * (1 + 1e-12)))  # |i - j| / n <= eps, robust to eps n landing on an integer
    return (gap <= reach).astype(float)


def linear_gap_operator(x: np.ndarray, weights: np.ndarray | None, a: float = 1.0) -> np.ndarray:
    """Matrix ``G`` of shape (2, n) with ``G @ y`` = (slope, intercept) of the Local Mixup linear
    minimiser minus those of the Mixup one (:func:`linear_optimum`), for every output vector y.

    Mixup's linear minimiser is ordinary least squares (its ``Q`` maps span{x, 1} into itself), so
    ``G = (X^T Q X)^{-1} X^T Q - X^+`` with ``X = [x, 1]`` and ``Q = Q(W)`` (:func:`linear_risk_matrix`).
    ``G X = 0``: the gap depends on y only through its least-squares residual, so it is zero for
    exactly linear outputs and has the same law for ``y = s x + b + noise`` as for the noise alone.

    Args:
        x: sorted inputs (n,), at least two distinct; weights: W (n, n), ``None`` for all ones;
        a: Beta(a, a) parameter, > 0.
    """
    x, w = _check_data(x, weights)
    design = np.stack([x, np.ones_like(x)], axis=1)
    q = linear_risk_matrix(w, a)
    gram = design.T @ q @ design
    if np.linalg.matrix_rank(gram) < 2:
        raise ValueError("the linear minimiser is not unique: the weighted design is singular (too few distinct, linked inputs)")
    return np.linalg.solve(gram, design.T @ q) - np.linalg.pinv(design)


def linear_gap_rms(x: np.ndarray, weights: np.ndarray | None, sigma: float = 1.0, a: float = 1.0) -> np.ndarray:
    """Exact root-mean-square (slope, intercept) gap, shape (2,), for outputs ``y = s x + b + e`` with
    ``e`` i.i.d. of standard deviation ``sigma`` (any s, b; includes i.i.d. outputs, s = 0):
    ``sigma * ||G_row||`` (:func:`linear_gap_operator`)."""
    sigma = check_real("sigma", sigma, low=0.0)
    return sigma * np.linalg.norm(linear_gap_operator(x, weights, a), axis=1)


@dataclass(frozen=True)
class GapScaling:
    """How a minimiser gap behaves along a sequence of grid sizes.

    Attributes:
        n: grid sizes, shape (m,), increasing.
        gap: gap magnitudes (>= 0) at each n, shape (m,).
        exponent: least-squares slope of ``log gap`` against ``log n`` (``nan`` when some gap is 0).
        exact: every gap is at most ``tolerance``.
    """

    n: np.ndarray
    gap: np.ndarray
    exponent: float
    exact: bool

    @property
    def verdict(self) -> str:
        """``"exact"``, ``"vanishes"`` (exponent <= -0.25: the gap falls at least like n^-1/4) or ``"persists"``."""
        if self.exact:
            return "exact"
        return "vanishes" if self.exponent <= -0.25 else "persists"


def gap_scaling(n: np.ndarray, gap: np.ndarray, tolerance: float = 1e-10) -> GapScaling:
    """Fit ``gap ~ C n^exponent`` (least squares in log-log) and classify it (:class:`GapScaling`).

    Args:
        n: grid sizes (m,), m >= 2, positive; gap: magnitudes (m,), >= 0;
        tolerance: gaps at most this are zero (rounding of the normal equations is about 1e-14).
    """
    n, gap = np.asarray(n, dtype=float), np.abs(np.asarray(gap, dtype=float))
    if n.ndim != 1 or n.shape != gap.shape or n.size < 2 or (n <= 0).any():
        raise ValueError(f"n and gap must be 1-D arrays of the same length >= 2 with n > 0, got shapes {n.shape} and {gap.shape}")
    exact = bool((gap <= tolerance).all())
    exponent = float(np.polyfit(np.log(n), np.log(gap), 1)[0]) if (gap > tolerance).all() else float("nan")
    return GapScaling(n, gap, exponent, exact)
