"""AdaMixup (localmixup.paper.adamixup.method): split of the backbones, policy regions, the three losses,
the discriminator, a training step, reproducibility, parameter counts and bad input."""

import pytest
import torch
from torch import nn

from localmixup.paper.adamixup.method import AdaMixup, adamixup_step, split_model, _truncated_normal
from localmixup.paper.models import build_model, count_parameters


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny networks: one thread avoids oversubscribing the shared cores; restored afterwards
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def images(size=16, classes=10, seed=0):
    g = seeded(seed)
    return torch.randn(size, 3, 32, 32, generator=g), torch.randint(0, classes, (size,), generator=g)


class TinyMLP(nn.Module):
    """in_channels -> hidden -> hidden -> num_classes with ReLU; ``out`` is the head."""

    def __init__(self, num_classes, in_channels, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def sphere(n, dim, g):
    """Points on the unit sphere of R^dim; class = sign of the first coordinate. A mixed point
    of two of them lies strictly inside the ball (unless lam is 0 or 1): off the data manifold."""
    x = torch.randn(n, dim, generator=g)
    x = x / x.norm(dim=1, keepdim=True)
    return x, (x[:, 0] > 0).long()


# --- splitting a backbone ----------------------------------------------------------------------

@pytest.mark.parametrize("name, channels, options, size, head, features", [
    ("lenet5", 3, {}, 32, "fc3", 84),
    ("resnet18", 3, {"widths": (4, 8, 8, 16)}, 32, "linear", 16),
    ("densenet_bc", 1, {"blocks": (1, 1), "growth": 4}, 12, "linear", 10),
])
def test_split_model_gives_trunk_and_head_of_every_backbone(name, channels, options, size, head, features):
    torch.manual_seed(0)
    model = build_model(name, 10, channels, **options).eval()
    trunk, dim, last = split_model(model, 10)
    trunk.eval()
    x = torch.randn(4, channels, size, size, generator=seeded())
    assert dim == features and trunk(x).shape == (4, features)
    torch.testing.assert_close(last(trunk(x)), model(x))
    # the model itself is untouched and shares no parameter with the parts
    assert isinstance(getattr(model, head), nn.Linear) and isinstance(getattr(trunk, head), nn.Identity)
    own = {id(p) for p in model.parameters()}
    assert not own & {id(p) for p in (*trunk.parameters(), *last.parameters())}
    assert count_parameters(trunk) + count_parameters(last) == count_parameters(model)


def test_split_model_finds_a_nested_head():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Sequential(nn.Linear(5, 3)))
    trunk, dim, head = split_model(model, 3)
    x = torch.randn(2, 2, 3)
    assert dim == 5 and isinstance(trunk[3][0], nn.Identity)
    torch.testing.assert_close(head(trunk(x)), model(x))


def test_split_model_rejects_what_it_cannot_split():
    with pytest.raises(ValueError, match="nn.Linear"):
        split_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()))
    with pytest.raises(ValueError, match="num_classes=10"):
        split_model(TinyMLP(3, 4), 10)
    with pytest.raises(ValueError, match="torch.nn.Module"):
        split_model("lenet5")


# --- shapes, policy regions, masks -------------------------------------------------------------

def test_shapes_of_every_output():
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    x, y = images()
    assert module(x).shape == (16, 10) and module.intrusion_logits(x).shape == (16, 2)
    draw = module.mix(x[:8], x[8:], seeded())
    assert draw.x.shape == (8, 3, 32, 32) and draw.x.dtype == x.dtype
    assert draw.lam.shape == draw.start.shape == draw.width.shape == (8,)
    loss, stats = module.loss(x, y, seeded())
    assert loss.ndim == 0 and loss.requires_grad
    assert set(stats) == {"loss", "mixing_ce", "original_ce", "intrusion_ce", "lam_mean", "start_mean",
                          "width_mean", "discriminator_accuracy"}
    assert all(v.ndim == 0 and not v.requires_grad for v in stats.values())
    torch.testing.assert_close(stats["loss"], stats["mixing_ce"] + stats["original_ce"] + stats["intrusion_ce"])


