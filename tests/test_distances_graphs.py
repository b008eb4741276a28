import math

import pytest
import torch

import localmixup as lm


def test_distances_exact_for_close_points_where_matmul_cancels():
    # Points far from the origin, two of them 1e-3 apart per coordinate: torch.cdist's
    # default |a|^2 + |b|^2 - 2ab path (used above 25 rows) loses that distance in float32.
    x = torch.randn(64, 3072, generator=torch.Generator().manual_seed(0)) + 100.0
    x[1] = x[0] + 1e-3
    reference = (x[0].double() - x[1].double()).norm().item()
    assert lm.pairwise_distances(x)[0, 1].item() == pytest.approx(reference, rel=1e-4)
    assert torch.cdist(x, x)[0, 1].item() != pytest.approx(reference, rel=0.5)  # the default really is wrong here


def test_distances_shape_symmetry_diagonal_and_any_input_shape():
    x = torch.randn(7, 3, 5, 2, generator=torch.Generator().manual_seed(0))
    d = lm.pairwise_distances(x)
    assert d.shape == (7, 7) and d.dtype == torch.float32
    assert torch.equal(d, d.T) and torch.all(d.diagonal() == 0)
    expected = (x.reshape(7, 1, -1) - x.reshape(1, 7, -1)).norm(dim=-1)
    torch.testing.assert_close(d, expected)


def test_distances_float32_under_bf16_autocast_and_no_grad():
    x = torch.randn(5, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = lm.pairwise_distances(x.to(torch.bfloat16))
    assert d.dtype == torch.float32 and not d.requires_grad


def test_knn_graph_keeps_self_and_k_nearest():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    w = lm.locality_weights(x, "knn", k=1)
    assert torch.equal(w, torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]))
    assert torch.equal(lm.locality_weights(x, "knn", k=0), torch.eye(4))
    assert torch.equal(lm.locality_weights(x, "knn", k=3), torch.ones(4, 4))
    assert torch.equal(lm.locality_weights(x, "knn", k=10), torch.ones(4, 4))


def test_threshold_and_exp_graphs():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert torch.equal(lm.locality_weights(x, "threshold", eps=5.0), torch.ones(2, 2))
    assert torch.equal(lm.locality_weights(x, "threshold", eps=4.99), torch.eye(2))
    assert torch.equal(lm.locality_weights(x, "threshold", eps=math.inf), torch.ones(2, 2))
    w = lm.locality_weights(x, "exp", decay=0.2)
    torch.testing.assert_close(w, torch.tensor([[1.0, math.exp(-1)], [math.exp(-1), 1.0]]))
    assert torch.equal(lm.locality_weights(x, "exp", decay=0.0), torch.ones(2, 2))
    assert torch.equal(lm.locality_weights(x, "none"), torch.ones(2, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"graph": "knn", "k": -1}, r"k must be an integer in \[0, inf\)"),
        ({"graph": "knn", "k": 1.5}, "k must be an integer"),
        ({"graph": "threshold", "eps": -0.1}, r"eps must be a real number in \[0, inf\)"),
        ({"graph": "exp", "decay": -1.0}, r"decay must be a real number in \[0, inf\)"),
        ({"graph": "exp", "decay": float("nan")}, "decay must be a real number"),
        ({"graph": "gaussian", "decay": 1.0}, "graph must be one of 'knn', 'threshold', 'exp', 'none'"),
        ({"graph": "exp"}, "graph='exp' needs the parameter decay"),
        ({"graph": "knn", "k": 2, "eps": 1.0}, "eps is not a parameter of graph='knn'"),
    ],
)
def test_graph_bad_input_names_parameter_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lm.locality_weights(torch.zeros(3, 2), **kwargs)
