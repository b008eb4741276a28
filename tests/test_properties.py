"""Property-based tests of every public entry point: on any input (dtype, shape, value, Python type)
the result is correct (checked against a plain reference where one exists) or the call raises a
one-line ``ValueError``/``TypeError`` that names the parameter, never another exception."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import localmixup as lm

# derandomised: the same examples on every run, so that CI never fails at random; no example database on disk
settings.register_profile("properties", max_examples=150, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROPERTIES = settings.get_profile("properties")

FLOATS = (torch.float16, torch.float32, torch.float64, torch.bfloat16)
INTEGERS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
DTYPES = FLOATS + INTEGERS + (torch.bool,)
SPECIAL = (float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.0, -0.0)


def outcome(call, *names):
    """The result of ``call()``, or the ``ValueError``/``TypeError`` it raised, whose one-line message
    names one of ``names``. Any other exception fails the test."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert "\n" not in message and any(name in message for name in names), f"{type(error).__name__}: {message}"
        return error


@st.composite
def tensors(draw, shape=None, dtypes=DTYPES, special=True, low=-10.0, high=10.0):
    """A tensor of one of ``dtypes``; ``shape`` a tuple or a strategy (default: 0 to 3 dims of size 0 to 4);
    floats from [low, high] and, with ``special``, NaN, infinities and huge values."""
    shape = draw(shape if isinstance(shape, st.SearchStrategy) else st.just(shape)) if shape is not None else \
        tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    dtype = draw(st.sampled_from(dtypes))
    n = math.prod(shape)
    if dtype == torch.bool:
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif dtype in INTEGERS:
        info = torch.iinfo(dtype)
        values = draw(st.lists(st.integers(max(info.min, -300), min(info.max, 300)), min_size=n, max_size=n))
    else:
        element = st.floats(low, high, width=32)
        values = draw(st.lists(st.one_of(element, st.sampled_from(SPECIAL)) if special else element, min_size=n, max_size=n))
    return torch.tensor(values, dtype=torch.float64 if dtype.is_floating_point else dtype).reshape(shape).to(dtype)


@st.composite
def python_values(draw, tensor_strategy):
    """A tensor of ``tensor_strategy``, or the same values as a list, a tuple, a numpy array, or None."""
    t = draw(tensor_strategy)
    kind = draw(st.sampled_from(["tensor", "tensor", "tensor", "list", "tuple", "numpy", "none"]))
    if kind == "list":
        return t.tolist()
    if kind == "tuple":
        return tuple(t.tolist()) if t.ndim else t.item()
    if kind == "numpy":
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return None if kind == "none" else t


def batches(runs=0, features=st.integers(0, 3), dtypes=DTYPES, special=True):
    """Batches x of shape ((R,) B, d) with B in 0..5."""
    shape = st.tuples(*([st.integers(1, 3)] * runs), st.integers(0, 5), features)
    return tensors(shape, dtypes=dtypes, special=special)


def largest(t):
    """The largest absolute value of ``t`` (0 if empty)."""
    return float(t.double().abs().max()) if t.numel() else 0.0


def reference_distances(x, batched=False):
    """Float64 brute force on the values the library reads (float32 unless x is float64)."""
    flat = x.reshape(*x.shape[: 1 + batched], -1) if x.numel() else x.reshape(*x.shape[: 1 + batched], math.prod(x.shape[1 + batched:]))
    flat = flat.to(torch.float64 if x.dtype == torch.float64 else torch.float32).double()
    return (flat.unsqueeze(-2) - flat.unsqueeze(-3)).square().sum(dim=-1).sqrt()


def graph_options():
    return st.one_of(
        st.tuples(st.just("none"), st.just({})),
        st.tuples(st.just("knn"), st.fixed_dictionaries({"k": st.one_of(st.integers(-2, 6), st.floats(0, 3), st.none())})),
        st.tuples(st.just("threshold"), st.fixed_dictionaries({"eps": st.one_of(st.floats(allow_nan=True), st.sampled_from([0.0, math.inf]))})),
        st.tuples(st.just("exp"), st.fixed_dictionaries({"decay": st.one_of(st.floats(allow_nan=True), st.just(0.0), st.just(1e30))})),
        st.tuples(st.sampled_from(["gauss", None, 3]), st.just({})),
    )


