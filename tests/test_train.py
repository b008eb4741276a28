"""Training one run: configuration checks, seeding, optimiser, determinism, failure on NaN, the recipes."""

import dataclasses
import math

import pytest
import torch

from helpers import interrupt_at_call, trajectory

import localmixup.paper.training.fit as fit_module
from localmixup.mixing import LocalMixup
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.costs import step_costs
from localmixup.paper.training.memory import SavedTensorBytes
from localmixup.paper.training.optim import SGD, lr_at
from localmixup.paper.training.prepare import prepare
from localmixup.paper.run_record import RunRecord
from localmixup.paper.training.seeding import STREAMS, generator, stream_seed
from localmixup.rng import Streams, derive_seed
from localmixup.paper.training.step import eager_step
from localmixup.paper.training.fit import train_run
from localmixup.paper.protocols import PAPER_CHOICES, PAPER_SETTINGS, profile_config

TINY = dict(model="densenet_bc", model_options={"blocks": [1, 1, 1, 1], "growth": 4}, train_size=96, test_size=64,
            batch_size=32, epochs=2, lr=0.05, decay=0.01)


def tiny(method, **kw):
    settings = dict(TINY, **kw)
    if method != "local":
        settings["decay"] = None
    return TrainConfig("fashion_mnist", method, **settings)


