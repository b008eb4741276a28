"""Exact 1-D (Local) Mixup optimum: extremes, structure, symmetry, brute force, periodic and linear cases."""

import numpy as np
import pytest
from scipy import stats

from localmixup.theory.one_d import (
    PiecewiseLinear,
    band_coefficients,
    band_weights,
    bias_variance,
    bin_means,
    brute_force_optimum,
    gap_scaling,
    grid_weights,
    linear_gap_operator,
    linear_gap_rms,
    within_sampling_error,
    lemma31_function,
    lemma31_operator,
    linear_invariance_defect,
    linear_optimum,
    mixup_optimum,
    optimum_operator,
    optimum_values,
    periodic_operator,
)


def _data(seed: int, n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.sort(rng.random(n)), rng.normal(size=n)


def _edges(x: np.ndarray, per: int) -> np.ndarray:
    return np.unique(np.concatenate([np.linspace(x[k], x[k + 1], per + 1) for k in range(x.size - 1)]))


def test_k0_is_erm_at_training_points_and_undefined_between():
    x, y = _data(0)
    f = mixup_optimum(x, y, band_weights(x.size, 0))
    np.testing.assert_allclose(f.at, y)
    assert np.isnan(f((x[1:] + x[:-1]) / 2)).all()


def test_all_ones_is_mixup_and_matches_hand_computation():
    # x = 0, 1, 3; y = 0, 1, 0. On (1, 3): chords [1, 3] (density 1/2) and [0, 3] (density 1/3).
    x, y = np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0, 0.0])
    f = mixup_optimum(x, y)
    assert f.right[1] == pytest.approx((0.5 * 1 + (1 / 3) * 0) / (0.5 + 1 / 3))
    assert f.left[1] == pytest.approx((1.0 * 1 + (1 / 3) * 0) / (1 + 1 / 3))
    assert f(2.0) == pytest.approx((0.5 * 0.5 + (1 / 3) * 0) / (0.5 + 1 / 3))
    np.testing.assert_allclose(mixup_optimum(x, y, np.ones((3, 3))).right, f.right)
    np.testing.assert_allclose(f.at, y)  # self-pair atoms decide the training points


def test_piecewise_linear_between_points_and_jumps_at_points():
    x, y = _data(1)
    f = mixup_optimum(x, y)
    for k in range(x.size - 1):
        t = np.linspace(x[k], x[k + 1], 9)[1:-1]
        exact = optimum_values(x, y, t)
        np.testing.assert_allclose(exact, f(t), atol=1e-12)
        second = np.diff(exact, 2)
        assert np.abs(second).max() < 1e-10
    assert np.nanmax(np.abs(f.jumps())) > 1e-3  # Theorem 3.2's continuity fails on irregular data


def test_continuity_on_regular_grid_away_from_the_border():
    x = np.arange(12.0)
    y = np.random.default_rng(2).normal(size=12)
    f = mixup_optimum(x, y, band_weights(12, 2))
    np.testing.assert_allclose(f.left[2:-2], f.right[2:-2], atol=1e-12)


def test_beta_not_uniform_is_not_piecewise_linear_and_refused():
    x, y = _data(3)
    t = np.linspace(x[2], x[3], 7)[1:-1]
    for a in (0.5, 2.0):
        assert np.abs(np.diff(optimum_values(x, y, t, a=a), 2)).max() > 1e-6
    with pytest.raises(ValueError, match="piecewise linear only for a = 1"):
        mixup_optimum(x, y, a=2.0)


def test_one_sided_limits_follow_the_mixing_law():
    x, y = _data(4)
    k = 3
    assert optimum_values(x, y, x[k], a=0.5, side="right")[0] == pytest.approx(y[k])
    # a > 1: the chords ending at x_k have zero density there, only chords passing over it count
    w = np.ones((x.size, x.size))
    over = np.array([[(min(x[i], x[j]) < x[k] < max(x[i], x[j])) for j in range(x.size)] for i in range(x.size)], float)
    assert optimum_values(x, y, x[k], w, a=2.0, side="right")[0] == pytest.approx(optimum_values(x, y, x[k] + 1e-7, w * over, a=2.0)[0], abs=1e-5)