# --- distances and graphs ---------------------------------------------------------------------


@PROPERTIES
@given(x=st.one_of(batches(features=st.integers(0, 40)), python_values(tensors())), batched=st.booleans(), validate=st.booleans())
def test_pairwise_distances_are_brute_force_or_a_clear_error(x, batched, validate):
    d = outcome(lambda: lm.pairwise_distances(x, batched=batched, validate=validate), "x")
    if isinstance(d, Exception):
        assert not isinstance(x, torch.Tensor) or x.ndim < 1 + batched or (validate and not torch.isfinite(x.float()).all())
        return
    b = x.shape[batched]
    assert d.shape == (*x.shape[:batched], b, b) and d.dtype == torch.float32
    if bool(torch.isfinite(x.float()).all()) and largest(x) < 1e6:
        reference = reference_distances(x, batched)
        torch.testing.assert_close(d.double(), reference, rtol=1e-4, atol=1e-4 * largest(reference) + 1e-6)
        assert torch.equal(d, d.transpose(-1, -2)) and not d.diagonal(dim1=-2, dim2=-1).any()


@PROPERTIES
@given(x=batches(features=st.integers(0, 40)), options=graph_options(), validate=st.booleans(), data=st.data())
def test_locality_weights_lie_in_0_1_with_ones_on_the_diagonal(x, options, validate, data):
    graph, parameters = options
    w = outcome(lambda: lm.locality_weights(x, graph, validate=validate, **parameters), "x", "graph", "k", "eps", "decay")
    if isinstance(w, Exception):
        return
    b = x.shape[0]
    assert w.shape == (b, b) and w.dtype == torch.float32
    if not bool(torch.isfinite(x.float()).all()):
        return  # validate=False: no check, any values
    assert bool(((w >= 0) & (w <= 1)).all()) and bool((w.diagonal() == 1).all())
    distinct = b < 2 or bool(reference_distances(x).add(torch.eye(b)).gt(1e-15).all())  # (squares below ~1e-38 underflow)
    if distinct and (parameters.get("k") == 0 or parameters.get("eps") == 0.0 or parameters.get("decay") == 1e30):
        assert torch.equal(w, torch.eye(b))  # the unmixed extremes
    if graph == "none" or parameters.get("decay") == 0.0 or parameters.get("eps") == math.inf:
        assert torch.equal(w, torch.ones(b, b))  # Mixup
    if graph == "exp" and largest(x) < 1e6:
        torch.testing.assert_close(w.double(), torch.exp(-parameters["decay"] * reference_distances(x)), rtol=1e-3, atol=1e-5)
    partner = data.draw(st.permutations(range(b))) if b else []
    pairs = lm.pair_weights(x, torch.tensor(partner, dtype=torch.int64), graph, validate=validate, **parameters)
    torch.testing.assert_close(pairs, w[torch.arange(b), torch.tensor(partner, dtype=torch.int64)], rtol=1e-5, atol=1e-6)


@PROPERTIES
@given(x=batches(features=st.integers(0, 40)), partner=python_values(tensors(dtypes=INTEGERS + FLOATS)), validate=st.booleans())
def test_paired_distances_read_the_brute_force_matrix_or_raise_clearly(x, partner, validate):
    d = outcome(lambda: lm.paired_distances(x, partner, validate=validate), "x", "partner")
    if isinstance(d, Exception) or not bool(torch.isfinite(x.float()).all()) or largest(x) >= 1e6:
        return
    reference = reference_distances(x)[torch.arange(x.shape[0]), partner.long()]
    torch.testing.assert_close(d.double(), reference, rtol=1e-4, atol=1e-4 * largest(reference) + 1e-6)


# --- the mixer, the draw and the loss ---------------------------------------------------------


def labels(size, runs=()):
    return st.one_of(tensors((*runs, size), dtypes=INTEGERS + (torch.bool,)),
                     python_values(tensors()), tensors((*runs, size, 3), dtypes=FLOATS + INTEGERS, special=False))


