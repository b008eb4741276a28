"""Defects of issue 13 and the library inputs of issue 14 (item 7): each fails loudly, or works."""

import pytest
import torch
import torch.nn.functional as F

import localmixup as lm

NAN, INF = float("nan"), float("inf")


def data(size=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, 2, 3, generator=g), torch.randint(0, classes, (size,), generator=g)


def mixed(lam=0.5, weight=None, y_a=None, y_b=None):
    y = torch.tensor([0, 1, 2, 0])
    return lm.MixedBatch(torch.zeros(4, 2), y if y_a is None else y_a, y if y_b is None else y_b, lam,
                         torch.ones(4) if weight is None else weight)


# --- issue 13 -----------------------------------------------------------------------------


def test_integer_images_raise_instead_of_staying_unmixed():
    x, y = data()
    images = (x.abs() * 50).to(torch.uint8)
    with pytest.raises(ValueError, match="x must be a floating-point tensor.*uint8"):
        lm.LocalMixup("none", generator=torch.Generator().manual_seed(0))(images, y)
    mix = lm.LocalMixup("exp", decay=0.1, validate=False)
    with pytest.raises(ValueError, match="floating-point"):
        mix.apply(mix.sample(images.float()), images, y)


def test_integer_one_hot_targets_are_soft_targets():
    x, y = data()
    one_hot = F.one_hot(y, 3)  # int64 (B, C)
    a = lm.LocalMixup("exp", decay=0.2, pairing="permutation", generator=torch.Generator().manual_seed(1))(x, one_hot)
    b = lm.LocalMixup("exp", decay=0.2, pairing="permutation", generator=torch.Generator().manual_seed(1))(x, y)
    assert a.soft_targets().shape == (8, 3)
    torch.testing.assert_close(a.soft_targets(), b.soft_targets(num_classes=3))
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(lm.mixup_loss(logits, a), lm.mixup_loss(logits, b))
    # a hand-built batch holding integer one-hot rows works too
    torch.testing.assert_close(lm.mixup_loss(logits, b._replace(y_a=one_hot, y_b=F.one_hot(b.y_b, 3))), lm.mixup_loss(logits, b))


def _collate_with(mix):
    def collate(samples):
        x = torch.stack([s[0] for s in samples])
        y = torch.stack([s[1] for s in samples])
        return mix(x, y).y_b  # labels = sample ids: the partners drawn
    return collate


def test_dataloader_workers_draw_their_own_streams_reproducibly():
    ids = torch.arange(16)
    dataset = torch.utils.data.TensorDataset(torch.randn(16, 2, generator=torch.Generator().manual_seed(0)), ids % 16)

    def partners():
        mix = lm.LocalMixup("none", pairing="permutation", seed=3)
        loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=2, collate_fn=_collate_with(mix),
                                             multiprocessing_context="fork", generator=torch.Generator().manual_seed(0))
        return [b - b.min() for b in loader]  # batches 0 and 1 come from workers 0 and 1

    first, second = partners(), partners()
    assert not torch.equal(first[0], first[1])  # a copied torch.Generator would draw the same here
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("source", [{"generator": lm.Streams(0)}, {"seed": 0}])
def test_a_compiled_step_draws_inside_the_graph(source):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    x, y = data()
    options = dict(decay=0.5, alpha=0.4, pairing="permutation", validate=False)
    mix = lm.LocalMixup("exp", **options, **{k: lm.Streams(0) if k == "generator" else v for k, v in source.items()})
    eager = lm.LocalMixup("exp", **options, **{k: lm.Streams(0) if k == "generator" else v for k, v in source.items()})
    mix.source(x.device), eager.source(x.device)  # with seed=: the process's stream, made eagerly

    def step(mixer, x, y):
        batch = mixer(x, y)
        return lm.mixup_loss(model(batch.x), batch, validate=False)

    compiled = torch.compile(lambda x, y: step(mix, x, y), fullgraph=True, backend="aot_eager")
    for _ in range(2):  # the counter advances inside the graph: two different draws
        torch.testing.assert_close(compiled(x, y), step(eager, x, y))
    assert mix.source(x.device).counter.item() == 4  # lam and permutation, twice


# --- issue 14, item 7 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lm.LocalMixup("none", generator=0), "generator must be a torch.Generator, a localmixup.Streams or None, got int"),
        (lambda: lm.LocalMixup("none", generator=torch.Generator(), seed=1), "generator or seed, not both"),
        (lambda: lm.LocalMixup("none", seed=-1), r"seed must be an integer in \[0, 2\*\*64\)"),
        (lambda: lm.pairwise_distances(torch.tensor([[0.0], [NAN]])), "x must be finite"),
        (lambda: lm.pairwise_distances(torch.tensor([[0.0], [INF]])), "x must be finite"),
        (lambda: lm.locality_weights(torch.tensor([[0.0], [NAN]]), "threshold", eps=1.0), "x must be finite"),
        (lambda: lm.locality_weights(torch.zeros(3, 2), "exp", decay=1.0, distances=torch.zeros(2, 2)),
         r"distances must have shape \(3, 3\)"),
        (lambda: lm.locality_weights(torch.zeros(2, 2), "exp", decay=1.0, distances=-torch.ones(2, 2)), "distances must hold entries >= 0"),
        (lambda: lm.locality_weights(torch.zeros(2, 2), "exp", decay=1.0, distances=torch.full((2, 2), NAN)), "negative or NaN"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(lam=1.5)), r"lam must be in \[0, 1\]"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(lam=NAN)), r"lam must be in \[0, 1\]"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(lam=torch.tensor(-0.1))), r"lam must be in \[0, 1\]"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(lam=torch.tensor(NAN))), r"lam must be in \[0, 1\]"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(weight=torch.tensor([1.0, -1.0, 1.0, 1.0]))), "weight must hold finite weights >= 0"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(weight=torch.ones(1))), r"one weight per sample \(\(4,\)\)"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(y_a=torch.tensor([[1.2, -0.2, 0.0]] * 4))), "soft targets >= 0"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(y_a=torch.full((4, 3), 0.5))), "rows must sum to 1"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(y_a=torch.zeros(4))), "integer class indices"),
        (lambda: lm.mixup_loss(torch.zeros(4, 3), mixed(), normalize="mean"), "normalize must be one of 'weights', 'size'"),
        (lambda: lm.LocalMixup("none")(torch.zeros(4, 2), torch.full((4, 3), 0.5)), "y rows must sum to 1"),
        (lambda: lm.LocalMixup("none", generator=lm.Streams([0, 1]))(torch.zeros(3, 4, 2), torch.zeros(3, 4, dtype=torch.long)),
         r"one batch per stream of the generator, shape \(R=2"),
        (lambda: lm.apply_draw(lm.MixDraw(torch.tensor(0.5), torch.tensor([0, 5]), torch.ones(2)), torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)),
         r"partner must hold indices in \[0, 1\]"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_validate_false_skips_only_the_checks_that_read_values():
    weight = torch.tensor([1.0, -1.0, 1.0, 1.0])
    lm.mixup_loss(torch.zeros(4, 3), mixed(weight=weight, lam=torch.tensor(2.0)), validate=False)  # no host read
    lm.locality_weights(torch.zeros(2, 2), "exp", decay=1.0, distances=-torch.ones(2, 2), validate=False)
    with pytest.raises(ValueError, match="one weight per sample"):  # shapes are free to check: always checked
        lm.mixup_loss(torch.zeros(4, 3), mixed(weight=torch.ones(1)), validate=False)