def test_official_initialisation_starts_every_policy_at_thirds():
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    x, _ = images()
    draw = module.mix(x[:8], x[8:], seeded())
    torch.testing.assert_close(draw.start, torch.full((8,), 1 / 3), atol=1e-3, rtol=0)
    torch.testing.assert_close(draw.width, torch.full((8,), 1 / 3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("std", [None, 1.0])
def test_lam_lies_in_its_policy_region_within_0_1(std):
    torch.manual_seed(1)
    module = AdaMixup(TinyMLP, 3, 6, head_init_std=std)  # std 1: spread, saturated policies
    g = seeded(2)
    x1, x2 = 3 * torch.randn(4000, 6, generator=g), 3 * torch.randn(4000, 6, generator=g)
    with torch.no_grad():
        draw = module.mix(x1, x2, g)
    start, width, lam = draw.start, draw.width, draw.lam
    assert bool((start >= 0).all() and (width >= 0).all() and (start + width <= 1 + 1e-6).all())
    assert bool((lam >= start - 1e-6).all() and (lam <= start + width + 1e-6).all())
    assert bool((lam >= 0).all() and (lam <= 1).all())
    assert width.std() > 0.01  # the regions do depend on the pair
    # the position inside the region is U(0, 1): mean 1/2, variance 1/12
    u = ((lam - start) / width)[width > 1e-3]
    assert abs(float(u.mean()) - 0.5) < 0.03 and abs(float(u.var()) - 1 / 12) < 0.01
    # and the mixed input is lam x1 + (1 - lam) x2
    torch.testing.assert_close(draw.x, lam[:, None] * x1 + (1 - lam[:, None]) * x2)


def test_noise_masks_are_truncated_standard_normals():
    m = _truncated_normal(torch.Size([200_000]), seeded(), torch.device("cpu"))
    assert float(m.min()) >= -2 and float(m.max()) <= 2 and float(m.min()) < -1.99 and float(m.max()) > 1.99
    # N(0, 1) truncated to [-2, 2]: mean 0, std 0.8796
    assert abs(float(m.mean())) < 0.01 and abs(float(m.std()) - 0.8796) < 0.005


# --- the losses and where their gradients go ---------------------------------------------------

def test_gradients_reach_the_generator_through_mixing_and_intrusion_only():
    torch.manual_seed(0)
    module = AdaMixup(TinyMLP, 3, 6, head_init_std=None)
    g = seeded(1)
    x, y = torch.randn(12, 6, generator=g), torch.randint(0, 3, (12,), generator=g)
    terms, _ = module.terms(x, y, seeded(3))
    generator = list(module.policy_trunk.parameters()) + list(module.policy_head.parameters())

    def grads(term, params):
        return torch.autograd.grad(terms[term], params, retain_graph=True, allow_unused=True)

    def norm(gs):
        return sum(float(g.abs().sum()) for g in gs if g is not None)

    assert norm(grads("intrusion_ce", generator)) > 1e-4  # mixed samples flagged as real are penalised
    assert norm(grads("mixing_ce", generator)) > 1e-4  # through x_mix and the soft target
    assert norm(grads("original_ce", generator)) == 0
    # the discriminator reads the classifier's trunk, not its head; the classifier ignores the discriminator head
    assert norm(grads("intrusion_ce", list(module.trunk.parameters()))) > 0
    assert norm(grads("intrusion_ce", list(module.head.parameters()))) == 0
    assert norm(grads("mixing_ce", list(module.discriminator_head.parameters()))) == 0


def test_on_identical_inputs_only_the_soft_target_carries_lam():
    # x_i = x_j for every pair: x_mix no longer depends on lam, so the intrusion CE cannot reach
    # the generator, while the mixing CE still does, through lam y_i + (1 - lam) y_j
    torch.manual_seed(0)
    module = AdaMixup(TinyMLP, 3, 6, head_init_std=None)
    x = torch.randn(1, 6, generator=seeded(1)).expand(12, 6).contiguous()
    y = torch.arange(12) % 3
    terms, _ = module.terms(x, y, seeded(3))
    policy = list(module.policy_head.parameters())
    mixing = torch.autograd.grad(terms["mixing_ce"], policy, retain_graph=True)
    intrusion = torch.autograd.grad(terms["intrusion_ce"], policy, allow_unused=True)
    assert sum(float(g.abs().sum()) for g in mixing) > 1e-4
    assert all(g is None or float(g.abs().sum()) == 0 for g in intrusion)


def test_generator_reads_the_masked_average_of_the_pair():
    # documented input of the policy-region generator: (m1 x1 + m2 x2) / 2, with m1 then m2
    # drawn elementwise from N(0, 1) truncated to [-2, 2], before the uniforms of lam
    torch.manual_seed(0)
    module = AdaMixup(TinyMLP, 3, 6)
    g = seeded(4)
    x1, x2 = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    seen = []
    module.policy_trunk.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    module.mix(x1, x2, seeded(7))
    replay = seeded(7)
    m1 = _truncated_normal(x1.shape, replay, torch.device("cpu"))
    m2 = _truncated_normal(x2.shape, replay, torch.device("cpu"))
    torch.testing.assert_close(seen[0], (m1 * x1 + m2 * x2) / 2)


def test_soft_one_hot_targets_give_the_same_loss_as_class_indices():
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    x, y = images()
    hard, _ = module.loss(x, y, seeded(5))
    soft, _ = module.loss(x, torch.nn.functional.one_hot(y, 10).float(), seeded(5))
    torch.testing.assert_close(hard, soft)


def test_without_split_every_sample_is_mixed_and_real():
    torch.manual_seed(0)
    module = AdaMixup(TinyMLP, 3, 6, split_batch=False)
    g = seeded(1)
    x, y = torch.randn(10, 6, generator=g), torch.randint(0, 3, (10,), generator=g)
    loss, stats = module.loss(x, y, seeded(2))
    assert torch.isfinite(loss)
    # at initialisation the discriminator is uninformative: balanced classes -> CE log 2
    assert abs(float(stats["intrusion_ce"]) - float(torch.log(torch.tensor(2.0)))) < 1e-3


def test_discriminator_learns_to_separate_real_from_mixed_points():
    # Unit sphere in R^8: mixed points fall inside the ball. The generator is frozen (left out of
    # the optimiser) so that this test is about the discriminator: trained jointly, a free
    # generator on this toy problem can collapse to lam in {0, 1} before the discriminator has
    # learned anything (then mixed points are real points and nothing can separate them).
    dim = 8
    torch.manual_seed(1)
    module = AdaMixup(TinyMLP, 2, dim, split_batch=False, head_init_std=None)
    x_test, _ = sphere(256, dim, seeded(5))

    def balanced_accuracy():
        module.eval()
        with torch.no_grad():
            mixed = module.mix(x_test[:128], x_test[128:], seeded(6)).x
            real_ok = module.intrusion_logits(x_test).argmax(1).eq(1).float().mean()
            mixed_ok = module.intrusion_logits(mixed).argmax(1).eq(0).float().mean()
        module.train()
        return float(real_ok + mixed_ok) / 2

    before = balanced_accuracy()
    trained = [p for name, p in module.named_parameters() if not name.startswith("policy")]
    optimizer = torch.optim.SGD(trained, lr=0.1, momentum=0.9)
    g = seeded(1)
    for _ in range(300):
        x, y = sphere(32, dim, g)
        adamixup_step(module, optimizer, x, y, g)
    after = balanced_accuracy()
    print(f"discriminator balanced accuracy: {before:.3f} before, {after:.3f} after 300 steps")
    assert before < 0.6, before
    assert after > 0.8, after
    _, stats = module.loss(*sphere(64, dim, seeded(7)), seeded(8))
    assert float(stats["discriminator_accuracy"]) > 0.8 and float(stats["intrusion_ce"]) < 0.6


def test_training_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    x, y = images()

    def loss_at_fixed_draw():
        with torch.no_grad():
            return float(module.loss(x, y, seeded(9))[0])

    before = loss_at_fixed_draw()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    losses = [float(adamixup_step(module, optimizer, x, y, seeded(9))) for _ in range(8)]
    assert losses[0] == pytest.approx(before, rel=1e-6)  # the step returns the loss before its update
    assert loss_at_fixed_draw() < before - 0.3, (before, losses)


def test_step_is_reproducible_with_a_seeded_generator():
    x, y = images()

    def run(seed):
        torch.manual_seed(0)
        module = AdaMixup("lenet5", 10, 3)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
        g = seeded(seed)
        losses = [float(adamixup_step(module, optimizer, x, y, g)) for _ in range(2)]
        return losses, torch.cat([p.detach().flatten() for p in module.parameters()])

    losses_a, params_a = run(3)
    losses_b, params_b = run(3)
    losses_c, _ = run(4)
    assert losses_a == losses_b and torch.equal(params_a, params_b)
    assert losses_a != losses_c


# --- parameter counts ---------------------------------------------------------------------------

def head_counts(features):
    policy = (features * 100 + 100) + (100 * 3 + 3)  # FC(100) -> FC(3)
    discriminator = (features * 10 + 10) + (10 * 2 + 2)  # FC(10) -> FC(2)
    return policy, discriminator


@pytest.mark.parametrize("name, channels, features, classifier", [
    ("lenet5", 3, 84, 62_006),
    ("resnet18", 3, 512, 11_173_962),
])
def test_parameter_counts_of_each_part(name, channels, features, classifier):
    torch.manual_seed(0)
    module = AdaMixup(name, 10, channels)
    counts = module.parameter_counts()
    trunk = classifier - (features * 10 + 10)  # the backbone without its final Linear(features, 10)
    policy, discriminator = head_counts(features)
    assert module.feature_dim == features
    assert counts == {"classifier": classifier, "generator": trunk + policy, "discriminator": discriminator,
                      "total": classifier + trunk + policy + discriminator}
    assert counts["classifier"] == count_parameters(build_model(name, 10, channels))
    assert counts["total"] == count_parameters(module)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, message", [
    (("vgg16", 10, 3), {}, "model must be one of"),
    ((nn.Linear(3, 10), 10, 3), {}, "model must be a model name"),
    (("lenet5", 1, 3), {}, "num_classes"),
    (("lenet5", 2.5, 3), {}, "num_classes"),
    (("lenet5", 10, 0), {}, "in_channels"),
    (("lenet5", 10, 3), {"head_init_std": -1.0}, "head_init_std"),
    ((lambda num_classes, in_channels: nn.Conv2d(in_channels, num_classes, 3), 10, 3), {}, "nn.Linear"),
])
def test_bad_construction_names_the_parameter(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaMixup(*args, **kwargs)


def test_bad_batches_name_the_problem():
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    x, y = images(size=4)
    with pytest.raises(ValueError, match="at least 2 samples"):
        module.loss(x[:1], y[:1])
    with pytest.raises(ValueError, match="labels must be in"):
        module.loss(x, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="y must"):
        module.loss(x, y[:3])
    with pytest.raises(ValueError, match="soft targets"):
        module.loss(x, torch.rand(4, 7))
    with pytest.raises(ValueError, match="finite"):
        module.loss(torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match="floating-point"):
        module.loss(x.long(), y)
    with pytest.raises(ValueError, match="same shape"):
        module.mix(x[:2], x[:3])
    odd = AdaMixup(lambda num_classes, in_channels: nn.Sequential(nn.Linear(in_channels, num_classes), nn.Flatten(0)),
                   10, 6)
    with pytest.raises(ValueError, match="does not end"):
        odd(torch.randn(3, 6))


def test_step_adds_its_statistics_to_totals():
    x, y = images()
    torch.manual_seed(0)
    module = AdaMixup("lenet5", 10, 3)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)  # no update: both steps see the same weights
    totals = {}
    losses = [adamixup_step(module, optimizer, x, y, seeded(5), totals) for _ in range(2)]
    with torch.no_grad():
        _, first = module.loss(x, y, seeded(5))
    assert set(totals) == set(first)
    assert torch.allclose(totals["loss"], losses[0] + losses[1])
    assert torch.allclose(totals["lam_mean"], 2 * first["lam_mean"])
    assert all(t.ndim == 0 and not t.requires_grad for t in totals.values())