@st.composite
def sources(draw, runs):
    if runs:
        return {"generator": lm.Streams(draw(st.lists(st.integers(0, 2**64 - 1), min_size=runs, max_size=runs, unique=True)))}
    seed = draw(st.integers(0, 2**64 - 1))
    return draw(st.sampled_from([{"generator": torch.Generator().manual_seed(seed)}, {"seed": seed}, {"generator": lm.Streams(seed)}]))


@PROPERTIES
@given(runs=st.sampled_from([0, 0, 2]), options=graph_options(), alpha=st.sampled_from([1.0, 0.4, 2.0]), p=st.sampled_from([1.0, 0.5]),
       pairing=st.sampled_from(lm.PAIRINGS), validate=st.booleans(), data=st.data())
def test_local_mixup_mixes_or_raises_clearly(runs, options, alpha, p, pairing, validate, data):
    graph, parameters = options
    mix = outcome(lambda: lm.LocalMixup(graph, alpha=alpha, p=p, pairing=pairing, validate=validate, **parameters,
                                        **data.draw(sources(runs))), "graph", "k", "eps", "decay")
    if isinstance(mix, Exception):
        return
    lead = (runs,) if runs else ()
    x = data.draw(st.one_of(batches(runs=bool(runs)), python_values(tensors())), label="x")
    y = data.draw(labels(x.shape[len(lead)] if isinstance(x, torch.Tensor) and x.ndim > len(lead) else 2, lead), label="y")
    batch = outcome(lambda: mix(x, y), "x", "y")
    if isinstance(batch, Exception):
        return
    b = x.shape[len(lead)]
    assert batch.x.shape == x.shape and batch.x.dtype == x.dtype and batch.lam.shape == lead and batch.weight.shape == (*lead, b)
    assert bool(((batch.lam >= 0) & (batch.lam <= 1)).all())
    if not bool(torch.isfinite(x.float()).all()):
        return  # validate=False: a defined result, no check
    assert bool(((batch.weight >= 0) & (batch.weight <= 1)).all())
    logits = torch.randn(*lead, b, 3)
    soft = y.ndim == len(lead) + 2
    if soft or int(y.max()) < 3:
        loss = lm.mixup_loss(logits, batch, validate=validate)
        assert loss.shape == lead and bool(torch.isfinite(loss).all())


def mixup_by_hand(x, y, lam, perm, logits):
    """Classical Mixup (Zhang et al.): one lam, one permutation, the mean of the mixed cross-entropy."""
    mixed = lam * x + (1 - lam) * x[perm]
    loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    return mixed, loss


@PROPERTIES
@given(x=batches(features=st.integers(1, 40), dtypes=(torch.float32, torch.float64), special=False).filter(lambda t: t.shape[0] > 0),
       seed=st.integers(0, 2**64 - 1), alpha=st.sampled_from([1.0, 0.2, 4.0]), data=st.data())
def test_graph_none_with_permutation_pairing_is_hand_written_mixup(x, seed, alpha, data):
    y = data.draw(tensors((x.shape[0],), dtypes=INTEGERS).map(lambda t: t.abs() % 4))
    mix = lm.LocalMixup("none", alpha=alpha, pairing="permutation", generator=torch.Generator().manual_seed(seed))
    draw = mix.sample(x)
    assert sorted(draw.partner.tolist()) == list(range(x.shape[0])) and torch.equal(draw.weight, torch.ones(x.shape[0]))
    batch = mix.apply(draw, x, y)
    logits = torch.randn(x.shape[0], 4, generator=torch.Generator().manual_seed(seed % 1000))
    mixed, loss = mixup_by_hand(x, y.long(), draw.lam.double().item(), draw.partner, logits)
    torch.testing.assert_close(batch.x, mixed, rtol=1e-6, atol=1e-6)  # lam is float32: (1 - lam) rounds there
    torch.testing.assert_close(lm.mixup_loss(logits, batch), loss.float())


@PROPERTIES
@given(x=batches(features=st.integers(1, 40), dtypes=(torch.float32, torch.float64), special=False).filter(lambda t: t.shape[0] > 0),
       options=st.sampled_from([("knn", {"k": 0}), ("threshold", {"eps": 0.0}), ("exp", {"decay": 1e30})]),
       seed=st.integers(0, 2**64 - 1))