def test_symmetry_and_equivariance():
    x, y = _data(5)
    t = np.linspace(x[0], x[-1], 37)
    w = band_weights(x.size, 2)
    f = optimum_values(x, y, t, w)
    mirrored = optimum_values(-x[::-1], y[::-1], -t, w[::-1, ::-1])
    np.testing.assert_allclose(f, mirrored, atol=1e-12)
    np.testing.assert_allclose(optimum_values(x, -2 * y + 1, t, w), -2 * f + 1, atol=1e-12)
    np.testing.assert_allclose(optimum_values(3 * x + 1, y, 3 * t + 1, w, a=2.0), optimum_values(x, y, t, w, a=2.0), atol=1e-12)


def test_operator_rows_are_convex_combinations():
    x, _ = _data(6)
    op = optimum_operator(x, np.linspace(x[0], x[-1], 50), band_weights(x.size, 3), a=0.7, side="left")
    rows = op[~np.isnan(op).any(axis=1)]
    assert (rows >= -1e-15).all()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)


def test_duplicate_inputs_are_atoms_with_mean_output():
    x, y = np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 1.0, 3.0, 0.0])
    assert optimum_values(x, y, 1.0)[0] == pytest.approx(2.0)


@pytest.mark.parametrize("a", [1.0, 2.0])
def test_brute_force_agrees_with_exact_optimum(a):
    x, y = _data(7, n=5)
    w = band_weights(5, 2) * 0.5 + 0.5 * np.eye(5)
    edges = _edges(x, 8)
    brute, se = brute_force_optimum(x, y, edges, w, a=a, draws=50_000, seed=1)
    exact = bin_means(x, y, edges, w, a=a)
    agree, worst, threshold = within_sampling_error(brute, se, exact)
    assert agree, (worst, threshold)
    assert np.nanmax(se) < 0.02, "the check is sharp: the sampling error is small against the outputs (order 1)"
    if a == 1.0:  # linear pieces: the bin mean is the value at the bin centre
        np.testing.assert_allclose(exact, mixup_optimum(x, y, w)((edges[1:] + edges[:-1]) / 2), atol=1e-9)
    # the test can fail: a wrong law (uniform instead of Beta(2, 2)) is detected
    if a == 2.0:
        assert not within_sampling_error(brute, se, bin_means(x, y, edges, w, a=1.0))[0]


def test_standard_error_matches_the_spread_of_independent_runs():
    x, y = _data(3, n=5)
    edges = _edges(x, 6)
    exact = bin_means(x, y, edges)
    runs = [brute_force_optimum(x, y, edges, draws=400, seed=s) for s in range(60)]
    values, errors = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    observed = np.nanstd(values, axis=0, ddof=1)
    typical = np.sqrt(np.nanmean(errors**2, axis=0))
    assert np.median(typical / observed) == pytest.approx(1.0, rel=0.25)
    # the agreement check passes for (almost) every seed, at the level it promises
    assert sum(within_sampling_error(v, e, exact)[0] for v, e in zip(values, errors)) >= 58


def test_printed_lemma_differs_from_density_weighted_optimum():
    x, y = _data(8)
    printed, exact = lemma31_function(x, y), mixup_optimum(x, y)
    t = (x[1:] + x[:-1]) / 2
    assert np.abs(printed(t) - exact(t)).max() > 1e-2
    # on equally spaced points of a single interval pair both readings agree
    x3, y3 = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0])
    assert isinstance(lemma31_function(x3, y3), PiecewiseLinear)


def test_band_coefficients_and_figure2_counts():
    c1 = band_coefficients(1)
    np.testing.assert_allclose(c1, [0, 1, 0])  # K = 1: only direct chords, f*_1(x_i) = y_i
    c2p = band_coefficients(2, reading="printed")
    # printed, K = 2: self (1) + 4 direct ordered pairs x 2 + chord [-1, 1] twice at y_-1/2 + y_1/2
    np.testing.assert_allclose(c2p, [0, 1 / 11, 9 / 11, 1 / 11, 0])
    for k in (1, 3, 10):
        assert band_coefficients(k).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_band_coefficients_match_the_generic_operator(a):
    for k in (1, 2, 5):
        x, w = np.arange(-k, k + 1.0), band_weights(2 * k + 1, k)
        np.testing.assert_allclose(band_coefficients(k, a), optimum_operator(x, 0.0, w, a, "right")[0], atol=1e-12)
        np.testing.assert_allclose(band_coefficients(k, a), optimum_operator(x, 0.0, w, a, "left")[0][::-1], atol=1e-12)
    x, w = np.arange(-4, 5.0), band_weights(9, 4)
    np.testing.assert_allclose(band_coefficients(4, reading="printed"), lemma31_operator(x, 0.0, w)[0], atol=1e-12)