def test_sgd_matches_torch_sgd():
    torch.manual_seed(0)
    a = torch.nn.Linear(5, 3)
    b = torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    mine = SGD(a.parameters(), 0.1, momentum=0.9, weight_decay=5e-4)
    ref = torch.optim.SGD(b.parameters(), 0.1, momentum=0.9, weight_decay=5e-4)
    for step in range(5):
        x = torch.randn(8, 5)
        for model, opt in ((a, mine), (b, ref)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
        if step == 2:
            mine.set_lr(0.01)
            ref.param_groups[0]["lr"] = 0.01
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_methods_map_onto_the_core():
    assert tiny("baseline").mixer() is None
    mix = tiny("mixup", alpha=0.4).mixer()
    assert isinstance(mix, LocalMixup) and mix.graph == "none" and mix.pairing == "permutation" and not mix.validate
    assert mix.alpha == 0.4  # TrainConfig.alpha is the Beta parameter of lambda, as LocalMixup's
    local = tiny("local", pairing="graph").mixer()
    assert local.graph == "exp" and local.decay == 0.01 and local.pairing == "graph"


def test_same_seed_same_numbers_and_record_fields():
    a = train_run(tiny("local"), "cpu")
    b = train_run(tiny("local"), "cpu")
    c = train_run(tiny("local", seed=1), "cpu")
    assert isinstance(a, RunRecord) and trajectory(a) == trajectory(b) and trajectory(a) != trajectory(c)
    assert a.final_test_error_pct == b.final_test_error_pct
    assert a.status == "ok" and a.error is None and len(a.epochs) == 2 and 0 <= a.final_test_error_pct <= 100
    assert a.config == tiny("local").to_dict() and a.fast_path is False and a.stack is None
    assert a.threads == torch.get_num_threads()
    for key in ("torch", "torchvision", "commit", "device"):
        assert key in a.environment
    assert a.train_seconds > 0 and a.parameters > 0
    assert RunRecord.from_dict(a.to_dict()) == a


def test_training_leaves_the_global_random_state_alone():
    """A notebook's own torch RNG is not reseeded by training a run (it used to be: torch.manual_seed(seed))."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_run(tiny("local", epochs=1), "cpu")
    assert torch.equal(torch.rand(3), expected)
    # and the run does not depend on the global state either
    torch.manual_seed(7)
    first = trajectory(train_run(tiny("mixup", epochs=1), "cpu"))
    torch.manual_seed(8)
    assert trajectory(train_run(tiny("mixup", epochs=1), "cpu")) == first


def test_streams_are_independent_and_derived_from_one_seed():
    seeds = {(s, name): stream_seed(s, name) for s in range(50) for name in STREAMS}
    assert len(set(seeds.values())) == len(seeds) and all(0 <= v < 2 ** 63 for v in seeds.values())
    assert stream_seed(3, "mix") == derive_seed(3, 0, 0)  # the core's derivation: Streams(3, stream=(0, 0)) mixes run 3
    assert torch.equal(torch.rand(4, generator=generator(3, "order")), torch.rand(4, generator=generator(3, "order")))
    with pytest.raises(ValueError, match="stream must be one of"):
        stream_seed(0, "data")
    # a bigger network draws more from the init stream: the data order and the mixing draws do not move
    small, big = (prepare(tiny("local", model_options={"blocks": [1, 1, 1, 1], "growth": g}), "cpu") for g in (4, 12))
    (x, y), (x2, y2) = next(iter(small.train)), next(iter(big.train))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    a, b = small.mixer.sample(x), big.mixer.sample(x)
    assert torch.equal(a.lam, b.lam) and torch.equal(a.partner, b.partner)
    assert isinstance(small.generators["mix"], Streams) and small.mixer.generator is small.generators["mix"]


def test_training_learns_something():
    record = train_run(tiny("baseline", epochs=3, train_size=128, lr=0.05), "cpu")
    assert record.epochs[-1].train_loss < record.epochs[0].train_loss < math.log(10) + 0.2


def test_nan_loss_stops_the_run_and_marks_it_failed():  # its strict-JSON record: test_records_cli
    record = train_run(tiny("mixup", lr=1e30, epochs=3), "cpu")
    assert record.status == "failed" and record.failed_epoch == 1 and "epoch 1" in record.error
    assert record.final_test_error_pct is None and len(record.epochs) == 1
    assert not math.isfinite(record.epochs[0].train_loss) and record.epochs[0].test_error_pct is None


def test_eager_step_baseline_is_cross_entropy():
    run = prepare(tiny("baseline"), "cpu")
    x, y = next(iter(run.train))
    expected = torch.nn.functional.cross_entropy(run.model(x), y)
    assert torch.allclose(eager_step(run.model, run.optimizer, x, y, run.mixer), expected.detach())


def test_pad_gives_lenet5_its_32x32_inputs():
    with pytest.raises(ValueError, match=r"model 'lenet5' needs 32x32 inputs.*pass pad=2"):
        TrainConfig("fashion_mnist", "baseline", model="lenet5", train_size=64)
    config = TrainConfig("fashion_mnist", "baseline", model="lenet5", pad=2, train_size=64, test_size=64, batch_size=32)
    run = prepare(config, "cpu")
    x, _ = next(iter(run.train))
    assert x.shape == (32, 1, 32, 32) and config.input_shape == (1, 32, 32)
    border = (0 - 0.5) / 0.5  # a padded pixel is black (0) before normalisation
    assert torch.all(x[..., :2, :] == border) and torch.all(x[..., -2:] == border)
    assert train_run(config, "cpu").status == "ok"


def test_the_cpu_recipe_is_lenet5_on_all_of_fashion_mnist():
    from localmixup.paper.adamixup.method import AdaMixup

    configs = {m: profile_config("cpu", "fashion_mnist", m, 2) for m in ("baseline", "mixup", "local", "adamixup")}
    local = configs["local"]
    assert (local.model, local.pad, local.input_shape, local.train_size, local.test_size) == ("lenet5", 2, (1, 32, 32), None, None)
    assert (local.epochs, local.batch_size, local.lr, local.milestones, local.decay) == (15, 128, 0.05, (8, 12), 5e-4)
    assert [lr_at(local, e) for e in (7, 8, 12)] == pytest.approx([0.05, 0.005, 0.0005])
    assert configs["adamixup"].adamixup_weighting == "official" and configs["mixup"].adamixup_weighting is None
    assert "not the paper's network" in PAPER_CHOICES["cpu"].lower()
    model = prepare(dataclasses.replace(configs["adamixup"], train_size=256, test_size=256), "cpu").model
    assert isinstance(model, AdaMixup) and model.weighting == "official"


def test_recipes():
    paper = profile_config("paper", "fashion_mnist", "local", 3)
    assert (paper.model, paper.batch_size, paper.epochs, paper.lr, paper.decay, paper.alpha) == ("densenet_bc", 64, 40, 0.001, 5e-4, 1.0)
    assert lr_at(paper, 9) == 0.001 and math.isclose(lr_at(paper, 10), 0.0009)
    cifar = profile_config("paper", "cifar10", "mixup")
    assert cifar.decay is None and cifar.epochs == 350
    assert [lr_at(cifar, e) for e in (0, 100, 200, 300)] == pytest.approx([0.1, 0.01, 0.001, 0.0001])
    assert profile_config("paper", "svhn", "baseline").model == "lenet5"
    assert set(PAPER_SETTINGS) == {"cifar10", "cifar100", "svhn", "fashion_mnist", "mnist"}
    quick = profile_config("quick", "fashion_mnist", "local", decay=0.1, epochs=1)
    assert quick.decay == 0.1 and quick.epochs == 1 and quick.train_size == 4000
    assert "alpha" in PAPER_CHOICES and "mix_alpha" not in PAPER_CHOICES
    with pytest.raises(ValueError, match=r"unknown training settings \['mix_alpha'\]"):
        profile_config("quick", "fashion_mnist", "mixup", mix_alpha=1.0)


@pytest.mark.parametrize("kw, match", [
    ({"method": "cutmix"}, "method must be one of"),
    ({"epochs": 0}, r"epochs must be an integer in \[1, inf\)"),
    ({"seed": -1}, "seed must be"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"lr": math.nan}, r"lr must be a real number in \(0, inf\)"),
    ({"lr": math.inf}, r"lr must be a real number in \(0, inf\)"),
    ({"lr": 0.0}, "lr must be"),
    ({"momentum": 1.0}, r"momentum must be a real number in \[0, 1\)"),
    ({"momentum": -0.1}, "momentum must be"),
    ({"weight_decay": -1e-4}, r"weight_decay must be a real number in \[0, inf\)"),
    ({"weight_decay": math.inf}, "weight_decay must be"),
    ({"gamma": math.nan}, "gamma must be"),
    ({"step_size": 0}, "step_size must be"),
    ({"milestones": (30, 20)}, "milestones must be strictly increasing"),
    ({"milestones": "20"}, "milestones must be a sequence"),
    ({"model": "vgg"}, "model must be one of"),
    ({"model_options": {"depth": 3}}, "model_options for model 'densenet_bc' accepts"),
    ({"graph": "knn"}, "graph must be one of 'exp'"),
    ({"pairing": "random"}, "pairing must be one of"),
    ({"alpha": 0.0}, r"alpha must be a real number in \(0, inf\)"),
    ({"alpha": math.inf}, "alpha must be"),
    ({"decay": 0.1}, "decay applies to method='local' only"),
    ({"decay_rule": "nearest_other_class"}, "decay_rule applies to method='local' only"),
    ({"adamixup_weighting": "official"}, "adamixup_weighting applies to method='adamixup' only"),
    ({"method": "adamixup", "adamixup_weighting": "half"}, "adamixup_weighting must be one of"),
    ({"method": "local", "decay": 0.1, "decay_rule": "median"}, "decay_rule must be one of"),
    ({"batch_size": 1}, "batch_size must be"),
    ({"train_size": 0}, "train_size must be"),
    ({"train_size": 70_000}, r"train_size must be an integer in \[1, 60000\]"),
    ({"train_size": 10, "batch_size": 32}, r"batch_size must be an integer in \[2, 10\]"),
    ({"augment": "yes"}, "augment must be"),
    ({"pad": -1}, "pad must be"),
    ({"eval_batch": 0}, "eval_batch must be"),
    ({"profile": "../x"}, "profile must be a plain name"),
    ({"dataset": "imagenet"}, "dataset must be one of"),
])
def test_a_bad_configuration_is_refused_when_built(kw, match):
    settings = {"dataset": "fashion_mnist", "method": "baseline", **kw}
    with pytest.raises(ValueError, match=match):
        TrainConfig(**settings)


@pytest.mark.parametrize("decay, match", [(None, r"decay \(the rate"), (math.nan, "decay must be"), (-1.0, "decay must be"),
                                          (math.inf, r"decay must be a real number in \[0, inf\)")])
def test_local_mixup_needs_a_finite_decay(decay, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig("fashion_mnist", "local", decay=decay)


# --- AdaMixup through the same trainer (method="adamixup") --------------------------------------

def test_adamixup_run_records_parameter_counts_stats_and_is_reproducible():
    from localmixup.paper.adamixup.method import AdaMixup

    a = train_run(tiny("adamixup"), "cpu")
    b = train_run(tiny("adamixup"), "cpu")
    c = train_run(tiny("adamixup", seed=1), "cpu")
    assert a.status == "ok" and len(a.epochs) == 2 and a.fast_path is False
    assert 0 <= a.final_test_error_pct <= 100 and math.isfinite(a.final_test_error_pct)
    assert trajectory(a) == trajectory(b) and trajectory(a) != trajectory(c)
    counts = a.parameter_counts
    assert set(counts) == {"classifier", "generator", "discriminator", "total"}
    assert counts["total"] == counts["classifier"] + counts["generator"] + counts["discriminator"] == a.parameters
    plain = train_run(tiny("mixup", epochs=1), "cpu")
    assert counts["classifier"] == plain.parameters and plain.parameter_counts is None
    for e in a.epochs:
        assert 0 <= e.stats["lam_mean"] <= 1 and 0 <= e.stats["discriminator_accuracy"] <= 1
        assert e.stats["start_mean"] + e.stats["width_mean"] <= 1 + 1e-6
        total = e.stats["mixing_ce"] + e.stats["original_ce"] + e.stats["intrusion_ce"]
        assert math.isclose(total, e.train_loss, rel_tol=1e-4)
        assert e.to_dict()["lam_mean"] == e.stats["lam_mean"]  # written beside the epoch's fields
    run = prepare(tiny("adamixup"), "cpu")
    assert isinstance(run.model, AdaMixup) and run.mixer is None and not run.model.validate
    assert run.generators["mix"].device == torch.device("cpu")


def test_records_say_what_a_step_costs_in_memory():
    a = train_run(tiny("adamixup", epochs=1), "cpu")
    m = train_run(tiny("mixup", epochs=1), "cpu")
    for r in (a, m):
        assert r.memory["cuda_peak_allocated_bytes"] is None  # CPU: no allocator statistic
        assert r.memory["parameter_bytes"] == 4 * r.parameters
    # AdaMixup runs the classifier trunk over 1.5 B samples and the generator's over B/2
    ratio = a.memory["saved_for_backward_bytes"] / m.memory["saved_for_backward_bytes"]
    assert 1.5 < ratio < 2.5, ratio


def test_saved_tensor_bytes_counts_each_storage_once():
    w = torch.randn(50, 40, requires_grad=True)
    x = torch.randn(8, 50)
    with SavedTensorBytes(exclude=[w]) as saved:
        h = x @ w  # saves x (and w, excluded)
        (h * h).sum().backward()  # saves h twice: counted once
    assert saved.bytes == x.numel() * 4 + h.numel() * 4


def test_step_costs_measure_the_methods_side_by_side():
    costs = step_costs([tiny("mixup"), tiny("adamixup")], "cpu", steps=1, rounds=1)
    assert [c["method"] for c in costs] == ["mixup", "adamixup"]
    for c in costs:
        assert c["seconds_per_step"] > 0 and c["steps_per_epoch"] == 3
        assert math.isclose(c["seconds_per_epoch"], 3 * c["seconds_per_step"])
        assert c["cpu_seconds_per_step"] > 0 and math.isclose(c["cpu_seconds_per_epoch"], 3 * c["cpu_seconds_per_step"])
        assert c["saved_for_backward_bytes"] > 0 and c["cuda_step_peak_bytes"] is None
    assert costs[1]["parameter_counts"]["classifier"] == costs[0]["parameters"]
    assert costs[1]["saved_for_backward_bytes"] > costs[0]["saved_for_backward_bytes"]


def test_adamixup_profiles_and_sweep_names():
    from localmixup.paper.sweep.plan import make_configs, record_path

    for profile in ("quick", "paper"):
        ada = profile_config(profile, "cifar10", "adamixup", 2)
        mix = profile_config(profile, "cifar10", "mixup", 2)
        assert ada.decay is None and {**ada.to_dict(), "method": "mixup"} == mix.to_dict()
    configs = make_configs("fashion_mnist", "mixup,local,adamixup", "0-1", "quick")
    assert [c.method for c in configs] == ["mixup"] * 2 + ["local"] * 2 + ["adamixup"] * 2
    assert record_path(configs[-1]).parts[-4:] == ("table1", "quick", "fashion_mnist", "adamixup-seed1.json")
    assert record_path(configs[-1], stack=4) == record_path(configs[-1])  # AdaMixup never trains in a stack


@pytest.mark.parametrize("method", ["local", "adamixup"])
def test_an_interrupted_run_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch, method):
    config = tiny(method, epochs=4, lr=0.05, schedule="step", step_size=2, gamma=0.5)
    whole = train_run(config, "cpu")
    checkpoint = tmp_path / "run.pt"
    with monkeypatch.context() as patch:
        interrupt_at_call(patch, fit_module, "test_error", 3)  # killed during epoch 3: epochs 1-2 are saved
        with pytest.raises(KeyboardInterrupt):
            train_run(config, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert checkpoint.is_file()
    resumed = train_run(config, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert resumed.resumed_after_epochs == [2]
    assert trajectory(resumed) == trajectory(whole)  # bit for bit: weights, momentum, data order, mixing draws
    assert [e.stats for e in resumed.epochs] == [e.stats for e in whole.epochs]
    assert resumed.memory["saved_for_backward_bytes"] == whole.memory["saved_for_backward_bytes"]


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    checkpoint = tmp_path / "run.pt"
    train_run(tiny("mixup", epochs=2), "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert checkpoint.is_file()  # saved after epoch 1; deleting it is the sweep's job, once the record is safe
    with pytest.raises(ValueError, match="checkpoint of another run"):
        train_run(tiny("mixup", epochs=2, seed=5), "cpu", checkpoint=checkpoint)
    with pytest.raises(ValueError, match="checkpoint of another run"):  # the same run, but in a stack of one
        fit_module.fit([tiny("mixup", epochs=2)], "cpu", stacked=True, checkpoint=checkpoint)
    with pytest.raises(ValueError, match="checkpoint_every must be a number of seconds >= 0"):
        train_run(tiny("mixup"), "cpu", checkpoint=checkpoint, checkpoint_every=-1)


def test_a_per_seed_subset_is_stratified_shared_by_the_methods_of_a_seed_and_sets_the_automatic_rate():
    from localmixup.paper.training.automatic_decay import automatic_decay
    from localmixup.paper.training.prepare import train_split

    a, b = tiny("baseline", subset_seed=1), tiny("local", subset_seed=1)
    xa, ya = train_split(a)
    xb, yb = train_split(b)
    assert torch.equal(xa, xb) and torch.bincount(ya).tolist() == [10] * 6 + [9] * 4  # 96 images, 10 classes
    other = train_split(tiny("baseline", subset_seed=2))[0]
    assert not torch.equal(other, xa)
    assert prepare(b, "cpu").train.x.shape[0] == 96
    assert automatic_decay(b) != automatic_decay(tiny("local", subset_seed=2)) > 0
    with pytest.raises(ValueError, match="subset_seed draws a training subset: it needs train_size"):
        tiny("baseline", train_size=None, subset_seed=1)


def test_mixing_runs_record_pair_weights_and_intrusion_and_train_as_without():
    """The statistics read the mixed batches only: the numbers are those of a plain eager loop."""
    config = tiny("local", decay=0.05)
    record = train_run(config, "cpu")
    for epoch in record.epochs:
        assert 0 < epoch.stats["pair_weight"] < 1 and 0 <= epoch.stats["intrusion_rate"] <= 1
        assert 0 <= epoch.stats["weighted_intrusion_rate"] <= 1
    from localmixup.paper.training.evaluate import test_error

    run = prepare(config, "cpu")
    for _ in range(config.epochs):
        for x, y in run.train:
            eager_step(run.model, run.optimizer, x, y, run.mixer)
    assert test_error(run.model, run.test) == record.final_test_error_pct
    assert not train_run(tiny("baseline")).epochs[0].stats  # nothing mixes, nothing to say