def test_the_unmixed_extremes_leave_the_batch_as_it_is(x, options, seed):
    if not bool(reference_distances(x).add(torch.eye(x.shape[0])).gt(1e-15).all()):
        return  # duplicates are neighbours at distance 0; so are points closer than ~1e-19, whose squares underflow
    graph, parameters = options
    y = torch.arange(x.shape[0])  # sample ids: y_b == y for self-pairs only
    batch = lm.LocalMixup(graph, **parameters, generator=lm.Streams(seed), validate=False)(x, y)
    assert torch.equal(batch.x, x) and torch.equal(batch.y_b, y)  # graph pairing draws every sample itself
    permuted = lm.LocalMixup(graph, **parameters, pairing="permutation", generator=lm.Streams(seed), validate=False)(x, y)
    assert torch.equal(permuted.weight, (permuted.y_b == y).float())  # only self-pairs weigh


def draws(size, runs):
    lead = (runs,) if runs else ()
    return st.builds(lm.MixDraw, tensors(lead, dtypes=FLOATS + INTEGERS, special=False, low=0.0, high=1.0),
                     st.one_of(tensors((*lead, size), dtypes=INTEGERS + FLOATS, low=-2, high=6), python_values(tensors())),
                     tensors((*lead, size), dtypes=FLOATS + INTEGERS, special=False, low=0.0, high=1.0))


@PROPERTIES
@given(runs=st.sampled_from([0, 2]), draw_runs=st.sampled_from([0, 2]), validate=st.booleans(), data=st.data())
def test_apply_draw_mixes_or_raises_clearly(runs, draw_runs, validate, data):
    x = data.draw(st.one_of(batches(runs=bool(runs)), python_values(tensors())), label="x")
    size = x.shape[bool(runs)] if isinstance(x, torch.Tensor) and x.ndim > bool(runs) else 3
    y = data.draw(labels(size, (runs,) if runs else ()), label="y")
    draw = data.draw(st.one_of(draws(size, draw_runs), st.tuples(st.just(0.5))), label="draw")
    batch = outcome(lambda: lm.apply_draw(draw, x, y, validate=validate), "draw", "x", "y")
    if isinstance(batch, Exception) or not bool(torch.isfinite(x.float()).all()):
        return
    partner = draw.partner.long()  # along the batch dimension: the first, or the second after R runs
    other = x[partner] if draw.lam.ndim == 0 else x[torch.arange(x.shape[0])[:, None], partner]
    expected = torch.lerp(x, other, (1 - draw.lam).to(x.dtype).reshape(*draw.lam.shape, *[1] * (x.ndim - draw.lam.ndim)))
    torch.testing.assert_close(batch.x, expected, equal_nan=True)


def mixed_batches(size):
    field = st.one_of(tensors((size,), dtypes=INTEGERS + (torch.bool,), low=-1, high=4), tensors((size, 3), dtypes=FLOATS, special=False,
                      low=0, high=1), python_values(tensors()))
    lam = st.one_of(st.floats(allow_nan=True), st.sampled_from([0.0, 0.5, 1.0]), tensors(()), st.none(), st.text(max_size=2))
    weight = st.one_of(tensors((size,)), python_values(tensors()))
    return st.one_of(st.builds(lm.MixedBatch, st.none(), field, field, lam, weight),
                     st.builds(lm.SoftMixedBatch, st.none(), field, weight), st.tuples(field, lam))


def out_of_range(labels: object, classes: int) -> bool:
    """Whether ``labels`` is an integer tensor holding a class index outside [0, classes - 1]."""
    return (isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dtype != torch.bool
            and labels.numel() > 0 and (int(labels.min()) < 0 or int(labels.max()) >= classes))


@PROPERTIES
@given(size=st.integers(0, 4), data=st.data(), validate=st.booleans(), normalize=st.sampled_from(["weights", "size", "mean"]),
       smoothing=st.sampled_from([0.0, 0.1, 2.0, float("nan")]))
