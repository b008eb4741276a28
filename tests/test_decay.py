"""The automatic decay rate (localmixup.decay): analytic cases, invariances, subsampling, bad input."""

import math

import pytest
import torch

from localmixup.decay import auto_decay, mean_pair_weight, nearest_other_class_distances, pair_distances


def cloud(n=60, dim=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return torch.randn(n, dim, generator=g, dtype=torch.float64) + 2.0 * y[:, None], y


# --- analytic cases ---------------------------------------------------------------------------

def test_nearest_other_class_rate_on_a_line():
    # class 0 at 0 and 1, class 1 at 3 and 7: nearest other class 3, 2, 2, 6; median 2.5
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert nearest_other_class_distances(x, y).tolist() == [3.0, 2.0, 2.0, 6.0]
    assert auto_decay(x, y) == pytest.approx(math.log(2.0) / 2.5, rel=1e-12)
    assert auto_decay(x, y, target=0.25) == pytest.approx(math.log(4.0) / 2.5, rel=1e-12)


def test_mean_weight_rate_of_one_pair():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert auto_decay(x, rule="mean_weight", target=0.5) == pytest.approx(math.log(2.0) / 5.0, rel=1e-12)


def test_mean_weight_rate_of_equidistant_points():
    x = torch.eye(7)  # every pair at distance sqrt(2)
    assert auto_decay(x, rule="mean_weight", target=0.3) == pytest.approx(-math.log(0.3) / math.sqrt(2.0), rel=1e-12)


def test_mean_weight_rate_with_three_distances():
    # distances 1, 2, 3: with u = exp(-rate), (u + u^2 + u^3) / 3 = target; u = 1/2 gives rate ln 2
    x = torch.tensor([[0.0], [1.0], [3.0]])
    target = (0.5 + 0.25 + 0.125) / 3
    assert auto_decay(x, rule="mean_weight", target=target) == pytest.approx(math.log(2.0), rel=1e-12)


def test_mean_weight_rate_reaches_its_target():
    x, _ = cloud(200)
    distances = pair_distances(x)
    for target in (0.9, 0.5, 0.2, 0.01):
        rate = auto_decay(x, rule="mean_weight", target=target)
        assert mean_pair_weight(distances, rate).item() == pytest.approx(target, rel=1e-10)


# --- invariances ------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["nearest_other_class", "mean_weight"])
def test_scaling_the_data_divides_the_rate(rule):
    x, y = cloud()
    labels = y if rule == "nearest_other_class" else None
    rate = auto_decay(x, labels, rule=rule)
    for c in (0.01, 3.0, 255.0):
        assert auto_decay(c * x, labels, rule=rule) == pytest.approx(rate / c, rel=1e-10)


@pytest.mark.parametrize("rule", ["nearest_other_class", "mean_weight"])
def test_translation_rotation_and_order_change_nothing(rule):
    x, y = cloud()
    labels = y if rule == "nearest_other_class" else None
    rate = auto_decay(x, labels, rule=rule)
    g = torch.Generator().manual_seed(1)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    order = torch.randperm(x.shape[0], generator=g)
    assert auto_decay(x + 1e3, labels, rule=rule) == pytest.approx(rate, rel=1e-9)
    assert auto_decay(x @ rotation, labels, rule=rule) == pytest.approx(rate, rel=1e-10)
    assert auto_decay(x[order], None if labels is None else labels[order], rule=rule) == pytest.approx(rate, rel=1e-12)


def test_images_are_flattened_and_uint8_accepted():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.arange(40) % 4
    expected = auto_decay(x.reshape(40, -1).double(), y)
    assert auto_decay(x, y) == pytest.approx(expected, rel=1e-12)


# --- distances and subsampling ----------------------------------------------------------------

def test_nearest_other_class_distances_match_brute_force():
    x, y = cloud(80)
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    d[y[:, None] == y[None, :]] = math.inf
    assert torch.allclose(nearest_other_class_distances(x, y, chunk=7), d.min(dim=1).values, rtol=1e-10)


def test_subsample_queries_search_every_point():
    x, y = cloud(300)
    every = nearest_other_class_distances(x, y)
    g = torch.Generator().manual_seed(3)
    chosen = torch.randperm(300, generator=g)[:50]
    sub = nearest_other_class_distances(x, y, samples=50, seed=3)
    assert torch.allclose(sub, every[chosen], rtol=1e-12)  # candidates are all N points, not the subsample
    assert auto_decay(x, y, samples=50, seed=3) == auto_decay(x, y, samples=50, seed=3)
    assert auto_decay(x, y, samples=50, seed=3) != auto_decay(x, y, samples=50, seed=4)


def test_pair_distances_of_a_subsample():
    x, _ = cloud(50)
    assert torch.allclose(pair_distances(x), torch.pdist(x), rtol=1e-10)
    sub = pair_distances(x, samples=10, seed=2)
    chosen = torch.randperm(50, generator=torch.Generator().manual_seed(2))[:10]
    assert sub.shape == (45,)
    assert torch.allclose(sub, torch.pdist(x[chosen]), rtol=1e-10)


def test_mean_pair_weight_of_rates_and_batches():
    distances = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    weights = mean_pair_weight(distances, [0.0, math.log(2.0)])
    assert weights.shape == (2,)
    assert weights.tolist() == pytest.approx([1.0, 0.875 / 3])
    # permutation pairing in a batch of 4: the partner is the sample itself (weight 1) with probability 1/4
    assert mean_pair_weight(distances, math.log(2.0), batch_size=4).item() == pytest.approx(0.25 + 0.75 * 0.875 / 3)


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(rule="knn"), "rule must be one of"),
    (dict(target=0.0), "target must be a real number in"),
    (dict(target=1.0), "target must be a real number in"),
    (dict(samples=1), "samples must be an integer"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(chunk=0), "chunk must be an integer"),
])
def test_bad_parameters_are_named(kwargs, message):
    x, y = cloud(10)
    with pytest.raises(ValueError, match=message):
        auto_decay(x, y, **kwargs)


def test_bad_data_is_named():
    x, y = cloud(10)
    with pytest.raises(ValueError, match="x must be a tensor"):
        auto_decay(x[:1], y[:1])
    with pytest.raises(ValueError, match="x must be finite"):
        auto_decay(torch.where(torch.arange(10)[:, None] == 3, math.nan, x), y)
    with pytest.raises(ValueError, match="y .* is needed"):
        auto_decay(x)
    with pytest.raises(ValueError, match="y must be"):
        auto_decay(x, y.double())
    with pytest.raises(ValueError, match="y must be"):
        auto_decay(x, y[:5])
    with pytest.raises(ValueError, match="at least two classes"):
        auto_decay(x, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="y is not used"):
        auto_decay(x, y, rule="mean_weight")
    with pytest.raises(ValueError, match="decay must be"):
        mean_pair_weight(pair_distances(x), -1.0)
    with pytest.raises(ValueError, match="batch_size must be"):
        mean_pair_weight(pair_distances(x), 1.0, batch_size=0)


def test_unreachable_rates_are_refused():
    same = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="median nearest-other-class distance of 0"):
        auto_decay(same, torch.tensor([0, 1, 0, 1]))
    # 2 points at 0 and 1 at 1: 1 of the 3 pairs is a duplicate, whose weight stays 1
    x = torch.tensor([[0.0], [0.0], [1.0]])
    assert auto_decay(x, rule="mean_weight", target=0.5) == pytest.approx(math.log(4.0), rel=1e-12)
    with pytest.raises(ValueError, match="target=0.3 cannot be reached"):
        auto_decay(x, rule="mean_weight", target=0.3)
