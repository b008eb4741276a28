"""Training one run: optimiser, determinism, failure on NaN, the profiles."""

import math

import pytest
import torch

from helpers import interrupt_at_call, trajectory

from localmixup.mixing import LocalMixup
from localmixup.paper.engine.train import PAPER_SETTINGS, SGD, TrainConfig, eager_step, prepare, profile_config, train_run

TINY = dict(model="densenet_bc", model_options={"blocks": [1, 1, 1, 1], "growth": 4}, train_size=96, test_size=64,
            batch_size=32, epochs=2, lr=0.05, alpha=0.01)


def tiny(method, **kw):
    settings = dict(TINY, **kw)
    if method != "local":
        settings["alpha"] = None
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
    mix = tiny("mixup").mixer()
    assert isinstance(mix, LocalMixup) and mix.graph == "none" and mix.pairing == "permutation" and not mix.validate
    local = tiny("local", pairing="graph").mixer()
    assert local.graph == "exp" and local.decay == 0.01 and local.pairing == "graph"


def test_same_seed_same_numbers_and_record_fields():
    a = train_run(tiny("local"), "cpu")
    b = train_run(tiny("local"), "cpu")
    c = train_run(tiny("local", seed=1), "cpu")
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert a["final_test_error_pct"] == b["final_test_error_pct"]
    assert [e["train_loss"] for e in a["epochs"]] != [e["train_loss"] for e in c["epochs"]]
    assert a["status"] == "ok" and len(a["epochs"]) == 2 and 0 <= a["final_test_error_pct"] <= 100
    assert a["config"]["method"] == "local" and a["fast_path"] is False
    for key in ("torch", "torchvision", "commit", "device"):
        assert key in a["environment"]
    assert a["train_seconds"] > 0 and a["parameters"] > 0


def test_training_learns_something():
    record = train_run(tiny("baseline", epochs=3, train_size=128, lr=0.05), "cpu")
    assert record["epochs"][-1]["train_loss"] < record["epochs"][0]["train_loss"] < math.log(10) + 0.2


def test_nan_loss_stops_the_run_and_marks_it_failed():
    record = train_run(tiny("mixup", lr=1e30, epochs=3), "cpu")
    assert record["status"] == "failed" and record["failed_epoch"] == 1
    assert record["final_test_error_pct"] is None and len(record["epochs"]) == 1
    assert not math.isfinite(record["epochs"][0]["train_loss"])


def test_eager_step_baseline_is_cross_entropy():
    model, opt, train, _, mixer = prepare(tiny("baseline"), "cpu")
    x, y = next(iter(train))
    expected = torch.nn.functional.cross_entropy(model(x), y)
    assert torch.allclose(eager_step(model, opt, x, y, mixer), expected.detach())


def test_profiles():
    paper = profile_config("paper", "fashion_mnist", "local", 3)
    assert (paper.model, paper.batch_size, paper.epochs, paper.lr, paper.alpha) == ("densenet_bc", 64, 40, 0.001, 5e-4)
    assert paper.lr_at(9) == 0.001 and math.isclose(paper.lr_at(10), 0.0009)
    cifar = profile_config("paper", "cifar10", "mixup")
    assert cifar.alpha is None and cifar.epochs == 350
    assert [cifar.lr_at(e) for e in (0, 100, 200, 300)] == pytest.approx([0.1, 0.01, 0.001, 0.0001])
    assert profile_config("paper", "svhn", "baseline").model == "lenet5"
    assert set(PAPER_SETTINGS) == {"cifar10", "cifar100", "svhn", "fashion_mnist", "mnist"}
    quick = profile_config("quick", "fashion_mnist", "local", alpha=0.1, epochs=1)
    assert quick.alpha == 0.1 and quick.epochs == 1 and quick.train_size == 4000


@pytest.mark.parametrize("kw, match", [({"method": "cutmix"}, "method"), ({"epochs": 0}, "epochs"), ({"seed": -1}, "seed")])
def test_bad_configuration_names_the_parameter(kw, match):
    settings = dict(dataset="fashion_mnist", method="baseline", **{k: v for k, v in kw.items() if k != "method"})
    if "method" in kw:
        settings["method"] = kw["method"]
    with pytest.raises(ValueError, match=match):
        TrainConfig(**settings)
    with pytest.raises(ValueError, match="alpha"):
        TrainConfig("fashion_mnist", "local")
    with pytest.raises(ValueError, match="dataset"):
        TrainConfig("imagenet", "local", alpha=1.0)


# --- AdaMixup through the same trainer (method="adamixup") --------------------------------------