def test_mixup_loss_is_a_loss_or_a_clear_error(size, data, validate, normalize, smoothing):
    logits = data.draw(st.one_of(tensors((size, 3), dtypes=FLOATS), python_values(tensors())), label="logits")
    batch = data.draw(mixed_batches(size), label="batch")
    if isinstance(logits, torch.Tensor) and logits.ndim >= 1:  # without validation, out-of-range labels are the caller's error
        assume(validate or not any(out_of_range(t, logits.shape[-1]) for t in batch if isinstance(t, torch.Tensor)))
    loss = outcome(lambda: lm.mixup_loss(logits, batch, normalize=normalize, label_smoothing=smoothing, validate=validate),
                   "logits", "batch", "normalize", "label_smoothing", "lam", "weight", "target", "labels")
    if isinstance(loss, torch.Tensor):
        assert loss.shape == () and loss.dtype == torch.float32


@PROPERTIES
@given(logits=python_values(tensors()), target=python_values(tensors()), validate=st.booleans())
def test_per_sample_cross_entropy_is_torch_s_or_a_clear_error(logits, target, validate):
    # without validation the labels' values are not read (no host sync): out of range, they are the caller's error
    assume(validate or not (isinstance(logits, torch.Tensor) and logits.ndim >= 1 and out_of_range(target, logits.shape[-1])))
    loss = outcome(lambda: lm.per_sample_cross_entropy(logits, target, validate=validate), "logits", "target", "labels")
    if isinstance(loss, Exception) or target.ndim == logits.ndim or not validate:
        return
    torch.testing.assert_close(loss, F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.long().reshape(-1),
                                                     reduction="none").view(target.shape), equal_nan=True)


@PROPERTIES
@given(size=st.integers(1, 4), runs=st.sampled_from([0, 2]), y=st.data(), num_classes=st.one_of(st.none(), st.integers(-1, 5)))
def test_soft_targets_are_probability_rows_or_a_clear_error(size, runs, y, num_classes):
    lead = (runs,) if runs else ()
    x = torch.randn(*lead, size, 2)
    labels_ = y.draw(tensors((*lead, size), dtypes=INTEGERS, low=0, high=4).map(lambda t: t.abs() % 5))
    batch = lm.LocalMixup("none", generator=lm.Streams(list(range(runs)) if runs else 0))(x, labels_)
    target = outcome(lambda: batch.soft_targets(num_classes), "num_classes", "labels")
    if isinstance(target, torch.Tensor):
        assert target.shape == (*lead, size, num_classes)
        torch.testing.assert_close(target.sum(dim=-1), torch.ones(*lead, size))


# --- seeds, the automatic decay, intrusion --------------------------------------------------


SEED_LIKE = st.one_of(st.integers(-2, 3), st.integers(2**63 - 2, 2**64 + 2), st.floats(allow_nan=True), st.none(), st.booleans(),
                      st.text(max_size=2), st.lists(st.integers(-1, 2**64 + 1), max_size=3), st.tuples(st.integers(0, 2**64)),
                      st.builds(np.int64, st.integers(0, 2**63 - 1)), python_values(tensors((2,), dtypes=INTEGERS + FLOATS)))


def valid_seed(seed):
    return not isinstance(seed, bool) and isinstance(seed, (int, np.integer)) and 0 <= seed < 2**64


@PROPERTIES
@given(seeds=SEED_LIKE, stream=st.one_of(SEED_LIKE, st.just(0)))
def test_streams_accept_seeds_in_0_2_64_only(seeds, stream):
    streams = outcome(lambda: lm.Streams(seeds, stream=stream), "seed", "stream", "path entry")
    if isinstance(streams, Exception):
        return
    values = [seeds] if valid_seed(seeds) else (seeds.tolist() if hasattr(seeds, "tolist") else list(seeds))
    assert all(valid_seed(s) for s in values)
    words = streams.words(4).reshape(len(values), 4)
    for i, a in enumerate(values):  # distinct seeds, distinct streams (2**64 aliased 0 before)
        for j, b in enumerate(values):
            assert torch.equal(words[i], words[j]) == (a == b)


def test_out_of_range_seeds_are_refused_everywhere():
    for call in (lambda: lm.Streams([0, 2**64]), lambda: lm.derive_seed(2**64), lambda: lm.derive_seed(0, 2**64),
                 lambda: lm.LocalMixup("none", seed=2**64), lambda: lm.auto_decay(torch.randn(4, 2), torch.arange(4) % 2, seed=2**64)):
        with pytest.raises(ValueError, match=r"must be an integer in \[0, 2\*\*64\), got 18446744073709551616"):
            call()
    assert lm.derive_seed(2**64 - 1, 2**64 - 1) == 7141986420853922204  # the largest seed is still valid


