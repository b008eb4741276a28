"""Drawing apart from applying, R runs at once, counter-based streams and the Beta draw."""

import math

import pytest
import torch
import torch.nn.functional as F

import localmixup as lm
from localmixup.rng import beta_from_uniforms, beta_uniforms


def data(runs=None, size=12, dim=3, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (runs,) if runs else ()
    return torch.randn(*lead, size, dim, generator=g), torch.randint(0, classes, (*lead, size), generator=g)


@pytest.mark.parametrize("pairing", ["graph", "permutation"])
def test_call_is_sample_then_apply(pairing):
    x, y = data()
    one = lm.LocalMixup("exp", decay=0.5, alpha=0.7, pairing=pairing, generator=torch.Generator().manual_seed(3))
    two = lm.LocalMixup("exp", decay=0.5, alpha=0.7, pairing=pairing, generator=torch.Generator().manual_seed(3))
    called = one(x, y)
    draw = two.sample(x)
    applied = two.apply(draw, x, y)
    for a, b in zip(called, applied):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    assert draw.lam.shape == () and draw.partner.shape == (12,) and draw.weight.shape == (12,)
    assert torch.equal(applied.y_b, y[draw.partner])
    torch.testing.assert_close(applied.x, draw.lam * x + (1 - draw.lam) * x[draw.partner])


@pytest.mark.parametrize("pairing", ["graph", "permutation"])
def test_a_run_draws_the_same_numbers_whatever_the_runs_drawn_with_it(pairing):
    x, y = data(runs=5)
    many = lm.LocalMixup("threshold", eps=1.5, pairing=pairing, alpha=0.5, generator=lm.Streams([10, 11, 12, 13, 14]))
    alone = lm.LocalMixup("threshold", eps=1.5, pairing=pairing, alpha=0.5, generator=lm.Streams(12))
    for _ in range(3):  # the counter advances alike
        stacked, single = many(x, y), alone(x[2], y[2])
        assert stacked.lam.shape == (5,) and stacked.weight.shape == (5, 12) and stacked.x.shape == x.shape
        assert torch.equal(stacked.lam[2], single.lam) and torch.equal(stacked.y_b[2], single.y_b)
        assert torch.equal(stacked.x[2], single.x) and torch.equal(stacked.weight[2], single.weight)
    assert not torch.equal(stacked.y_b[0], stacked.y_b[1])  # runs differ


def test_batched_loss_is_each_run_s_own_loss():
    x, y = data(runs=3)
    mixed = lm.LocalMixup("exp", decay=0.7, pairing="permutation", generator=lm.Streams([1, 2, 3]))(x, y)
    logits = torch.randn(3, 12, 4, generator=torch.Generator().manual_seed(1))
    losses = lm.mixup_loss(logits, mixed)
    assert losses.shape == (3,)
    for r in range(3):
        run = lm.MixedBatch(*(field[r] for field in mixed))
        torch.testing.assert_close(losses[r], lm.mixup_loss(logits[r], run))
    sizes = lm.mixup_loss(logits, mixed, normalize="size")
    torch.testing.assert_close(sizes, losses * mixed.weight.mean(dim=1))  # sum w l / B = (sum w l / sum w) * mean w


def test_authors_batch_scaling_is_expressible():
    """The authors' spirals loss: mean pair loss scaled by the mean weight of the batch's pairs."""
    x, y = data()
    mixed = lm.LocalMixup("threshold", eps=1.0, pairing="permutation", generator=lm.Streams(0))(x, y)
    logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(2))
    scaled = mixed._replace(weight=mixed.weight.mean().expand(12))
    lam = mixed.lam
    per = lam * F.cross_entropy(logits, y, reduction="none") + (1 - lam) * F.cross_entropy(logits, mixed.y_b, reduction="none")
    torch.testing.assert_close(lm.mixup_loss(logits, scaled, normalize="size"), mixed.weight.mean() * per.mean())


