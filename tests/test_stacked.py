"""Several runs trained as one stacked model: the same runs as alone, grouped by recipe."""

import math

import pytest
import torch

from helpers import interrupt_at_call, trajectory

import localmixup.paper.training.fit as fit_module
from localmixup.mixing import MixedBatch
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.fit import fit, train_run
from localmixup.paper.training.optim import SGD
from localmixup.paper.training.prepare import prepare
from localmixup.paper.training.stacked import StackedModels, check_stackable, stack_batches, stacks
from localmixup.paper.training.step import CapturedStep, model_loss, optimiser_step
from localmixup.paper.record_files import read_record
from localmixup.paper.sweep.images import run_sweep
from localmixup.paper.sweep.plan import make_configs

SMALL = dict(model="densenet_bc", model_options={"blocks": [1, 1], "growth": 4}, train_size=96, test_size=64,
             batch_size=32, epochs=1, lr=0.05)


def four_runs(**kw):
    """Every kind of run a stack may hold: baseline, Mixup, Local Mixup with both pairings."""
    settings = dict(SMALL, **kw)
    return [TrainConfig("fashion_mnist", "baseline", seed=0, **settings),
            TrainConfig("fashion_mnist", "mixup", seed=1, **settings),
            TrainConfig("fashion_mnist", "local", seed=2, decay=0.05, **settings),
            TrainConfig("fashion_mnist", "local", seed=3, decay=0.05, pairing="graph", **settings)]


def train_stacked(configs, device, **options):
    return fit(configs, device, stacked=True, **options)


def batch_of(mixer, x, y):
    return mixer(x, y) if mixer is not None else MixedBatch(x, y, y, 1.0, torch.ones(x.shape[0], dtype=x.dtype))


def test_a_stacked_step_is_each_run_s_own_step_in_float64():
    """Three SGD steps of four stacked runs equal the four runs' own steps (float64: no rounding noise)."""
    configs = four_runs()
    alone = [prepare(c, "cpu") for c in configs]
    together = [prepare(c, "cpu") for c in configs]
    for run in alone + together:
        run.model.double()
    stack = StackedModels([run.model for run in together])
    optimizer = SGD(stack.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)
    singles = [SGD(run.model.parameters(), 0.05, momentum=0.9, weight_decay=5e-4) for run in alone]
    feeds = [iter(run.train) for run in alone], [iter(run.train) for run in together]
    for _ in range(3):
        for run, opt, feed in zip(alone, singles, feeds[0]):
            x, y = next(feed)
            optimiser_step(lambda b, m=run.model: model_loss(m, b), opt, batch_of(run.mixer, x.double(), y))
        batches = []
        for run, feed in zip(together, feeds[1]):
            x, y = next(feed)
            batches.append(batch_of(run.mixer, x.double(), y))
        losses = optimiser_step(lambda b: model_loss(stack, b), optimizer, stack_batches(batches))
        assert losses.shape == (4,)
    for r, run in enumerate(alone):
        for name, p in run.model.named_parameters():
            torch.testing.assert_close(stack.params[name][r], p, rtol=1e-10, atol=1e-12, msg=name)
        for name, b in run.model.named_buffers():
            torch.testing.assert_close(stack.buffers[name][r], b, rtol=1e-10, atol=1e-12, msg=name)


def test_train_stacked_writes_the_records_of_the_runs_alone():
    """One step per epoch: the first epoch's loss is computed before any update, so it must agree to
    float32 rounding; after one update the runs still agree closely (see train_stacked's note on drift)."""
    configs = four_runs(train_size=32, epochs=2)
    together = train_stacked(configs, "cpu")
    for r, (config, record) in enumerate(zip(configs, together)):
        alone = train_run(config, "cpu")
        assert record.config == alone.config and record.stack == {"runs": 4, "position": r} and alone.stack is None
        assert record.status == "ok" and record.parameters == alone.parameters
        assert record.memory["parameter_bytes"] == alone.memory["parameter_bytes"]
        assert math.isclose(record.epochs[0].train_loss, alone.epochs[0].train_loss, rel_tol=1e-5)
        # one update later, float32 rounding (amplified by BatchNorm over 32 samples) leaves ~1e-3
        assert math.isclose(record.epochs[1].train_loss, alone.epochs[1].train_loss, rel_tol=5e-3)
        assert abs(record.final_test_error_pct - alone.final_test_error_pct) <= 100 / 64 + 1e-9