def test_periodic_operator_converges_to_mean_and_variance_decreases():
    y = np.random.default_rng(9).normal(size=16)
    vars_ = [bias_variance(periodic_operator(16, k) @ y, y)[1] for k in range(1, 65)]
    assert vars_[0] == pytest.approx(np.var(y))
    assert vars_[-1] < 0.01 * np.var(y)
    f = periodic_operator(16, 64) @ y
    assert np.abs(f - y.mean()).max() < 0.2 * np.abs(y - y.mean()).max()
    assert bias_variance(f, y)[0] == pytest.approx(np.var(y), rel=0.1)  # slow, about log(K)/K


def test_theorem42_bounds_measured():
    var = {k: float((band_coefficients(k) ** 2).sum()) for k in (1, 2, 4, 16, 64)}
    assert all(v <= 8 / k for k, v in var.items())  # upper bound holds
    assert var[1] < 16 / 1**2 and var[4] < 16 / 4**2  # printed lower bound fails for small K
    assert var[64] > 16 / 64**2


def test_linear_model_theorem43_conditions():
    x, y = _data(10, n=10)
    ols = np.polyfit(x, y, 1)
    np.testing.assert_allclose(linear_optimum(x, y), ols, atol=1e-10)  # Mixup = least squares
    np.testing.assert_allclose(linear_optimum(x, y, np.eye(10)), ols, atol=1e-10)
    local = linear_optimum(x, y, band_weights(10, 2))
    assert abs(local[0] - ols[0]) > 1e-2  # Local Mixup differs in general
    assert linear_invariance_defect(x, band_weights(10, 2)) > 1e-2
    assert linear_invariance_defect(x, None) < 1e-12
    np.testing.assert_allclose(linear_optimum(x, 2 * x - 1, band_weights(10, 2)), [2, -1], atol=1e-10)


def test_linear_closed_form_matches_sampled_risk():
    x, y = _data(11, n=6)
    w = band_weights(6, 1) + 0.2
    m = 4000
    lam = stats.beta.ppf((np.arange(m) + 0.5) / m, 2.0, 2.0)
    i, j = np.nonzero(w)
    xt = lam[:, None] * x[i] + (1 - lam[:, None]) * x[j]
    yt = lam[:, None] * y[i] + (1 - lam[:, None]) * y[j]
    sw = np.sqrt(np.broadcast_to(w[i, j], xt.shape)).ravel()
    design = np.stack([xt.ravel(), np.ones(xt.size)], axis=1) * sw[:, None]
    sampled = np.linalg.lstsq(design, yt.ravel() * sw, rcond=None)[0]
    np.testing.assert_allclose(linear_optimum(x, y, w, a=2.0), sampled, atol=1e-5)


def test_grid_weights_knn_threshold_and_periodic():
    np.testing.assert_allclose(grid_weights(9, k=2), band_weights(9, 2))
    np.testing.assert_allclose(grid_weights(10, eps=0.2), band_weights(10, 2))  # eps n = 2 exactly: kept
    np.testing.assert_allclose(grid_weights(10, eps=0.05), np.eye(10))  # eps < 1/n: no mixing
    w = grid_weights(8, k=1, periodic=True)
    assert w[0, 7] == w[7, 0] == 1 and (w.sum(axis=1) == 3).all()
    with pytest.raises(ValueError, match="exactly one of"):
        grid_weights(5, k=1, eps=0.1)


def _sampled_linear_fit(x, y, w, nodes=400):
    """Least-squares line of the sampled risk: every pair, stratified uniform lambda (brute force, no Q)."""
    lam = (np.arange(nodes) + 0.5) / nodes
    i, j = np.nonzero(w)
    xt = (lam[:, None] * x[i] + (1 - lam[:, None]) * x[j]).ravel()
    yt = (lam[:, None] * y[i] + (1 - lam[:, None]) * y[j]).ravel()
    sw = np.sqrt(np.broadcast_to(w[i, j], (nodes, i.size))).ravel()
    return np.linalg.lstsq(np.stack([xt, np.ones_like(xt)], 1) * sw[:, None], yt * sw, rcond=None)[0]


