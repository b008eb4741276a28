"""Spirals (Figure 3): batched locality weights, the many-runs trainer, the resumable sweep."""

import json

import numpy as np
import pytest
import torch

from localmixup.distances import pairwise_distances
from localmixup.graphs import locality_weights
from localmixup.paper.engine.many_runs import ManyRunsConfig, init_mlp, run_generators, train_many, train_single
from localmixup.paper.spirals import make_spirals
from localmixup.paper.sweep.spirals import PAPER_BATCH_SIZES, PAPER_EPS, load_spirals_sweep, record_path, sweep_spirals

SMALL = dict(hidden=(16, 16), epochs=3)


@pytest.fixture(scope="module")
def split():
    return make_spirals(60, seed=1)


def _max_param_diff(stacked_layers, module):
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    return max(max((w - l.weight).abs().max().item(), (b - l.bias).abs().max().item()) for (w, b), l in zip(stacked_layers, linears))


# --- batched distances and weights -------------------------------------------------------


@pytest.mark.parametrize("graph, parameter", [("threshold", {"eps": 0.7}), ("knn", {"k": 3}), ("exp", {"decay": 2.0}), ("none", {})])
def test_batched_weights_equal_per_batch(graph, parameter):
    x = torch.randn(4, 9, 2, generator=torch.Generator().manual_seed(0))
    batched = locality_weights(x, graph, batched=True, **parameter)
    assert batched.shape == (4, 9, 9)
    for r in range(4):
        assert torch.equal(batched[r], locality_weights(x[r], graph, **parameter))


def test_unbatched_distances_unchanged():
    x = torch.randn(7, 3, 2)
    d = pairwise_distances(x)
    assert d.shape == (7, 7) and torch.equal(d.diagonal(), torch.zeros(7))
    assert torch.allclose(d[1, 4], (x[1] - x[4]).norm())
    assert pairwise_distances(x, batched=True).shape == (7, 3, 3)
    with pytest.raises(ValueError, match="batched"):
        pairwise_distances(torch.zeros(5), batched=True)


# --- the trainer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pairing, variant, eps",
    [("graph", "eq2", 0.8), ("permutation", "eq2", 0.8), ("permutation", "authors", 0.8), ("permutation", "authors", 0.0)],
)
def test_stacked_runs_equal_plain_loop(split, pairing, variant, eps):
    """Each stacked run follows the trajectory of the plain nn.Module + LocalMixup + mixup_loss loop."""
    config = ManyRunsConfig(eps=eps, batch_size=23, pairing=pairing, variant=variant, **SMALL)  # 96 train points: last batch partial
    seeds = [5] if variant == "authors" else [5, 11]
    result = train_many(split, seeds, config)
    for r, seed in enumerate(seeds):
        error, module = train_single(split, seed, config)
        assert _max_param_diff(result.model.run(r), module) < 1e-5
        assert result.test_error[r] == pytest.approx(error, abs=1e-6)


def test_unfused_adam_matches_the_plain_loop_tightly(split):
    config = ManyRunsConfig(eps=0.8, batch_size=20, pairing="permutation", **SMALL)
    result = train_many(split, [2], config, fused=False)
    _, module = train_single(split, 2, config)
    assert _max_param_diff(result.model.run(0), module) < 1e-6


def test_runs_are_independent(split):
    config = ManyRunsConfig(eps=0.8, batch_size=20, **SMALL)
    a = train_many(split, [1, 2, 3], config)
    b = train_many(split, [1, 99, 3], config)
    for r in (0, 2):
        assert all(torch.equal(x, y) for x, y in zip(a.model.run(r)[0], b.model.run(r)[0]))
        assert np.array_equal(a.curve[r], b.curve[r])
    assert not torch.equal(a.model.run(1)[0][0], b.model.run(1)[0][0])
    # The same run alone gives the same trajectory (up to batched-kernel rounding).
    alone = train_many(split, [3], config)
    assert max((x - y).abs().max().item() for pair in zip(alone.model.run(0), a.model.run(2)) for x, y in zip(*pair)) < 1e-5


def test_same_seed_same_numbers(split):
    config = ManyRunsConfig(eps=0.8, batch_size=20, pairing="permutation", **SMALL)
    a, b = train_many(split, [4, 7], config, curve_every=1), train_many(split, [4, 7], config, curve_every=1)
    assert np.array_equal(a.curve, b.curve) and np.array_equal(a.pair_fraction, b.pair_fraction)
    assert a.curve_epochs == [1, 2, 3] and a.curve.shape == (2, 3)