def test_a_failing_run_does_not_stop_the_others(monkeypatch):
    original = fit_module.prepare

    def poisoned(config, device, **kw):
        built = original(config, device, **kw)
        if config.seed == 1:
            with torch.no_grad():
                next(built.model.parameters()).fill_(math.nan)
        return built

    monkeypatch.setattr(fit_module, "prepare", poisoned)
    records = train_stacked(four_runs(epochs=2)[:3], "cpu")
    assert [r.status for r in records] == ["ok", "failed", "ok"]
    assert records[1].failed_epoch == 1 and records[1].final_test_error_pct is None
    assert len(records[1].epochs) == 1 and len(records[0].epochs) == 2
    assert all(math.isfinite(r.final_test_error_pct) for r in (records[0], records[2]))


def test_what_may_be_stacked():
    configs = four_runs()
    check_stackable(configs)
    with pytest.raises(ValueError, match="differ in lr"):
        check_stackable([configs[0], TrainConfig("fashion_mnist", "mixup", **dict(SMALL, lr=0.1))])
    with pytest.raises(ValueError, match="adamixup"):
        check_stackable([TrainConfig("fashion_mnist", "adamixup", **SMALL)])
    with pytest.raises(ValueError, match="at least one run"):
        check_stackable([])
    with pytest.raises(ValueError, match=r"stack must be an integer in \[1, inf\), got 0"):
        stacks(configs, 0)


def test_stacks_group_runs_by_recipe():
    configs = make_configs(["fashion_mnist"], ["baseline", "mixup", "local", "adamixup"], "0-2", "quick", decays=[0.05, 0.2])
    configs += make_configs(["fashion_mnist"], ["baseline"], "0-1", "quick", epochs=2)
    groups = stacks(configs, 4)
    assert sorted(id(c) for g in groups for c in g) == sorted(id(c) for c in configs)
    for group in groups:
        assert 1 <= len(group) <= 4
        if group[0].method != "adamixup":
            check_stackable(group)
    assert sum(len(g) == 1 and g[0].method == "adamixup" for g in groups) == 3
    assert sorted(len(g) for g in groups if g[0].method != "adamixup") == [2, 4, 4, 4]
    assert all(len(g) == 1 for g in stacks(configs, 1))


def test_a_stacked_sweep_records_every_run_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs(["fashion_mnist"], ["baseline", "mixup"], "0-1", "quick", epochs=1, train_size=64,
                           test_size=64, batch_size=32)
    paths = run_sweep(configs, device="cpu", progress=False, stack=3).paths
    records = [read_record(p) for p in paths]
    # 4 runs of one recipe: a stack of 3, and one left alone in a stack of its own (stacked all the same)
    assert sorted(r["stack"]["runs"] for r in records) == [1, 3, 3, 3]
    assert all(p.parent.parent.name.endswith("-stacked") for p in paths)
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]
    run_sweep(configs, device="cpu", progress=False, stack=3)
    assert "4 runs, 4 already recorded, 0 to train" in capsys.readouterr().out
    with pytest.raises(ValueError, match="stack applies to backend='local' only"):
        run_sweep(configs, backend="ray", stack=2)


def test_captured_steps_follow_eager_steps_on_cuda():
    """The CUDA-graph steps (one run, and a stack) against eager steps: the first epoch's loss, taken
    before any update, agrees to bf16 rounding; every run trains."""
    configs = four_runs(train_size=32, epochs=2)
    eager, graph = train_stacked(configs, "cuda", fast=False), train_stacked(configs, "cuda", fast=True)
    for config, a, b in zip(configs, eager, graph):
        assert b.fast_path is True and a.fast_path is False and a.status == b.status == "ok"
        assert math.isclose(a.epochs[0].train_loss, b.epochs[0].train_loss, rel_tol=2e-2)
        single = train_run(config, "cuda", fast=True)
        assert single.fast_path is True and single.threads is None
        assert math.isclose(single.epochs[0].train_loss, a.epochs[0].train_loss, rel_tol=2e-2)