def test_adamixup_run_records_parameter_counts_stats_and_is_reproducible():
    from localmixup.baselines.adamixup import AdaMixup

    a = train_run(tiny("adamixup"), "cpu")
    b = train_run(tiny("adamixup"), "cpu")
    c = train_run(tiny("adamixup", seed=1), "cpu")
    assert a["status"] == "ok" and len(a["epochs"]) == 2 and a["fast_path"] is False
    assert 0 <= a["final_test_error_pct"] <= 100 and math.isfinite(a["final_test_error_pct"])
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert a["final_test_error_pct"] == b["final_test_error_pct"]
    assert [e["train_loss"] for e in a["epochs"]] != [e["train_loss"] for e in c["epochs"]]
    counts = a["parameter_counts"]
    assert set(counts) == {"classifier", "generator", "discriminator", "total"}
    assert counts["total"] == counts["classifier"] + counts["generator"] + counts["discriminator"] == a["parameters"]
    plain = train_run(tiny("mixup", epochs=1), "cpu")
    assert counts["classifier"] == plain["parameters"] and "parameter_counts" not in plain
    for e in a["epochs"]:
        assert 0 <= e["lam_mean"] <= 1 and 0 <= e["discriminator_accuracy"] <= 1
        assert e["alpha_mean"] + e["delta_mean"] <= 1 + 1e-6
        total = e["mixing_ce"] + e["original_ce"] + e["intrusion_ce"]
        assert math.isclose(total, e["train_loss"], rel_tol=1e-4)
    model, _, _, _, generator = prepare(tiny("adamixup"), "cpu")
    assert isinstance(model, AdaMixup) and isinstance(generator, torch.Generator) and not model.validate
    assert tiny("adamixup").mixer() is None


def test_records_say_what_a_step_costs_in_memory():
    a = train_run(tiny("adamixup", epochs=1), "cpu")
    m = train_run(tiny("mixup", epochs=1), "cpu")
    for r in (a, m):
        assert r["memory"]["cuda_peak_allocated_bytes"] is None  # CPU: no allocator statistic
        assert r["memory"]["parameter_bytes"] == 4 * r["parameters"]
    # AdaMixup runs the classifier trunk over 1.5 B samples and the generator's over B/2
    ratio = a["memory"]["saved_for_backward_bytes"] / m["memory"]["saved_for_backward_bytes"]
    assert 1.5 < ratio < 2.5, ratio


def test_saved_tensor_bytes_counts_each_storage_once():
    from localmixup.paper.engine.train import SavedTensorBytes

    w = torch.randn(50, 40, requires_grad=True)
    x = torch.randn(8, 50)
    with SavedTensorBytes(exclude=[w]) as saved:
        h = x @ w  # saves x (and w, excluded)
        (h * h).sum().backward()  # saves h twice: counted once
    assert saved.bytes == x.numel() * 4 + h.numel() * 4


def test_step_costs_measure_the_methods_side_by_side():
    from localmixup.paper.engine.train import step_costs

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
    from localmixup.paper.sweep.images import make_configs, record_path

    for profile in ("quick", "paper"):
        ada = profile_config(profile, "cifar10", "adamixup", 2)
        mix = profile_config(profile, "cifar10", "mixup", 2)
        assert ada.alpha is None and {**ada.to_dict(), "method": "mixup"} == mix.to_dict()
    configs = make_configs("fashion_mnist", "mixup,local,adamixup", "0-1", "quick")
    assert [c.method for c in configs] == ["mixup"] * 2 + ["local"] * 2 + ["adamixup"] * 2
    assert record_path(configs[-1]).parts[-4:] == ("table1", "quick", "fashion_mnist", "adamixup-seed1.json")


@pytest.mark.parametrize("method", ["local", "adamixup"])
def test_an_interrupted_run_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch, method):
    import localmixup.paper.engine.train as train_module

    config = tiny(method, epochs=4, lr=0.05, schedule="step", step_size=2, gamma=0.5)
    whole = train_run(config, "cpu")
    checkpoint = tmp_path / "run.pt"
    with monkeypatch.context() as patch:
        interrupt_at_call(patch, train_module, "test_error", 3)  # killed during epoch 3: epochs 1-2 are saved
        with pytest.raises(KeyboardInterrupt):
            train_run(config, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert checkpoint.is_file()
    resumed = train_run(config, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert resumed["resumed_after_epochs"] == [2]
    assert trajectory(resumed) == trajectory(whole)  # bit for bit: weights, momentum, data order, mixing draws
    assert resumed["memory"]["saved_for_backward_bytes"] == whole["memory"]["saved_for_backward_bytes"]
    assert set(resumed) == set(whole) | {"resumed_after_epochs"}


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    checkpoint = tmp_path / "run.pt"
    train_run(tiny("mixup", epochs=2), "cpu", checkpoint=checkpoint, checkpoint_every=0)
    assert checkpoint.is_file()  # saved after epoch 1; deleting it is the sweep's job, once the record is safe
    with pytest.raises(ValueError, match="checkpoint of another run"):
        train_run(tiny("mixup", epochs=2, seed=5), "cpu", checkpoint=checkpoint)
    with pytest.raises(ValueError, match="checkpoint_every must be a number of seconds >= 0"):
        train_run(tiny("mixup"), "cpu", checkpoint=checkpoint, checkpoint_every=-1)