# --- loss weighting -----------------------------------------------------------------------------

def test_official_weighting_is_one_mean_over_mixed_and_original_samples():
    # The official code's ce_cost1: one mean of the cross-entropy over [x_mix, x_orig] (n each).
    from localmixup.loss import per_sample_cross_entropy

    x, y = images(size=15)  # odd: 8 mixed, 8 originals, 7 unseen
    torch.manual_seed(0)
    official = AdaMixup("lenet5", 10, 3, weighting="official")
    torch.manual_seed(0)
    separate = AdaMixup("lenet5", 10, 3)  # same initial weights
    loss, stats = official.loss(x, y, seeded(4))
    loss_1_1, stats_1_1 = separate.loss(x, y, seeded(4))
    for key in ("mixing_ce", "original_ce", "intrusion_ce", "lam_mean"):
        torch.testing.assert_close(stats[key], stats_1_1[key])  # same draws, same terms: only the weights differ

    # recompute the official loss from the same draw: the permutation comes first from the generator
    g = seeded(4)
    n = 8
    partner = torch.randperm(15, generator=g)[:n]
    with torch.no_grad():
        draw = official.mix(x[:n], x[partner], g)
        target = torch.nn.functional.one_hot(y, 10).float()
        lam = draw.lam[:, None]
        union_x = torch.cat([draw.x, x[:n]])
        union_target = torch.cat([lam * target[:n] + (1 - lam) * target[partner], target[:n]])
        ce_cost1 = per_sample_cross_entropy(official(union_x), union_target).mean()
    torch.testing.assert_close(loss.detach(), ce_cost1 + stats["intrusion_ce"])
    torch.testing.assert_close(stats["loss"], loss.detach())
    torch.testing.assert_close(loss_1_1.detach() - loss.detach(), (stats["mixing_ce"] + stats["original_ce"]) / 2)


