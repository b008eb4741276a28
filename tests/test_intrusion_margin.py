"""Manifold-intrusion margin (paper, Section 4.3 of the long version) against brute force on tiny data."""

import itertools
import math

import numpy as np
import pytest
import torch

import localmixup.intrusion as intrusion
from localmixup.intrusion import intrusion_margin, intrusion_margins, segment_distances, threshold_virtual_points


def _point_to_segment(p, a, b):
    """Plain-Python distance from p to the closed segment [a, b]: projection clamped to the ends."""
    u = b - a
    length2 = float(u @ u)
    t = 0.0 if length2 == 0 else min(1.0, max(0.0, float((p - a) @ u) / length2))
    return float(np.linalg.norm(p - (a + t * u)))


def _brute_margin(x, y, eps):
    best = math.inf
    for c in set(y.tolist()):
        own, others = x[y == c], x[y != c]
        for i, j in itertools.combinations_with_replacement(range(len(own)), 2):
            if np.linalg.norm(own[i] - own[j]) <= eps:
                best = min(best, min(_point_to_segment(p, own[i], own[j]) for p in others))
    return best


def test_segment_distances_against_plain_formula_and_sampling():
    g = torch.Generator().manual_seed(0)
    p, a, b = torch.randn(7, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    b[2] = a[2]  # a degenerate segment is a point
    d = segment_distances(p, a, b)
    brute = np.array([[_point_to_segment(pi, ai, bi) for ai, bi in zip(a.double().numpy(), b.double().numpy())] for pi in p.double().numpy()])
    np.testing.assert_allclose(d.numpy(), brute, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d[:, 2].numpy(), (p.double() - a[2].double()).norm(dim=1).numpy(), rtol=1e-12)
    # a dense sampling of each segment never comes closer than the exact distance, and gets within its step
    lam = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None, None]
    sampled = (lam * a.double() + (1 - lam) * b.double())  # (L, S, 3)
    near = (p.double()[None, :, None, :] - sampled[:, None]).norm(dim=-1).amin(dim=0)
    assert (near >= d - 1e-12).all() and (near - d).max() < (b - a).double().norm(dim=1).max() / 20000


def test_hand_example_eps_excludes_the_long_segment():
    x = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.5]])
    y = torch.tensor([1, 1, 0])
    assert intrusion_margin(x, y) == pytest.approx(0.5)  # Mixup: the segment of class 1 passes under the point
    assert intrusion_margin(x, y, eps=2.0) == pytest.approx(0.5)  # length 2 <= eps: admissible
    assert intrusion_margin(x, y, eps=1.5) == pytest.approx(math.sqrt(1.25))  # only the points themselves remain
    assert intrusion_margin(x, y, eps=0.0) == pytest.approx(math.sqrt(1.25))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_margins_match_brute_force_on_tiny_data(seed, monkeypatch):
    monkeypatch.setattr(intrusion, "_SEGMENT_CHUNK", 7)  # many chunks, some of one segment
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(13, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (13,), generator=g)
    grid = [0.0, 0.5, 1.0, 2.0, math.inf]
    got = intrusion_margins(x, y, grid)
    want = [_brute_margin(x.numpy(), y.numpy(), e) for e in grid]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert (got.diff() <= 0).all()  # more admissible segments: a smaller margin
    inter = min(float((x[i] - x[j]).norm()) for i in range(13) for j in range(13) if y[i] != y[j])
    assert got[0] == pytest.approx(inter)  # eps = 0: training without mixing, the class-to-class distance
    assert intrusion_margin(x, y) == pytest.approx(float(got[-1]))


def test_single_class_and_bad_eps():
    assert intrusion_margin(torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)) == math.inf
    with pytest.raises(ValueError, match="eps must be"):
        intrusion_margins(torch.zeros(3, 2), torch.tensor([0, 1, 1]), [-1.0])


def test_threshold_virtual_points():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(30, 2, generator=g), torch.randint(0, 2, (30,), generator=g)
    xv, yv = threshold_virtual_points(x, y, 0.0, 200, torch.Generator().manual_seed(5))
    assert xv.shape == (200, 2) and yv.shape == (200,)
    match = (xv[:, None, :] == x[None]).all(-1)  # eps = 0: the training points themselves, with their labels
    assert match.any(1).all() and (y[match.float().argmax(1)] == yv).all()
    eps = 0.3
    xv, _ = threshold_virtual_points(x, y, eps, 500, torch.Generator().manual_seed(6))
    # a point of a segment of length <= eps lies within eps / 2 of one of its ends
    assert torch.cdist(xv.double(), x.double()).amin(1).max() <= eps / 2 + 1e-6
    x2, y2 = torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1])
    xv, yv = threshold_virtual_points(x2, y2, 5.0, 2000, torch.Generator().manual_seed(7))
    assert (yv == torch.where(xv[:, 0] <= 0.5, 0, 1)).float().mean() > 0.999  # dominant label (ties at 1/2 aside)