def test_extremes_vanilla_and_mixup(split):
    """eps = 0 with graph pairing is plain training (the authors' no-mixup branch); eps above
    every distance makes Eq. (2) and the batch scaling coincide (every weight is 1)."""
    seeds = [0, 1]
    erm = train_many(split, seeds, ManyRunsConfig(eps=0.0, batch_size=20, pairing="permutation", variant="authors", **SMALL))
    graph0 = train_many(split, seeds, ManyRunsConfig(eps=0.0, batch_size=20, pairing="graph", **SMALL))
    assert _close(erm, graph0)
    assert np.allclose(graph0.pair_fraction, 1 / 20, atol=0.01)  # only self-pairs (the last batch has 16 points)
    eq2 = train_many(split, seeds, ManyRunsConfig(eps=10.0, batch_size=20, pairing="permutation", **SMALL))
    authors = train_many(split, seeds, ManyRunsConfig(eps=10.0, batch_size=20, pairing="permutation", variant="authors", **SMALL))
    assert _close(eq2, authors) and np.all(eq2.pair_fraction == 1.0)
    graph10 = train_many(split, seeds, ManyRunsConfig(eps=10.0, batch_size=20, pairing="graph", **SMALL))
    assert np.all(graph10.pair_fraction == 1.0)
    # while a local eps does change training
    local = train_many(split, seeds, ManyRunsConfig(eps=0.8, batch_size=20, pairing="permutation", **SMALL))
    assert not _close(local, eq2)


def _close(a, b, tol=1e-5):
    return all((x - y).abs().max().item() < tol for r in range(len(a.seeds)) for pa, pb in zip(a.model.run(r), b.model.run(r)) for x, y in zip(pa, pb))


def test_seed_streams_and_init():
    g = run_generators(3)
    assert set(g) == {"init", "order", "mix"}
    assert torch.rand(1, generator=g["init"]).item() != torch.rand(1, generator=g["order"]).item()
    layers = init_mlp((2, 100, 2), run_generators(3)["init"])
    assert [tuple(w.shape) for w, _ in layers] == [(100, 2), (2, 100)]
    assert layers[0][0].abs().max() <= 1 / np.sqrt(2) and layers[1][0].abs().max() <= 0.1
    assert torch.equal(layers[0][0], init_mlp((2, 100, 2), run_generators(3)["init"])[0][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=-1.0, batch_size=20), "eps"),
        (dict(eps=1.0, batch_size=0), "batch_size"),
        (dict(eps=1.0, batch_size=20, variant="mine"), "variant"),
        (dict(eps=1.0, batch_size=20, pairing="graph", variant="authors"), "permutation"),
        (dict(eps=1.0, batch_size=20, hidden=(100, 0)), "hidden"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ManyRunsConfig(**kwargs)


def test_trainer_errors(split):
    config = ManyRunsConfig(eps=1.0, batch_size=20, **SMALL)
    with pytest.raises(ValueError, match="distinct"):
        train_many(split, [1, 1], config)
    with pytest.raises(ValueError, match="seed"):
        train_many(split, [-1], config)
    with pytest.raises(ValueError, match="ManyRunsConfig"):
        train_many(split, [1], {"eps": 1.0})


# --- the sweep -------------------------------------------------------------------------------


def test_paper_grid():
    assert PAPER_EPS[0] == 0 and PAPER_EPS[-1] == 10 and len(PAPER_EPS) == 10
    assert PAPER_BATCH_SIZES[0.6] == 241 and PAPER_BATCH_SIZES[10.0] == 20


def test_sweep_records_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    common = dict(tag="t", eps_grid=[0.0, 1.0], epochs=2, hidden=(8,), data={"points_per_class": 40}, batch_sizes={0.0: 16, 1.0: 16}, progress=False)
    first = sweep_spirals(seeds=[0, 1], **common)
    assert len(first) == 4 and set(first.eps) == {0.0, 1.0}
    config = ManyRunsConfig(eps=1.0, batch_size=16, epochs=2, hidden=(8,))
    path = record_path("t", config, 1)
    record = json.loads(path.read_text())
    assert record["config"]["eps"] == 1.0 and record["data"]["points_per_class"] == 40
    assert {"torch", "device", "commit"} <= set(record["environment"]) and record["curve"]["epochs"] == [2]

    # Interrupted sweep: one record lost; a restart computes it (same numbers) and the new seed only.
    kept = record_path("t", config, 0)
    kept_text = kept.read_text()
    path.unlink()
    calls = []
    import localmixup.paper.sweep.spirals as module

    original = module.train_many
    monkeypatch.setattr(module, "train_many", lambda split, seeds, cfg, **kw: calls.append((cfg.eps, list(seeds))) or original(split, seeds, cfg, **kw))
    again = sweep_spirals(seeds=[0, 1, 2], **common)
    assert sorted(calls) == [(0.0, [2]), (1.0, [1, 2])]
    assert kept.read_text() == kept_text
    assert json.loads(path.read_text())["test_error"] == record["test_error"]
    assert len(again) == 6 and len(load_spirals_sweep("t")) == 6

    with pytest.raises(ValueError, match="another configuration"):
        sweep_spirals(seeds=[0], **{**common, "epochs": 3})
    with pytest.raises(ValueError, match="not on the authors' grid"):
        sweep_spirals(seeds=[0], **{**common, "batch_sizes": None, "eps_grid": [0.7]})