def test_the_derivation_of_valid_seeds_is_unchanged():
    assert (lm.derive_seed(0), lm.derive_seed(12345, 1, 2)) == (6017775124710473527, 7120070504364784081)
    expected = [[0.12068291066680104, 0.08940242661628872], [0.3492403927957639, 0.7347337420796975],
                [0.6664350928040221, 0.09523895068559796]]
    assert lm.Streams([0, 7, 2**63 - 1], stream=(1, 2)).uniform(2).tolist() == expected


@PROPERTIES
@given(x=st.one_of(batches(features=st.integers(0, 3)), python_values(tensors())), y=st.data(),
       rule=st.sampled_from(["nearest_other_class", "mean_weight", "median"]), target=st.sampled_from([0.5, 0.0, 1.5, float("nan")]),
       seed=SEED_LIKE)
def test_auto_decay_is_a_positive_rate_or_a_clear_error(x, y, rule, target, seed):
    size = x.shape[0] if isinstance(x, torch.Tensor) and x.ndim else 2
    labels_ = y.draw(st.one_of(st.none(), labels(size)), label="y")
    rate = outcome(lambda: lm.auto_decay(x, labels_, rule=rule, target=target, seed=seed, samples=3),
                   "x", "y", "rule", "target", "seed", "samples", "no finite decay", "cannot be reached")
    if not isinstance(rate, Exception):
        assert isinstance(rate, float) and 0 < rate < math.inf


@PROPERTIES
@given(x_virtual=batches(features=st.just(2)), x_train=batches(features=st.just(2)), data=st.data())
def test_intrusion_rate_is_a_rate_or_a_clear_error(x_virtual, x_train, data):
    y_virtual = data.draw(tensors((x_virtual.shape[0],), dtypes=INTEGERS + (torch.bool,)), label="y_virtual")
    y_train = data.draw(tensors((x_train.shape[0],), dtypes=INTEGERS + (torch.bool,)), label="y_train")
    rate = outcome(lambda: lm.intrusion_rate(x_virtual, y_virtual, x_train, y_train), "x", "y")
    if not isinstance(rate, Exception):
        assert 0.0 <= rate <= 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: lm.intrusion_rate(torch.randn(4, 2), torch.arange(4) % 2, torch.randn(4, 3), torch.arange(4) % 2),
     r"x_virtual and x_train must have the same features per sample, got \(2,\) and \(3,\)"),
    (lambda: lm.intrusion_rate(torch.randn(4, 2), torch.full((4, 2), 0.5), torch.randn(4, 2), torch.arange(4) % 2),
     r"y_virtual must hold class indices of shape \(4,\)"),
])
def test_intrusion_rate_refuses_mismatched_features_and_soft_labels(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the documented helpers of the paper package ---------------------------------------------


@PROPERTIES
@given(points=st.one_of(st.integers(-1, 30), st.floats(allow_nan=True), st.none()), turns=st.sampled_from([720.0, 0.0, -1.0, float("inf")]),
       noise=st.sampled_from([0.5, 0.0, -0.1, float("nan")]), fraction=st.sampled_from([0.2, 0.0, 1.0, 0.999]), seed=SEED_LIKE)
def test_make_spirals_gives_a_split_or_a_clear_error(points, turns, noise, fraction, seed):
    from localmixup.paper import make_spirals

    split = outcome(lambda: make_spirals(points, turns_degrees=turns, noise=noise, test_fraction=fraction, seed=seed),
                    "points_per_class", "turns_degrees", "noise", "test_fraction", "seed")
    if not isinstance(split, Exception):
        assert split.x_train.shape[0] + split.x_test.shape[0] == 2 * points and split.x_train.dtype == torch.float32
        assert split.y_train.dtype == torch.int64 and bool(torch.isfinite(split.x_train).all())


@PROPERTIES
@given(x=python_values(tensors()), y=python_values(tensors()), size=st.one_of(st.none(), st.integers(-1, 6), st.floats(allow_nan=True)),
       seed=SEED_LIKE, stratified=st.booleans())
def test_subset_gives_a_subset_or_a_clear_error(x, y, size, seed, stratified):
    from localmixup.paper.data import subset

    part = outcome(lambda: subset(x, y, size, seed, stratified=stratified), "x", "y", "size", "seed", "stratified subset")
    if not isinstance(part, Exception):
        xs, ys = part
        assert xs.shape[0] == ys.shape[0] == (x.shape[0] if size is None else min(size, x.shape[0]))


@PROPERTIES
@given(folder=st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=3), st.integers(), st.just("/dev/null"), st.just("/nonexistent")),
       verify=st.booleans())