def test_official_weighting_halves_the_classification_gradient_only():
    x, y = images()

    def gradients(weighting):
        torch.manual_seed(0)
        module = AdaMixup("lenet5", 10, 3, weighting=weighting)
        terms, _ = module.terms(x, y, seeded(2))
        head = torch.autograd.grad(module.total(terms), module.head.weight, retain_graph=True)[0]
        discriminator = torch.autograd.grad(module.total(terms), module.discriminator_head[1].weight)[0]
        return head, discriminator

    head_official, disc_official = gradients("official")
    head_separate, disc_separate = gradients("separate")
    torch.testing.assert_close(head_official, head_separate / 2)  # the head sees only the classification terms
    torch.testing.assert_close(disc_official, disc_separate)  # the discriminator's own head only the intrusion term


def test_bad_weighting_is_named():
    with pytest.raises(ValueError, match="weighting must be one of 'separate', 'official'"):
        AdaMixup("lenet5", 10, 3, weighting="mean")


def official_two_pass_loss(module, x, y, generator):
    """The official graph's loss, written out: the trunk runs once for the classifier on
    [x_mix, x_orig] and once more for the discriminator on [x_orig + x_unseen, x_mix]."""
    n = (x.shape[0] + 1) // 2
    partner = torch.randperm(x.shape[0], generator=generator)[:n]
    draw = module.mix(x[:n], x[partner], generator)
    target = torch.nn.functional.one_hot(y, 10).float()
    lam = draw.lam[:, None]
    union_target = torch.cat([lam * target[:n] + (1 - lam) * target[partner], target[:n]])
    from localmixup.loss import per_sample_cross_entropy

    ce_cost1 = per_sample_cross_entropy(module.head(module.trunk(torch.cat([draw.x, x[:n]]))), union_target).mean()
    scores = module.discriminator_head(module.trunk(torch.cat([x, draw.x])))
    labels = torch.cat([torch.ones(x.shape[0], dtype=torch.long), torch.zeros(n, dtype=torch.long)])
    return ce_cost1 + torch.nn.functional.cross_entropy(scores, labels)


@pytest.mark.parametrize("name, options, same", [("lenet5", {}, True), ("resnet18", {"widths": (4, 4, 8, 8)}, False)])
def test_one_trunk_pass_equals_the_official_two_without_batchnorm(name, options, same):
    # LeNet-5 has no BatchNorm: each sample's features do not depend on its batch, so one pass
    # over the union gives the official loss and gradients; ResNet-18's BatchNorm does not.
    x, y = images(size=12)
    torch.manual_seed(0)
    module = AdaMixup(name, 10, 3, weighting="official", **options)
    ours, _ = module.loss(x, y, seeded(3))
    ours_grad = torch.autograd.grad(ours, list(module.trunk.parameters()))
    official = official_two_pass_loss(module, x, y, seeded(3))
    official_grad = torch.autograd.grad(official, list(module.trunk.parameters()))
    close = torch.allclose(ours, official, rtol=1e-5, atol=1e-6) and all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(ours_grad, official_grad))
    assert close == same, (float(ours), float(official))
