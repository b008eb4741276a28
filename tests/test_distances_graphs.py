import math

import pytest
import torch

import localmixup as lm
from localmixup.distances import DIRECT_MAX_DIM


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


def _direct(x):
    """Distances of the rows of x (..., B, d), from float64 differences."""
    flat = x.double()
    return (flat.unsqueeze(-2) - flat.unsqueeze(-3)).norm(dim=-1)


def _clustered(runs=(), size=48, dim=3072, seed=0):
    """Images far from the origin: pairs at every scale, from near-duplicates to strangers."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(*runs, 6, dim, generator=g)
    scales = torch.logspace(-6, 0, size // 6).repeat_interleave(6)[:, None]
    x = 50.0 + centres.repeat_interleave(size // 6, dim=-2) + scales * torch.randn(*runs, size, dim, generator=g)
    return x


@pytest.mark.parametrize("runs", [(), (3,)])
def test_float32_gram_with_close_pairs_recomputed_meets_the_error_bound(runs):
    x = _clustered(runs)
    d = lm.pairwise_distances(x, batched=bool(runs))
    exact = _direct(x)
    off = ~torch.eye(48, dtype=torch.bool).expand_as(exact)
    relative = ((d.double() - exact).abs() / exact)[off]
    gamma = 3072 * 2.0**-24 / (1 - 3072 * 2.0**-24)
    assert relative.max().item() <= 2.5 * gamma  # documented bound: about 2 gamma_d
    assert torch.equal(d, d.transpose(-1, -2)) and torch.all(d.diagonal(dim1=-2, dim2=-1) == 0)


def test_without_the_recomputation_close_pairs_would_be_wrong(monkeypatch):
    import localmixup.distances as distances

    x = _clustered()
    monkeypatch.setattr(distances, "_TAU", 0.0)  # trust the float32 Gram matrix everywhere
    d = lm.pairwise_distances(x)
    exact = _direct(x)
    off = ~torch.eye(48, dtype=torch.bool)
    assert ((d.double() - exact).abs() / exact)[off].max().item() > 0.5


def test_device_and_compiled_path_uses_a_float64_gram(monkeypatch):
    x = _clustered(size=12, dim=64)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    d = lm.pairwise_distances(x).double()
    exact = _direct(x)
    a = x.double() - x.double().mean(dim=0)
    spread = (a * a).sum(1)[:, None] + (a * a).sum(1)[None]
    # documented: |s^ - s| <= (2 gamma_d + 3u) S in float64, then rounding to float32
    bound = (2 * 64 + 3) * 2.0**-53 * spread / exact**2 / 2 + 2.0**-24
    off = ~torch.eye(12, dtype=torch.bool)
    assert torch.all(((d - exact).abs() / exact)[off] <= 2 * bound[off])


def test_few_features_use_direct_differences():
    x = 1000.0 + torch.randn(30, 2, generator=torch.Generator().manual_seed(0)) * 1e-3
    torch.testing.assert_close(lm.pairwise_distances(x).double(), _direct(x), rtol=1e-5, atol=0)


def _permutations(lead, generator):
    if len(lead) == 1:
        return torch.randperm(lead[0], generator=generator)
    return torch.stack([torch.randperm(lead[1], generator=generator) for _ in range(lead[0])])


@pytest.mark.parametrize("shape, batched", [((97, 2), False), ((6, 41, 2), True), ((50, 1), False), ((33, 3, 2, 2), False),
                                            ((40, 32), False), ((40, 33), False), ((4, 30, 3, 8, 8), True)])
def test_paired_distances_and_weights_equal_the_full_graph_read_at_the_pairs(shape, batched):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g) * 10.0 ** torch.randint(-3, 3, (), generator=g).item()
    lead = shape[:2] if batched else shape[:1]
    partner = _permutations(lead, g)
    full = lm.pairwise_distances(x, batched=batched)
    read = lambda m: m.gather(-1, partner[..., None]).squeeze(-1)
    few = x[(0,) * len(lead)].numel() <= DIRECT_MAX_DIM
    paired = lm.paired_distances(x, partner, batched=batched)
    if few:
        assert torch.equal(paired, read(full))  # bit for bit
    else:  # the matrix comes from a Gram matrix, the pairs from direct differences
        torch.testing.assert_close(paired, read(full), rtol=2e-6, atol=0)
        direct = (x.flatten(len(lead)).double() - x.flatten(len(lead)).double().gather(
            -2, partner[..., None].expand(*lead, x[(0,) * len(lead)].numel()))).norm(dim=-1)
        torch.testing.assert_close(paired.double(), direct, rtol=4e-7, atol=0)  # the more accurate
    eps = float(full.median())  # about half the pairs on each side of the threshold
    for graph, kwargs in (("threshold", {"eps": eps}), ("exp", {"decay": 1.0 / eps}), ("knn", {"k": 3}), ("none", {})):
        reference = read(lm.locality_weights(x, graph, batched=batched, **kwargs))
        got = lm.pair_weights(x, partner, graph, batched=batched, **kwargs)
        assert got.shape == tuple(lead) and got.dtype == torch.float32
        if graph == "exp":  # exp is vectorised differently over a matrix and a row: within an ulp (more above 32 features)
            torch.testing.assert_close(got, reference, rtol=2e-7 if few else 4e-6, atol=0)
        elif graph == "threshold" and not few:  # the same side of eps unless a distance lies within rounding of it
            close = (read(full) - eps).abs() <= 2e-6 * eps
            assert torch.equal(got[~close], reference[~close]), graph
        else:
            assert torch.equal(got, reference), graph


@pytest.mark.parametrize("features", [2, 1024])
def test_paired_distances_and_weights_compute_only_the_pairs(monkeypatch, features):
    import localmixup.distances as distances
    import localmixup.graphs as graphs

    calls = []
    monkeypatch.setattr(distances, "pairwise_distances", lambda *a, **k: calls.append(a) or torch.zeros(()))
    monkeypatch.setattr(graphs, "pairwise_distances", lambda *a, **k: calls.append(a) or torch.zeros(()))
    x = torch.randn(500, features)
    d = distances.paired_distances(x, torch.randperm(500))
    w = graphs.pair_weights(x, torch.randperm(500), "exp", decay=0.1)
    assert d.shape == w.shape == (500,) and not calls  # never the 500 x 500 matrix


@pytest.mark.parametrize("partner, message", [
    (torch.arange(5).float(), r"partner must be an integer tensor of shape \(5,\)"),
    (torch.arange(4), r"partner must be an integer tensor of shape \(5,\)"),
    ([0, 1, 2, 3, 4], "partner must be an integer tensor"),
    (torch.tensor([0, 1, 2, 3, 5]), r"partner must hold indices in \[0, 4\]"),
    (torch.tensor([0, 1, 2, 3, -1]), r"partner must hold indices in \[0, 4\]"),
])
def test_paired_inputs_name_the_partner_and_its_range(partner, message):
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match=message):
        lm.paired_distances(x, partner)
    with pytest.raises(ValueError, match=message):
        lm.pair_weights(x, partner, "threshold", eps=1.0)


@pytest.mark.parametrize("features", [2, 300])
def test_intruders_are_the_virtual_points_nearest_to_another_class(features):
    from localmixup.intrusion import intruders, intrusion_rate

    g = torch.Generator().manual_seed(features)
    x_train, y_train = torch.randn(400, features, generator=g), torch.randint(0, 3, (400,), generator=g)
    x_virtual, y_virtual = torch.randn(50, features, generator=g), torch.randint(0, 3, (50,), generator=g)
    nearest = ((x_virtual.double()[:, None] - x_train.double()[None]) ** 2).sum(-1).argmin(1)  # brute force
    expected = y_train[nearest] != y_virtual
    assert torch.equal(intruders(x_virtual, y_virtual, x_train, y_train), expected)
    assert intrusion_rate(x_virtual, y_virtual, x_train, y_train) == pytest.approx(float(expected.float().mean()))
    assert not intruders(x_train[:20], y_train[:20], x_train, y_train).any()  # a training point is its own neighbour