def test_load_authors_spirals_loads_or_says_what_is_missing(folder, verify):
    from localmixup.paper.data import DatasetUnavailable
    from localmixup.paper.spirals.data import load_authors_spirals

    try:
        outcome(lambda: load_authors_spirals(folder, verify=verify), "folder", "verify")
    except DatasetUnavailable as error:
        assert "\n" not in str(error) and "spirals" in str(error)


# --- the defects the properties found first (each failed before its fix) ----------------------


@pytest.mark.parametrize("dtype", INTEGERS)
def test_labels_of_every_integer_dtype_train(dtype):
    x, y = torch.randn(6, 3), (torch.arange(6) % 3).to(dtype)
    batch = lm.LocalMixup("exp", decay=0.5, generator=lm.Streams(0))(x, y)
    assert bool(torch.isfinite(lm.mixup_loss(torch.randn(6, 3), batch)).all())
    assert batch.soft_targets(3).shape == (6, 3)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: lm.LocalMixup("none", generator=lm.Streams(0))(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]).bool()), ValueError,
     r"y must hold integer class indices .* got torch.bool: convert 0/1 labels with .long\(\)"),
    (lambda: lm.LocalMixup("none")(torch.randn(4, 2).tolist(), torch.zeros(4, dtype=torch.long)), TypeError, "x must be a torch.Tensor, got list"),
    (lambda: lm.mixup_loss(tuple(torch.randn(4, 3)), lm.LocalMixup("none")(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))),
     TypeError, "logits must be a torch.Tensor, got tuple"),
    (lambda: lm.apply_draw(lm.MixDraw(torch.tensor(0.5), torch.arange(4.0), torch.ones(4)), torch.randn(4, 2), torch.zeros(4, dtype=torch.long)),
     ValueError, "integer partner indices, got .* partner torch.float32"),
    (lambda: lm.apply_draw(lm.LocalMixup("none", generator=lm.Streams(0)).sample(torch.randn(4, 2)), torch.randn(3, 4, 2),
                           torch.zeros(3, 4, dtype=torch.long)), ValueError, r"must start with the draw's shape \(4,\) \(one batch"),
    (lambda: lm.apply_draw(lm.MixDraw(torch.tensor(0.5), torch.tensor([0, 4]), torch.ones(2)), torch.randn(2, 2),
                           torch.zeros(2, dtype=torch.long), validate=False), ValueError, r"partner must hold indices in \[0, 1\]"),
])
def test_bad_inputs_reach_no_torch_internals(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("graph", ["exp", "threshold", "knn"])
def test_an_empty_batch_has_empty_distances_and_weights(graph):
    parameters = {"exp": {"decay": 1.0}, "threshold": {"eps": 1.0}, "knn": {"k": 1}}[graph]
    assert lm.pairwise_distances(torch.zeros(0, 40)).shape == (0, 0)
    assert lm.locality_weights(torch.zeros(0, 3), graph, **parameters).shape == (0, 0)


@pytest.mark.parametrize("pairing", lm.PAIRINGS)
@pytest.mark.parametrize("graph", ["exp", "threshold"])
def test_a_nan_input_without_validation_gives_nan_not_an_index_error(graph, pairing):
    x = torch.randn(6, 3)
    x[0, 0] = float("nan")
    parameters = {"exp": {"decay": 1.0}, "threshold": {"eps": 1.0}}[graph]
    batch = lm.LocalMixup(graph, **parameters, pairing=pairing, generator=lm.Streams(0), validate=False)(x, torch.arange(6) % 2)
    assert bool(((batch.y_b >= 0) & (batch.y_b < 6)).all()) and batch.x.shape == x.shape
