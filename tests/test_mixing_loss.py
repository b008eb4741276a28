import pytest
import torch
import torch.nn.functional as F

import localmixup as lm


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(size=16, classes=5, shape=(3, 4, 4), seed=0):
    g = seeded(seed)
    return torch.randn(size, *shape, generator=g), torch.randint(0, classes, (size,), generator=g)


@pytest.mark.filterwarnings("ignore::localmixup.LocalityScaleWarning")  # deliberately Mixup or no mixing
def test_threshold_zero_with_graph_pairing_is_erm_exactly():
    x, y = batch()
    mixed = lm.LocalMixup("threshold", eps=0.0, generator=seeded())(x, y)
    assert torch.equal(mixed.x, x) and torch.equal(mixed.y_b, y)
    logits = torch.randn(16, 5, generator=seeded(1))
    # Equal up to the order of the float32 summation (sum / n instead of mean).
    torch.testing.assert_close(lm.mixup_loss(logits, mixed), F.cross_entropy(logits, y), rtol=1e-6, atol=0)


@pytest.mark.filterwarnings("ignore::localmixup.LocalityScaleWarning")  # deliberately Mixup or no mixing
@pytest.mark.parametrize("mix", [lambda g: lm.LocalMixup("exp", decay=0.0, generator=g),
                                 lambda g: lm.LocalMixup("knn", k=15, generator=g),
                                 lambda g: lm.LocalMixup("none", generator=g)])
def test_decay_zero_and_full_knn_draw_partners_uniformly(mix):
    x, _ = batch(size=8)
    ids = torch.arange(8)  # labels = sample ids, so that y_b names each partner
    transform = mix(seeded(4))
    partners = torch.cat([transform(x, ids).y_b for _ in range(4000)])
    freq = torch.bincount(partners, minlength=8).float() / len(partners)
    assert torch.all((freq - 1 / 8).abs() < 0.01), freq


def test_permutation_weights_are_w_at_the_chosen_pairs():
    x, _ = batch(size=12)
    ids = torch.arange(12)
    mix = lm.LocalMixup("exp", decay=0.3, pairing="permutation", generator=seeded())
    mixed = mix(x, ids)
    w = lm.locality_weights(x, "exp", decay=0.3)
    assert sorted(mixed.y_b.tolist()) == list(range(12))  # a permutation
    torch.testing.assert_close(mixed.weight, w[ids, mixed.y_b])
    torch.testing.assert_close(mixed.x, mixed.lam * x + (1 - mixed.lam) * x[mixed.y_b])


def test_graph_pairing_never_draws_a_zero_weight_partner():
    x, _ = batch(size=32, shape=(2,))
    ids = torch.arange(32)
    mix = lm.LocalMixup("knn", k=2, generator=seeded())
    allowed = lm.locality_weights(x, "knn", k=2) > 0
    for _ in range(50):
        mixed = mix(x, ids)
        assert torch.all(allowed[ids, mixed.y_b])
        assert torch.equal(mixed.weight, torch.ones(32))


def test_same_seed_same_draws():
    x, y = batch()
    a = lm.LocalMixup("exp", decay=0.1, alpha=0.4, generator=seeded(5))(x, y)
    b = lm.LocalMixup("exp", decay=0.1, alpha=0.4, generator=seeded(5))(x, y)
    assert a.lam == b.lam and torch.equal(a.x, b.x) and torch.equal(a.y_b, b.y_b)