def test_streams_are_uniform_independent_and_restartable():
    streams = lm.Streams(list(range(200)))
    u = streams.uniform(500)
    assert u.shape == (200, 500) and u.dtype == torch.float64 and 0 < u.min() and u.max() < 1
    se = math.sqrt(1 / 12 / u.numel())
    assert abs(u.mean().item() - 0.5) < 5 * se
    counts = torch.histc(u.float(), bins=20, min=0, max=1)
    expected = u.numel() / 20
    assert ((counts - expected) ** 2 / expected).sum().item() < 60  # chi2, 19 dof: 99.99% below 50
    # neighbouring positions and neighbouring runs are uncorrelated
    for a, b in ((u[:, :-1], u[:, 1:]), (u[:-1], u[1:])):
        corr = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(corr) < 5 / math.sqrt(a.numel())
    state = streams.get_state()
    after = streams.uniform(7)
    assert not torch.equal(after, streams.uniform(7))  # the counter moved on
    streams.set_state(state)
    assert torch.equal(after, streams.uniform(7))
    perm = lm.Streams([4, 5]).permutation(50)
    assert torch.equal(perm.sort(dim=1).values, torch.arange(50).expand(2, 50))
    assert not torch.equal(lm.Streams(4, stream=1).uniform(5), lm.Streams(4).uniform(5))


def _beta_cdf(x, a):
    # closed forms of the Beta(a, a) law for the tested a
    return {0.5: 2 / math.pi * torch.asin(torch.sqrt(x)), 1.0: x, 2.0: 3 * x**2 - 2 * x**3}[a]


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_lambda_follows_beta_alpha_alpha(alpha):
    draws = 20000
    lam = beta_from_uniforms(lm.Streams(list(range(draws))).uniform(beta_uniforms(alpha)), alpha).sort().values
    empirical = torch.arange(1, draws + 1, dtype=torch.float64) / draws
    ks = (empirical - _beta_cdf(lam, alpha)).abs().max().item()
    assert ks < 1.95 / math.sqrt(draws)  # Kolmogorov-Smirnov at the 0.1% level


def test_lambda_in_unit_interval_for_extreme_alphas():
    u = lm.Streams(list(range(2000))).uniform(beta_uniforms(0.01))
    for alpha in (1e-3, 0.01, 1e3, 1e6):
        lam = beta_from_uniforms(u, alpha)
        assert torch.all((lam >= 0) & (lam <= 1))
    assert beta_from_uniforms(u, 1e6).sub(0.5).abs().max() < 0.01
    assert (beta_from_uniforms(u, 1e-3).sub(0.5).abs() > 0.49).float().mean() > 0.99


def test_seeded_mixer_derives_one_stream_per_worker_and_rank(monkeypatch):
    x, y = data()
    draws = {}
    for worker in (None, 0, 1):
        info = None if worker is None else type("Info", (), {"id": worker, "seed": 100 + worker})()
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        draws[worker] = lm.LocalMixup("none", pairing="permutation", seed=7)(x, y).y_b
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[None], draws[0])
    again = lm.LocalMixup("none", pairing="permutation", seed=7)(x, y).y_b  # worker 1 still patched
    assert torch.equal(again, draws[1])


def test_a_mixer_copied_into_a_worker_changes_stream(monkeypatch):
    x, y = data()
    mix = lm.LocalMixup("none", pairing="permutation", seed=7)
    main = mix(x, y).y_b
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("Info", (), {"id": 0, "seed": 100})())
    first_in_worker = mix(x, y).y_b
    assert torch.equal(first_in_worker, lm.LocalMixup("none", pairing="permutation", seed=7)(x, y).y_b)
    assert not torch.equal(main, first_in_worker)


def test_derived_seeds_of_neighbouring_seeds_and_paths_differ():
    # derive_seed(s, a) once equalled derive_seed(s + 1, a - 1): rank 1 of seed 0 drew what rank 0 of seed 1 drew
    derived = {(s, a, b): lm.derive_seed(s, a, b) for s in range(4) for a in range(4) for b in range(4)}
    assert len(set(derived.values())) == len(derived)
    assert len({lm.derive_seed(s, a) for s in range(8) for a in range(8)}) == 64
