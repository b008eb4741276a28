"""Local Mixup as a drop-in for torchvision/timm Mixup: fresh draws in every epoch, worker and rank;
the soft-target, eval, p and label-smoothing conventions; and warnings for a scale that is Mixup or no mixing."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, default_collate

import localmixup as lm
from localmixup import mixing


def data(size=8, dim=3, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=g), torch.randint(0, classes, (size,), generator=g)


# --- 1. fresh randomness in DataLoader workers ----------------------------------------------


def _draws(mix):
    def collate(samples):
        batch = mix(*default_collate(samples))
        return torch.cat([batch.lam.reshape(1), batch.y_b.float()])  # lam and the partners (labels = ids)
    return collate


def _epochs(persistent, set_epoch, rank=0, monkeypatch=None, epochs=3):
    """The draws of each batch of each epoch of a 2-worker loader over 16 samples (4 batches of 4)."""
    if monkeypatch is not None:  # a DDP rank (torch.distributed's, which the loader would use too), seen by forked workers
        context = mixing._process_context
        monkeypatch.setattr(mixing, "_process_context", lambda: (rank, *context()[1:]))
    mix = lm.LocalMixup("none", pairing="permutation", seed=5)
    dataset = TensorDataset(torch.randn(16, 2), torch.arange(16))
    loader = DataLoader(dataset, batch_size=4, num_workers=2, persistent_workers=persistent, collate_fn=_draws(mix),
                        multiprocessing_context="fork", generator=torch.Generator().manual_seed(0))
    out = []
    for epoch in range(epochs):
        if set_epoch:
            mix.set_epoch(epoch)
        out.append(torch.stack(list(loader)))
    return torch.stack(out)  # (epochs, batches, 1 + 4)


@pytest.mark.parametrize("set_epoch", [True, False])
@pytest.mark.parametrize("persistent", [False, True])
def test_workers_draw_afresh_every_epoch_and_reproducibly(persistent, set_epoch):
    first = _epochs(persistent, set_epoch)
    lams = first[..., 0].flatten()
    assert lams.unique().numel() == lams.numel()  # every batch of every epoch and worker draws its own lam
    assert torch.equal(first, _epochs(persistent, set_epoch))  # a second identical run draws the same


def test_set_epoch_keys_the_draws_on_the_epoch_alone():
    # persistent workers see set_epoch (shared memory) and restart their stream: same draws as fresh workers
    assert torch.equal(_epochs(persistent=True, set_epoch=True), _epochs(persistent=False, set_epoch=True))


def test_ranks_draw_differently(monkeypatch):
    rank0 = _epochs(False, True, rank=0, monkeypatch=monkeypatch, epochs=1)
    rank1 = _epochs(False, True, rank=1, monkeypatch=monkeypatch, epochs=1)
    assert not torch.equal(rank0[..., 0], rank1[..., 0])
    monkeypatch.undo()  # and torch.distributed's rank, in the main process
    x, y = data()
    by_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None, rank=rank: rank)
        by_rank.append(lm.LocalMixup("none", pairing="permutation", seed=5)(x, y).lam)
    assert by_rank[0] != by_rank[1]


def test_main_process_epochs_differ_and_restart_from_the_epoch():
    x, y = data()
    mix = lm.LocalMixup("none", pairing="permutation", seed=5)
    mix.set_epoch(3)
    a = mix(x, y)
    mix.set_epoch(4)
    b = mix(x, y)
    resumed = lm.LocalMixup("none", pairing="permutation", seed=5)
    resumed.set_epoch(4)
    assert a.lam != b.lam and torch.equal(resumed(x, y).x, b.x)


def test_set_epoch_needs_a_seed_and_a_copied_generator_warns_in_a_worker(monkeypatch):
    with pytest.raises(ValueError, match="set_epoch needs a mixer made with seed="):
        lm.LocalMixup("none", generator=torch.Generator()).set_epoch(0)
    with pytest.raises(ValueError, match=r"epoch must be an integer in \[0, inf\)"):
        lm.LocalMixup("none", seed=0).set_epoch(-1)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("Info", (), {"id": 0, "seed": 1})())
    mix = lm.LocalMixup("none", generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="copied into every DataLoader worker"):
        mix(*data())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mix(*data())  # once per mixer


def test_the_trainers_streams_draw_what_they_drew_before():
    """Golden numbers of ``generator=Streams(...)`` (the recorded runs), computed before set_epoch existed."""
    x, y = torch.arange(36, dtype=torch.float32).reshape(2, 6, 3).sin(), torch.arange(6).expand(2, 6)
    expected = {
        "permutation": [([0.6743073463439941, 0.5206283330917358], [[1, 5, 2, 0, 3, 4], [1, 2, 0, 5, 4, 3]],
                         [[0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]]),
                        ([0.15832088887691498, 0.04003484547138214], [[2, 4, 5, 0, 1, 3], [2, 4, 0, 5, 3, 1]],
                         [[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])],
        "graph": [([0.6743073463439941, 0.5206283330917358], [[2, 1, 0, 1, 0, 1], [2, 5, 0, 5, 2, 1]], [[1.0] * 6] * 2),
                  ([0.15832088887691498, 0.04003484547138214], [[2, 1, 2, 1, 0, 1], [2, 1, 4, 3, 0, 5]], [[1.0] * 6] * 2)],
    }
    for pairing, calls in expected.items():
        mix = lm.LocalMixup("threshold", eps=1.0, alpha=0.5, pairing=pairing, generator=lm.Streams([1, 2]), validate=False)
        assert [(b.lam.tolist(), b.y_b.tolist(), b.weight.tolist()) for b in (mix(x, y), mix(x, y))] == calls


# --- 2. torchvision / timm conventions ----------------------------------------------------


def test_soft_returns_torchvision_targets_and_the_pair_weights():
    x, y = data(classes=4)
    batch = lm.LocalMixup("exp", decay=0.5, pairing="permutation", generator=torch.Generator().manual_seed(0))(x, y)
    x_mixed, target, weight = lm.LocalMixup("exp", decay=0.5, pairing="permutation",
                                            generator=torch.Generator().manual_seed(0)).soft(x, y, num_classes=4)
    assert torch.equal(x_mixed, batch.x) and torch.equal(weight, batch.weight)
    torch.testing.assert_close(target, batch.soft_targets(4))
    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(lm.mixup_loss(logits, batch.soft(4)), lm.mixup_loss(logits, batch))
    with pytest.raises(ValueError, match="too many values to unpack"):
        x_mixed, target = batch.soft(4)  # the weights cannot be dropped by unpacking


def test_mixup_loss_refuses_plain_targets_with_a_type_error():
    logits, y = torch.zeros(8, 4), data()[1]
    with pytest.raises(TypeError, match="batch must be the MixedBatch returned by LocalMixup .* got Tensor"):
        lm.mixup_loss(logits, y)


def test_a_label_column_is_read_as_class_indices():
    x, y = data()
    a = lm.LocalMixup("exp", decay=0.5, generator=torch.Generator().manual_seed(0))(x, y[:, None])
    b = lm.LocalMixup("exp", decay=0.5, generator=torch.Generator().manual_seed(0))(x, y)
    assert torch.equal(a.y_a, b.y_a) and torch.equal(a.y_b, b.y_b)
    with pytest.raises(ValueError, match=r"y of shape \(8, 1\) is one float column"):
        lm.LocalMixup("exp", decay=0.5)(x, y[:, None].float())


@pytest.mark.parametrize("generator", [None, lm.Streams([1, 2])])
def test_eval_mode_returns_the_batch_unmixed_and_draws_nothing(generator):
    x, y = data()
    if generator is not None:
        x, y = x.expand(2, *x.shape), y.expand(2, *y.shape)
    mix = lm.LocalMixup("exp", decay=0.5, generator=generator).eval()
    batch = mix(x, y)
    assert not mix.training and torch.equal(batch.x, x) and torch.equal(batch.y_b, y)
    assert torch.all(batch.lam == 1) and torch.all(batch.weight == 1)
    if generator is not None:
        assert generator.counter.item() == 0
    assert not torch.equal(mix.train()(x, y).x, x)
    with pytest.raises(TypeError, match="mode must be a bool"):
        mix.train("no")


def test_p_is_the_probability_of_mixing_each_run():
    runs = 4000
    x, y = torch.randn(runs, 4, 2), torch.arange(4).expand(runs, 4)
    batch = lm.LocalMixup("none", pairing="permutation", p=0.3, generator=lm.Streams(list(range(runs))))(x, y)
    unmixed = (batch.lam == 1) & (batch.y_b == y).all(dim=1)
    share = 1 - unmixed.float().mean().item()
    assert abs(share - 0.3 * (1 - 1 / 24)) < 5 * (0.3 * 0.7 / runs) ** 0.5  # identity permutations stay unmixed too
    assert torch.equal(batch.x[unmixed], x[unmixed])
    never = lm.LocalMixup("exp", decay=0.5, p=0.0)(*data())
    assert never.lam.item() == 1.0
    with pytest.raises(ValueError, match=r"p must be a real number in \[0, 1\]"):
        lm.LocalMixup("none", p=1.5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_label_smoothing_is_torch_s_on_each_target(smoothing):
    x, y = data(classes=4)
    batch = lm.LocalMixup("exp", decay=0.5, pairing="permutation", generator=torch.Generator().manual_seed(0))(x, y)
    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    lam = batch.lam
    per = (lam * F.cross_entropy(logits, y, reduction="none", label_smoothing=smoothing)
           + (1 - lam) * F.cross_entropy(logits, batch.y_b, reduction="none", label_smoothing=smoothing))
    expected = (batch.weight * per).sum() / batch.weight.sum()
    torch.testing.assert_close(lm.mixup_loss(logits, batch, label_smoothing=smoothing), expected)
    soft = batch.soft(4)
    per_soft = F.cross_entropy(logits, soft.target, reduction="none", label_smoothing=smoothing)
    torch.testing.assert_close(lm.mixup_loss(logits, soft, label_smoothing=smoothing),
                               (soft.weight * per_soft).sum() / soft.weight.sum())
    with pytest.raises(ValueError, match=r"label_smoothing must be a real number in \[0, 1\]"):
        lm.mixup_loss(logits, batch, label_smoothing=-0.1)


def test_batches_move_to_a_device():
    batch = lm.LocalMixup("exp", decay=0.5)(*data())
    moved = batch.to("meta")
    assert isinstance(moved, lm.MixedBatch) and all(t.device.type == "meta" for t in moved)
    hand = lm.MixedBatch(batch.x, batch.y_a, batch.y_b, 0.5, batch.weight).to("meta")
    assert hand.lam == 0.5 and hand.x.device.type == "meta"
    assert all(t.device.type == "meta" for t in batch.soft(4).to("meta"))


# --- 3. a scale users can trust --------------------------------------------------------------


def images(size=64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(size, 1, 28, 28, generator=g), torch.randint(0, 10, (size,), generator=g)  # standardised


@pytest.mark.parametrize(("decay", "pairing", "verdict"), [(1e-3, "graph", "this is Mixup"),
                                                           (1e-3, "permutation", "this is Mixup"),
                                                           (50.0, "permutation", "this is no mixing"),
                                                           (50.0, "graph", "this is no mixing")])
def test_a_scale_that_is_mixup_or_no_mixing_warns_once(decay, pairing, verdict):
    x, y = images()
    mix = lm.LocalMixup("exp", decay=decay, pairing=pairing, seed=0)
    with pytest.warns(lm.LocalityScaleWarning, match=rf"weigh [0-9.e-]+ on average: {verdict}.*auto_decay"):
        mix(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mix(x, y)  # once per mixer


@pytest.mark.parametrize("options", [dict(decay=1e-3, validate=False), dict(decay=50.0, validate=False), dict(decay=None)])
def test_no_warning_without_validation_or_at_the_automatic_scale(options):
    x, y = images()
    decay = lm.auto_decay(x, y) if options["decay"] is None else options["decay"]
    mix = lm.LocalMixup("exp", decay=decay, pairing="permutation", seed=0, validate=options.get("validate", True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mix(x, y)


@pytest.mark.parametrize("extreme", [dict(graph="exp", decay=0.0), dict(graph="threshold", eps=0.0),
                                     dict(graph="threshold", eps=math.inf), dict(graph="knn", k=0)])
@pytest.mark.parametrize("pairing", ["graph", "permutation"])
def test_an_extreme_asked_for_exactly_does_not_warn(extreme, pairing):
    """eps = 0, decay = 0, k = 0 (or eps = inf) are the extremes themselves: no scale to doubt, no warning."""
    x, y = images()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.LocalMixup(**extreme, pairing=pairing, seed=0)(x, y)


@pytest.mark.parametrize("graph", [dict(graph="exp", decay=0.5), dict(graph="threshold", eps=1.0)])
def test_permutation_pairing_never_builds_the_b_by_b_matrix(graph, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the (B, B) distance matrix was built")
    mix = lm.LocalMixup(**graph, pairing="permutation", seed=0)  # its constructor checks the graph on one point
    monkeypatch.setattr(lm.graphs, "pairwise_distances", refuse)
    batch = mix(*data())
    assert batch.weight.shape == (8,)