def test_mixup_loss_is_weighted_eq2_and_zero_when_every_weight_is_zero():
    logits = torch.randn(4, 3, generator=seeded(), requires_grad=True)
    y_a, y_b = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    weight = torch.tensor([1.0, 0.0, 0.5, 0.25])
    mixed = lm.MixedBatch(torch.zeros(4, 1), y_a, y_b, 0.3, weight)
    per = 0.3 * F.cross_entropy(logits, y_a, reduction="none") + 0.7 * F.cross_entropy(logits, y_b, reduction="none")
    torch.testing.assert_close(lm.mixup_loss(logits, mixed), (weight * per).sum() / weight.sum())
    empty = mixed._replace(weight=torch.zeros(4))
    loss = lm.mixup_loss(logits, empty)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_soft_targets_match_index_targets():
    x, y = batch(classes=5)
    mixed = lm.LocalMixup("exp", decay=0.05, pairing="permutation", generator=seeded())(x, y)
    logits = torch.randn(16, 5, generator=seeded(2))
    soft = mixed.soft_targets(num_classes=5)
    torch.testing.assert_close(soft.sum(1), torch.ones(16))
    torch.testing.assert_close(lm.mixup_loss(logits, mixed), lm.mixup_loss(logits, mixed._replace(y_a=soft, y_b=soft)))
    with pytest.raises(ValueError, match="num_classes is needed"):
        mixed.soft_targets()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        mixed.soft_targets(num_classes=3)


def test_soft_target_inputs_are_mixed_too():
    x, y = batch(classes=4)
    soft = F.one_hot(y, 4).float()
    mixed = lm.LocalMixup("none", pairing="permutation", generator=seeded())(x, soft)
    assert mixed.y_a.shape == (16, 4)
    torch.testing.assert_close(mixed.soft_targets(), mixed.lam * soft + (1 - mixed.lam) * mixed.y_b)


def test_gradients_flow_under_bf16_autocast():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    x, y = batch()
    mixed = lm.LocalMixup("exp", decay=0.1, generator=seeded())(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(mixed.x)
        loss = lm.mixup_loss(logits, mixed)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert model[1].weight.grad is not None and model[1].weight.grad.abs().sum() > 0


def test_cuda_matches_cpu_semantics():
    x, y = batch()
    mixed = lm.LocalMixup("threshold", eps=0.0, generator=torch.Generator("cuda").manual_seed(0))(x.cuda(), y.cuda())
    assert torch.equal(mixed.x.cpu(), x) and mixed.weight.device.type == "cuda"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lm.LocalMixup("exp", decay=1.0, alpha=0.0), r"alpha must be a real number in \(0, inf\)"),
        (lambda: lm.LocalMixup("exp", decay=1.0, pairing="random"), "pairing must be one of 'graph', 'permutation'"),
        (lambda: lm.LocalMixup("knn", k=-2), "k must be an integer"),
        (lambda: lm.LocalMixup("threshold", eps=-1.0), "eps must be"),
        (lambda: lm.LocalMixup("cosine"), "graph must be one of"),
        (lambda: lm.LocalMixup("none")(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), "at least one sample"),
        (lambda: lm.LocalMixup("none")(torch.tensor([[float("nan")]]), torch.tensor([0])), "x must be finite"),
        (lambda: lm.LocalMixup("none")(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long)), "one entry per sample"),
        (lambda: lm.LocalMixup("none")(torch.zeros(2, 2), torch.tensor([0, -1])), "class indices >= 0"),
        (lambda: lm.mixup_loss(torch.zeros(2, 3), lm.MixedBatch(torch.zeros(2), torch.tensor([0, 3]), torch.tensor([0, 0]), 0.5, torch.ones(2))),
         r"labels must be in \[0, 2\] for logits with 3 classes"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("pairing", ["permutation", "graph"])
def test_mixing_cuda_batches_with_a_cpu_generator_never_waits_for_the_gpu(pairing):
    x, y = torch.randn(64, 3, 32, 32, device="cuda"), torch.randint(0, 10, (64,), device="cuda")
    mixer = lm.LocalMixup("exp", decay=1e-3, pairing=pairing, generator=torch.Generator().manual_seed(0), validate=False)
    mixer(x, y)  # warm up torch's pinned-memory cache
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        mixed = mixer(x, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert mixed.x.shape == x.shape and mixed.weight.device.type == "cuda"