@pytest.mark.parametrize("weights", [dict(k=2), dict(k=2, periodic=True), dict(eps=0.25)])
def test_linear_gap_operator_matches_brute_force_minimisation(weights):
    n = 12
    x, w = np.arange(n) / n, grid_weights(n, **weights)
    y = np.random.default_rng(12).normal(size=n)
    gap = linear_gap_operator(x, w) @ y
    brute = _sampled_linear_fit(x, y, w) - _sampled_linear_fit(x, y, np.ones((n, n)))
    np.testing.assert_allclose(gap, brute, atol=1e-5)  # stratified lambda: error O(1/nodes^2)
    np.testing.assert_allclose(gap, np.subtract(linear_optimum(x, y, w), linear_optimum(x, y)), atol=1e-12)
    assert np.abs(gap).max() > 1e-3  # not trivially zero


def test_linear_gap_ignores_the_linear_part_and_vanishes_without_mixing():
    n = 20
    x = np.arange(n) / n
    g = linear_gap_operator(x, grid_weights(n, k=3))
    np.testing.assert_allclose(g @ np.stack([x, np.ones(n)], 1), 0.0, atol=1e-12)
    noise = np.random.default_rng(13).normal(size=n)
    np.testing.assert_allclose(g @ (2 * x - 1 + noise), g @ noise, atol=1e-12)
    np.testing.assert_allclose(linear_gap_operator(x, np.eye(n)), 0.0, atol=1e-12)
    np.testing.assert_allclose(linear_gap_operator(x, None), 0.0, atol=1e-12)


def test_linear_gap_rms_matches_monte_carlo():
    n, sigma, draws = 30, 2.0, 4000
    x, w = np.arange(n) / n, grid_weights(n, eps=0.1)
    gaps = np.random.default_rng(14).normal(scale=sigma, size=(draws, n)) @ linear_gap_operator(x, w).T
    rms = np.sqrt(np.mean(gaps**2, axis=0))
    # the mean of squared normals has relative standard error sqrt(2 / draws); the RMS half of it
    np.testing.assert_allclose(rms, linear_gap_rms(x, w, sigma), rtol=5 * np.sqrt(0.5 / draws))


def test_gap_scaling_on_the_grid():
    ns = np.array([100, 300, 1000])
    knn = np.array([linear_gap_rms(np.arange(n) / n, grid_weights(n, k=2)) for n in ns])
    thr = np.array([linear_gap_rms(np.arange(n) / n, grid_weights(n, eps=0.1)) for n in ns])
    smooth = np.array([linear_gap_operator(np.arange(n) / n, grid_weights(n, eps=0.1)) @ np.exp(2 * np.arange(n) / n) for n in ns])
    assert gap_scaling(ns, knn[:, 0]).exponent == pytest.approx(-1.0, abs=0.05)  # boundary effect: 1/n
    assert gap_scaling(ns, thr[:, 0]).exponent == pytest.approx(-0.5, abs=0.05)  # fixed eps: 1/sqrt(n)
    assert gap_scaling(ns, smooth[:, 0]).verdict == "persists"
    assert gap_scaling(ns, knn[:, 1]).verdict == "vanishes"
    assert gap_scaling(ns, np.zeros(3)).verdict == "exact"
    assert gap_scaling([1, 10, 100], [1.0, 0.1, 0.01]).exponent == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mixup_optimum(np.array([1.0, 0.0]), np.zeros(2)), "sorted"),
        (lambda: mixup_optimum(np.arange(3.0), np.zeros(2)), "y must be"),
        (lambda: mixup_optimum(np.arange(3.0), np.zeros(3), -np.ones((3, 3))), "non-negative"),
        (lambda: optimum_values(np.arange(3.0), np.zeros(3), 1.0, a=0.0), "a must be"),
        (lambda: optimum_values(np.arange(3.0), np.zeros(3), 1.0, side="up"), "side must be"),
        (lambda: band_weights(4, -1), "k must be"),
        (lambda: band_coefficients(2, reading="paper"), "reading must be"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