def test_an_interrupted_stack_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch):
    configs = four_runs(epochs=3)
    whole = train_stacked(configs, "cpu")
    checkpoint = tmp_path / "stack.pt"
    with monkeypatch.context() as patch:
        interrupt_at_call(patch, fit_module, "test_error", 2)
        with pytest.raises(KeyboardInterrupt):
            train_stacked(configs, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    resumed = train_stacked(configs, "cpu", checkpoint=checkpoint, checkpoint_every=0)
    for a, b in zip(resumed, whole):
        assert a.resumed_after_epochs == [1] and trajectory(a) == trajectory(b)
    with pytest.raises(ValueError, match="checkpoint of another run"):
        train_stacked(configs[:2], "cpu", checkpoint=checkpoint)


def test_a_sweep_names_the_checkpoints_it_will_not_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs(["fashion_mnist"], ["baseline"], "0-1", "quick", epochs=1, train_size=32, test_size=32,
                           batch_size=32)
    from localmixup.paper.sweep.plan import checkpoint_path

    lonely = checkpoint_path(configs[:1], stack=2)  # a stack of one run's checkpoint, but the sweep stacks both runs
    lonely.parent.mkdir(parents=True)
    lonely.write_bytes(b"")
    run_sweep(configs, device="cpu", progress=False, stack=2)
    assert "1 checkpoint(s) in" in capsys.readouterr().out and lonely.is_file()


@pytest.mark.parametrize("stacked", [False, True])
def test_the_static_buffer_step_replayed_by_cuda_graphs_is_the_eager_step(stacked):
    """What CapturedStep records (one-hot targets, lambda as a tensor, warm-up then restore), run
    eagerly on the CPU in float64, gives the eager steps' weights (up to the loss, computed in
    float32 by both, through the soft-target and the class-index branch)."""
    configs = four_runs() if stacked else four_runs()[2:3]
    copies = [[prepare(c, "cpu") for c in configs] for _ in range(2)]
    for run in copies[0] + copies[1]:
        run.model.double()
    if stacked:
        models = [StackedModels([run.model for run in copy]) for copy in copies]
        loss_of = [lambda b, m=m: model_loss(m, b) for m in models]
        states = [m.state() for m in models]
    else:
        models = [copy[0].model for copy in copies]
        loss_of = [lambda b, m=m: model_loss(m, b) for m in models]
        states = [[*m.parameters(), *m.buffers()] for m in models]
    optimizers = [SGD(states[i][:len(list(models[i].parameters()))], 0.05, momentum=0.9, weight_decay=5e-4)
                  for i in range(2)]
    static = CapturedStep(loss_of[1], optimizers[1], states[1], (32, 1, 28, 28), 10, torch.device("cpu"),
                          runs=len(configs) if stacked else None, capture=False)
    feeds = [[iter(run.train) for run in copy] for copy in copies]
    for _ in range(3):
        batches = [[batch_of(run.mixer, x.double(), y) for run, (x, y) in zip(copy, map(next, feed))]
                   for copy, feed in zip(copies, feeds)]
        joined = [stack_batches(b) if stacked else b[0] for b in batches]
        expected = optimiser_step(loss_of[0], optimizers[0], joined[0])
        torch.testing.assert_close(static(joined[1]), expected, rtol=1e-6, atol=1e-6)
    for a, b in zip(states[0], states[1]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_stacked_and_alone_runs_of_one_seed_never_share_a_record(tmp_path, monkeypatch):
    """Issue 14 (5): a stacked run rounds differently from the same run trained alone; their records
    go to different folders, and a record trained one way is refused where the other is expected."""
    from localmixup.paper.record_files import write_record
    from localmixup.paper.sweep.plan import pending, record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs(["fashion_mnist"], ["mixup"], "0", "quick", epochs=1, train_size=64, test_size=64,
                           batch_size=32)
    alone = run_sweep(configs, device="cpu", progress=False).paths[0]
    stacked = run_sweep(configs, device="cpu", progress=False, stack=2).paths[0]
    assert alone != stacked and alone == record_path(configs[0]) and stacked == record_path(configs[0], stack=2)
    assert stacked.parent.parent.name == alone.parent.parent.name + "-stacked"
    assert read_record(alone)["stack"] is None and read_record(stacked)["stack"] == {"runs": 1, "position": 0}
    assert pending(configs) == pending(configs, stack=2) == []
    write_record(stacked, read_record(alone))  # a record trained alone where a stacked one belongs
    with pytest.raises(ValueError, match="holds a run trained alone, which rounds differently"):
        pending(configs, stack=2)
    write_record(alone, {**read_record(alone), "stack": {"runs": 2, "position": 0}})
    with pytest.raises(ValueError, match="holds a run trained in a stack"):
        run_sweep(configs, device="cpu", progress=False)


@pytest.mark.parametrize("method, pairing", [("mixup", "permutation"), ("local", "permutation"), ("local", "graph")])
def test_a_stack_of_alike_runs_mixes_each_run_as_alone(method, pairing):
    """Runs that mix alike are mixed by one batched mixer over their seeds' streams: each run's batch
    is the one it gets alone, bit for bit, step after step."""
    configs = [TrainConfig("fashion_mnist", method, seed=s, pairing=pairing, decay=0.05 if method == "local" else None,
                           **SMALL) for s in (4, 0, 7)]
    runs = [prepare(c, "cpu") for c in configs]
    together, sources = fit_module._stack_mixing(runs, configs, torch.device("cpu"))
    assert len(sources) == 1 and sources[0].shape == (3,)  # one batched stream
    feeds = [iter(run.train) for run in runs]
    for _ in range(2):
        batches = [next(f) for f in feeds]
        stacked = together(batches)
        alone = stack_batches([run.mixer(x, y) for run, (x, y) in zip(runs, batches)])
        for name, a, b in zip(stacked._fields, stacked, alone):
            assert torch.equal(a, b), name
