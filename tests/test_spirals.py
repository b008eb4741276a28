"""Spirals (Figure 3): the many-runs trainer (kernel and torch paths), the authors' setting, the resumable sweep."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from localmixup.loss import mixup_loss, per_sample_cross_entropy
from localmixup.mixing import LocalMixup
from localmixup.paper.spirals import mlp_kernel
from localmixup.paper.spirals.config import AUTHORS, ManyRunsConfig
from localmixup.paper.spirals.networks import init_mlps, stacked_layers
from localmixup.paper.spirals.reference import train_single
from localmixup.paper.spirals.trainer import epoch_batches, loss_batch, loss_coefficients, normalize, train_many
from localmixup.paper.run_record import unpack_records
from localmixup.paper.training.seeding import run_streams
from localmixup.paper.training.stacked import StackedModels
from localmixup.paper.spirals.data import make_spirals
from localmixup.paper.spirals.protocol import PAPER_BATCH_SIZES, PAPER_EPS, SETTINGS, paper_config
from localmixup.paper.spirals.sweep import (
    load_spirals_curves,
    load_spirals_sweep,
    spirals_plan,
    sweep_folder,
    sweep_spirals,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(hidden=(16, 16), epochs=3)
SETTINGS_SMALL = [
    dict(pairing="graph"),
    dict(pairing="permutation"),
    AUTHORS,
    dict(AUTHORS, output="logits"),
]


@pytest.fixture(scope="module")
def split():
    return make_spirals(60, seed=1)  # 96 training points


def _flat(result) -> torch.Tensor:
    """Every parameter of each run, (R, P)."""
    return torch.cat([p.detach().flatten(1) for p in result.models.parameters()], dim=1)


def _run(result, r: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(w[r].detach(), b[r].detach()) for w, b in stacked_layers(result.models)]


def _layers_diff(result, run: int, module: torch.nn.Module) -> float:
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    return max(max((w - l.weight).abs().max().item(), (b - l.bias).abs().max().item()) for (w, b), l in zip(_run(result, run), linears))


def _curves(result) -> np.ndarray:
    """Test error (percent) of each run at its recorded epochs, (R, epochs)."""
    return np.array([[e.test_error_pct for e in r.epochs] for r in result.records])


def _pair_weights(result) -> np.ndarray:
    """Mean pair weight of each run over its recorded epochs, (R,)."""
    return np.array([np.mean([e.stats["pair_weight"] for e in r.epochs]) for r in result.records])


# --- the authors' setting against a plain single-model reference -----------------------------


def _authors_reference(split, seed, config, epochs):
    """The authors' spirals loop, written plainly: nn.Sequential ending in nn.Softmax, nn.CrossEntropyLoss
    (which applies log-softmax again), torch.optim.Adam; permutation pairs, lam * CE(y_a) + (1 - lam) * CE(y_b)
    times the fraction of pairs within eps, no mixing at eps = 0. Same initial weights and random numbers as run
    ``seed`` of train_many. Returns the Linear layers after each epoch."""
    x, y = split.x_train.double(), split.y_train
    net = torch.nn.Sequential(*init_mlps([seed], config.sizes(2, 2), dtype=torch.float64)[0], torch.nn.Softmax(dim=1))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    order, mix = run_streams(seed, "order"), run_streams(seed, "mix")
    sampler = LocalMixup("threshold", eps=config.eps, pairing="permutation", generator=mix)
    history = []
    for _ in range(epochs):
        index = order.permutation(len(x))
        for first in range(0, len(x), config.batch_size):
            xb, yb = x[index[first : first + config.batch_size]], y[index[first : first + config.batch_size]]
            optimizer.zero_grad()
            if config.eps == 0:
                loss = criterion(net(xb), yb)
            else:
                draw = sampler.sample(xb)  # lam and the permutation, from the run's stream
                lam, partner = float(draw.lam), draw.partner
                kept = ((xb - xb[partner]).norm(dim=1) <= config.eps).double()
                out = net(lam * xb + (1 - lam) * xb[partner])
                loss = (lam * criterion(out, yb) + (1 - lam) * criterion(out, yb[partner])) * kept.mean()
            loss.backward()
            optimizer.step()
        history.append([(l.weight.detach().clone(), l.bias.detach().clone()) for l in linears])
    return history


@pytest.mark.parametrize("eps, batch_size", [(0.8, 23), (0.0, 23), (0.8, 200)])
def test_authors_setting_equals_the_plain_reference(split, eps, batch_size):
    """R stacked runs of the authors' setting follow the plain reference step for step (float64).

    Batch 23 on 96 points: 5 steps per epoch, the last one partial; batch 200: one step per epoch,
    so that the epoch-by-epoch comparison is a step-by-step one."""
    config = ManyRunsConfig(eps=eps, batch_size=batch_size, hidden=(16, 16), epochs=3, **AUTHORS)
    seeds = [3, 8, 21]
    references = {seed: _authors_reference(split, seed, config, 3) for seed in seeds}
    for epochs in (1, 2, 3):
        stacked = train_many(split, seeds, ManyRunsConfig(**{**config.as_dict(), "hidden": (16, 16), "epochs": epochs}), dtype=torch.float64)
        for r, seed in enumerate(seeds):
            expected = references[seed][epochs - 1]
            got = _run(stacked, r)
            # The library rounds the soft targets and the loss coefficients to float32 (relative 6e-8 per step):
            # parameters (about 0.5) agree to 1e-6, while another setting differs by more than 1e-4 after one epoch.
            assert max((a - b).abs().max().item() for pa, pb in zip(got, expected) for a, b in zip(pa, pb)) < 1e-6


def test_the_reference_can_tell_the_settings_apart(split):
    """The comparison above fails for a setting that is not the authors' (plain logits)."""
    config = ManyRunsConfig(eps=0.8, batch_size=23, hidden=(16, 16), epochs=1, **AUTHORS)
    logits = train_many(split, [3], ManyRunsConfig(**{**config.as_dict(), "hidden": (16, 16), "output": "logits"}), dtype=torch.float64)
    expected = _authors_reference(split, 3, config, 1)[-1]
    assert max((a - b).abs().max().item() for pa, pb in zip(_run(logits, 0), expected) for a, b in zip(pa, pb)) > 1e-4


# --- kernel, torch path and the plain loop agree -------------------------------------------


@pytest.mark.parametrize("options", SETTINGS_SMALL, ids=["eq2-graph", "eq2-permutation", "authors", "batch-logits"])
@pytest.mark.parametrize("eps", [0.8, 0.0])
def test_kernel_torch_and_plain_loop_agree(split, options, eps):
    """Each stacked run follows the trajectory of the plain nn.Module + LocalMixup + mixup_loss loop,
    with the compiled kernel and with the torch path."""
    config = ManyRunsConfig(eps=eps, batch_size=23, **SMALL, **options)
    seeds = [5, 11]
    kernel = train_many(split, seeds, config, dtype=torch.float64, backend="kernel")
    torch_path = train_many(split, seeds, config, dtype=torch.float64, backend="torch")
    # the library's cross-entropy is float32: the paths agree to float32 rounding
    assert (_flat(kernel) - _flat(torch_path)).abs().max().item() < 5e-6
    for a, b in zip(kernel.records, torch_path.records):  # the kernel's loss is autograd's
        assert [e.train_loss for e in a.epochs] == pytest.approx([e.train_loss for e in b.epochs], rel=1e-6)
        assert a.final_train_error_pct == b.final_train_error_pct
    for r, seed in enumerate(seeds):
        error, module = train_single(split, seed, config, dtype=torch.float64)
        assert _layers_diff(kernel, r, module) < 5e-6
        assert kernel.records[r].final_test_error_pct == pytest.approx(error, abs=1e-10)
    float32 = train_many(split, seeds, config, backend="kernel")
    assert (_flat(float32).double() - _flat(kernel)).abs().max().item() < 1e-4


def test_loss_coefficients_decompose_mixup_loss(split):
    """sum_i c_i CE(z_i, t_i), the loss the kernel minimises, is mixup_loss for both weightings."""
    g = torch.Generator().manual_seed(0)
    for options in SETTINGS_SMALL[1:3]:
        config = ManyRunsConfig(eps=0.9, batch_size=16, **SMALL, **options)
        mixer = LocalMixup("threshold", eps=0.9, pairing="permutation", generator=run_streams([1, 2, 3], "mix"))
        order = run_streams([1, 2, 3], "order").permutation(len(split.x_train))
        for batch in list(epoch_batches(split.x_train, split.y_train, order, config, mixer))[:3]:
            logits = torch.randn(*batch.weight.shape, 2, generator=g)
            c, t = loss_coefficients(batch, config), batch.soft_targets(2)
            expected = mixup_loss(logits, loss_batch(batch, config), normalize=normalize(config))
            assert torch.allclose((c * per_sample_cross_entropy(logits, t)).sum(dim=-1), expected, atol=1e-6)
            assert (c > 0).any() and (c >= 0).all()


def test_runs_are_independent(split):
    config = ManyRunsConfig(eps=0.8, batch_size=20, pairing="permutation", **SMALL)
    a = train_many(split, [1, 2, 3], config, curve_every=1)
    b = train_many(split, [1, 99, 3], config, curve_every=1)
    for r in (0, 2):
        assert torch.equal(_flat(a)[r], _flat(b)[r]) and np.array_equal(_curves(a)[r], _curves(b)[r])
    assert not torch.equal(_flat(a)[1], _flat(b)[1])
    alone = train_many(split, [3], config)
    assert torch.equal(_flat(alone)[0], _flat(a)[2])  # the kernel trains one run at a time
    threads = train_many(split, [1, 2, 3], config, curve_every=1, threads=2)
    assert torch.equal(_flat(threads), _flat(a)) and np.array_equal(_curves(threads), _curves(a))


def test_same_seed_same_numbers(split):
    config = ManyRunsConfig(eps=0.8, batch_size=20, **AUTHORS, **SMALL)
    a, b = train_many(split, [4, 7], config, curve_every=1), train_many(split, [4, 7], config, curve_every=1)
    numbers = lambda result: [[(e.train_loss, e.test_error_pct, e.stats) for e in r.epochs] for r in result.records]  # noqa: E731
    assert numbers(a) == numbers(b)
    assert [e.epoch for e in a.records[0].epochs] == [1, 2, 3] and _curves(a).shape == (2, 3)
    for r, record in enumerate(a.records):
        assert record.final_test_error_pct == _curves(a)[r, -1] and 0 <= record.final_train_error_pct <= 100
        assert record.config == {**config.as_dict(), "seed": [4, 7][r]} and record.stack == {"runs": 2, "position": r}
    sparse = train_many(split, [4, 7], config, curve_every=2)
    assert [e.epoch for e in sparse.records[0].epochs] == [2, 3]  # every curve_every epochs, and the last
    assert torch.equal(_flat(sparse), _flat(a))


def test_extremes_vanilla_and_mixup(split):
    """eps = 0 with graph pairing is plain training, as the authors' no-mixup branch; eps above every
    distance makes Eq. (2) and the batch scaling coincide (every weight is 1)."""
    seeds = [0, 1]
    erm = train_many(split, seeds, ManyRunsConfig(eps=0.0, batch_size=20, **dict(AUTHORS, output="logits"), **SMALL))
    graph0 = train_many(split, seeds, ManyRunsConfig(eps=0.0, batch_size=20, pairing="graph", **SMALL))
    assert torch.allclose(_flat(erm), _flat(graph0), atol=1e-5)
    assert np.all(_pair_weights(erm) == 1.0) and np.all(_pair_weights(graph0) == 1.0)
    eq2 = train_many(split, seeds, ManyRunsConfig(eps=10.0, batch_size=20, pairing="permutation", **SMALL))
    batch = train_many(split, seeds, ManyRunsConfig(eps=10.0, batch_size=20, **dict(AUTHORS, output="logits"), **SMALL))
    assert torch.allclose(_flat(eq2), _flat(batch), atol=1e-5) and np.all(_pair_weights(eq2) == 1.0)
    local = train_many(split, seeds, ManyRunsConfig(eps=0.8, batch_size=20, pairing="permutation", **SMALL))
    assert not torch.allclose(_flat(local), _flat(eq2), atol=1e-3)
    assert np.all((_pair_weights(local) > 0) & (_pair_weights(local) < 1))


# --- the stacked model and the kernel ----------------------------------------------------------


def test_init_law_and_kernel_layout(split):
    """Initial weights follow nn.Linear's law from the run's own stream; the kernel's packed layout pads
    every width to a multiple of 8 with zeros, round-trips, and training keeps the padding at zero."""
    models = init_mlps([3, 4], (2, 100, 2))
    (w1, b1), (w2, b2) = [(m.weight, m.bias) for m in models[0] if isinstance(m, torch.nn.Linear)]
    assert w1.shape == (100, 2) and w1.abs().max() <= 1 / np.sqrt(2) and w2.abs().max() <= 0.1
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), init_mlps([3], (2, 100, 2))[0].parameters()))
    assert not torch.equal(w1, models[1][0].weight)  # a run's init depends on its seed only

    sizes = (2, 13, 5, 2)
    layers = [(w.detach(), b.detach()) for w, b in stacked_layers(StackedModels(init_mlps([3, 4], sizes)))]
    fan_in, fan_out = mlp_kernel.layout(sizes)
    assert (fan_in, fan_out) == ([2, 16, 8], [16, 8, 8])
    params = mlp_kernel.pack(layers)
    assert params.shape == (2, 2 * 16 + 16 + 16 * 8 + 8 + 8 * 8 + 8)
    assert all(torch.equal(a, b) and torch.equal(c, d) for (a, c), (b, d) in zip(layers, mlp_kernel.unpack(params, sizes)))
    lib = mlp_kernel.load(torch.float32)
    x, y = split.x_train[:40].expand(2, -1, -1).contiguous(), split.y_train[:40]
    targets = torch.nn.functional.one_hot(y, 2).float().expand(2, -1, -1).contiguous()
    moments = torch.zeros_like(params), torch.zeros_like(params)
    losses = mlp_kernel.epoch(lib, params, *moments, fan_in, fan_out, 2, x, targets, torch.full((2, 40), 1 / 20), batch_size=20,
                              softmax_output=False, lr=0.01, betas=(0.9, 0.999), eps=1e-8, step=0)
    assert losses.shape == (2,) and (losses > 0).all()
    padded = params - mlp_kernel.pack(mlp_kernel.unpack(params, sizes))  # the padding alone
    assert padded.abs().max() == 0 and not torch.equal(params, mlp_kernel.pack(layers))


def test_kernel_prediction_equals_torch(split):
    result = train_many(split, [1, 2, 3], ManyRunsConfig(eps=1.0, batch_size=20, **SMALL))
    lib = mlp_kernel.load(torch.float32)
    labels = mlp_kernel.predict(lib, mlp_kernel.pack(stacked_layers(result.models)), *mlp_kernel.layout((2, 16, 16, 2)), 2,
                                split.x_test, threads=2)
    with torch.no_grad():
        assert torch.equal(labels, result.models(split.x_test, shared=True).argmax(dim=-1))
    assert [r.final_test_error_pct for r in result.records] == (100.0 * (labels != split.y_test).double().mean(dim=1)).tolist()


def test_no_compiler_falls_back_to_torch(split, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("LOCALMIXUP_CACHE", str(tmp_path))
    mlp_kernel.load.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="torch path"):
            assert mlp_kernel.load(torch.float32) is None
        config = ManyRunsConfig(eps=1.0, batch_size=20, **SMALL)
        with pytest.raises(RuntimeError, match="compiler"):
            train_many(split, [1], config, backend="kernel")
        assert len(train_many(split, [1], config).records) == 1  # auto: the torch path
    finally:
        mlp_kernel.load.cache_clear()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=-1.0, batch_size=20), "eps"),
        (dict(eps=1.0, batch_size=0), "batch_size"),
        (dict(eps=1.0, batch_size=20, weighting="mine"), "weighting"),
        (dict(eps=1.0, batch_size=20, output="probabilities"), "output"),
        (dict(eps=1.0, batch_size=20, pairing="graph", weighting="batch"), "permutation"),
        (dict(eps=1.0, batch_size=20, hidden=(100, 0)), "hidden"),
        (dict(eps=1.0, batch_size=20, alpha=0.0), "alpha"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ManyRunsConfig(**kwargs)


def test_trainer_errors(split):
    config = ManyRunsConfig(eps=1.0, batch_size=20, **SMALL)
    for seeds, message in [([1, 1], "distinct"), ([-1], "seed"), ([], "at least one")]:
        with pytest.raises(ValueError, match=message):
            train_many(split, seeds, config)
    with pytest.raises(ValueError, match="ManyRunsConfig"):
        train_many(split, [1], {"eps": 1.0})
    for kwargs, message in [({"backend": "gpu"}, "backend"), ({"threads": 0}, "threads"), ({"dtype": torch.float16}, "dtype"),
                            ({"curve_every": -1}, "curve_every")]:
        with pytest.raises(ValueError, match=message):
            train_many(split, [1], config, **kwargs)


# --- the sweep -------------------------------------------------------------------------------


def test_paper_grid_and_settings():
    assert PAPER_EPS[0] == 0 and PAPER_EPS[-1] == 10 and len(PAPER_EPS) == 10
    assert [PAPER_BATCH_SIZES[e] for e in PAPER_EPS] == [20, 241, 103, 50, 33, 25, 22, 20, 20, 20]
    authors = paper_config("authors", 0.6)
    assert (authors.batch_size, authors.epochs, authors.lr, authors.alpha) == (241, 200, 0.01, 1.0)
    assert (authors.pairing, authors.weighting, authors.output, authors.mixing) == ("permutation", "batch", "softmax", True)
    assert not paper_config("authors", 0.0).mixing and paper_config("eq2-permutation", 0.0).mixing
    assert set(SETTINGS) == {"authors", "eq2-permutation", "eq2-graph"}
    with pytest.raises(ValueError, match="not on the authors' grid"):
        paper_config("authors", 0.7)
    paper = spirals_plan("paper")
    assert {s: len(v) for s, v in paper.seeds.items()} == {"authors": 1000, "eq2-permutation": 1000, "eq2-graph": 200}
    chunks = -(-1000 // paper.chunk_size) * 2 + -(-200 // paper.chunk_size)
    assert paper.eps_grid == list(PAPER_EPS) and paper.epochs == 200 and len(paper.paths) == 10 * chunks
    assert paper.paths[0].name == f"seeds-00000-{paper.chunk_size - 1:05d}.json" and paper.paths[-1].name.endswith("-00199.json")
    other = spirals_plan("quick", runs=5, first_seed=100, data_seed=2)
    assert other.tag == "quick-data2" and other.data["seed"] == 2 and other.seeds["authors"] == list(range(100, 105))
    with pytest.raises(ValueError, match="setting"):
        paper_config("mine", 1.0)


def test_sweep_records_chunks_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    common = dict(tag="t", setting="eq2-permutation", eps_grid=[0.0, 1.0], epochs=2, hidden=(8,), data={"points_per_class": 40},
                  batch_sizes={0.0: 16, 1.0: 16}, chunk_size=2, progress=False)
    first = sweep_spirals(seeds=[0, 1, 2], **common)
    assert len(first) == 6 and set(first.eps) == {0.0, 1.0} and first["test_error_pct"].between(0, 100).all()
    folder = sweep_folder("t", "eq2-permutation", 1.0)
    assert sorted(p.name for p in folder.iterdir()) == ["seeds-00000-00001.json", "seeds-00002-00002.json"]
    record = json.loads((folder / "seeds-00000-00001.json").read_text())
    assert record["seeds"] == [0, 1] and record["config"]["eps"] == 1.0 and record["data"]["points_per_class"] == 40
    runs = unpack_records(record["runs"])
    assert [r.config["seed"] for r in runs] == [0, 1] and all(r.ok and [e.epoch for e in r.epochs] == [2] for r in runs)
    assert {"torch", "device", "commit"} <= set(runs[0].environment) and record["cpu_seconds"] > 0
    assert "environment" in record["runs"]["shared"]  # what the runs share is stored once

    # A lost chunk and new seeds: only they are trained, the kept file is untouched, same numbers.
    kept, lost = folder / "seeds-00000-00001.json", folder / "seeds-00002-00002.json"
    kept_text, lost_record = kept.read_text(), json.loads(lost.read_text())
    lost.unlink()
    calls = []
    import localmixup.paper.spirals.sweep as module

    original = module.train_many
    monkeypatch.setattr(module, "train_many", lambda split, seeds, cfg, **kw: calls.append((cfg.eps, list(seeds))) or original(split, seeds, cfg, **kw))
    again = sweep_spirals(seeds=[0, 1, 2, 3], **common)
    assert calls == [(0.0, [3]), (1.0, [2, 3])]
    assert kept.read_text() == kept_text
    retrained = unpack_records(json.loads((folder / "seeds-00002-00003.json").read_text())["runs"])[0]
    assert retrained.to_dict()["epochs"][0]["test_error_pct"] == unpack_records(lost_record["runs"])[0].epochs[0].test_error_pct
    assert len(again) == 8 and len(load_spirals_sweep("t")) == 8
    curves = load_spirals_curves("t", "eq2-permutation")
    assert len(curves) == 8 and set(curves.epoch) == {2}

    with pytest.raises(ValueError, match="another configuration"):
        sweep_spirals(seeds=[0], **{**common, "epochs": 3})


def test_sweep_survives_sigkill(tmp_path, monkeypatch):
    """A real sweep process, killed while a later chunk is in progress, then restarted: no run lost, none repeated."""
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path / "results"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "localmixup.paper", "spirals", "--setting", "authors", "--runs", "6", "--eps", "1,10",
               "--epochs", "40", "--hidden", "16", "--points-per-class", "100", "--chunk", "2", "--tag", "k", "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, found = time.time() + 150, []
    while time.time() < deadline and process.poll() is None and not found:
        found = list((tmp_path / "results").rglob("seeds-*.json"))
        time.sleep(0.02)
    assert found, f"no record appeared: {process.stderr.read().decode() if process.poll() is not None else 'timeout'}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = {p: p.read_bytes() for p in (tmp_path / "results").rglob("seeds-*.json")}
    assert 1 <= len(first) < 6, "the kill must land while a later chunk is in progress"

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"12 runs, {2 * len(first)} already recorded, {12 - 2 * len(first)} to train" in done.stdout
    for path, content in first.items():
        assert path.read_bytes() == content
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file() and p.suffix != ".json"]  # no temporary left
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    frame = load_spirals_sweep("k")
    assert sorted(frame.groupby("eps")["seed"].apply(list).tolist()) == [[0, 1, 2, 3, 4, 5]] * 2

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "12 runs, 12 already recorded, 0 to train" in again.stdout


def spirals(args: list[str]) -> int:
    """``localmixup spirals ARGS``, in this process: its exit status."""
    from localmixup.paper.cli import main

    try:
        return main(["spirals", *args])
    except SystemExit as exit:  # argparse's own errors
        return exit.code


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    for args, code, needle in [(["--setting", "authors", "--eps", "0.7", "--runs", "1"], 1, "give one (--batch-size on the command line"),
                               (["--setting", "authors", "--threads", "0"], 2, "--threads"),
                               (["--setting", "mine"], 2, "invalid choice"),
                               (["--setting", "authors", "--hidden", "10,x"], 2, "--hidden"),
                               (["--setting", "authors", "--eps", "-1"], 2, "--eps"),
                               (["--setting", "authors", "--draws", "3-1"], 2, "--draws")]:
        assert spirals(args) == code
        error = capsys.readouterr().err
        assert needle in error and error.count("\n") == 1, error


def test_draws_have_their_own_folders_seeds_and_data(tmp_path, monkeypatch):
    """A sweep over data draws: each draw trains on its own data set, in its own folder, with seeds no other draw uses."""
    from localmixup.paper.spirals.protocol import DRAW_SEED_STRIDE, draw_seeds

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    assert draw_seeds(3, 2) == [3 * DRAW_SEED_STRIDE, 3 * DRAW_SEED_STRIDE + 1]
    with pytest.raises(ValueError, match="runs"):
        draw_seeds(0, DRAW_SEED_STRIDE + 1)  # would take the next draw's seeds
    args = ["--setting", "eq2-permutation", "--draws", "1-2", "--runs", "2", "--eps", "1,10", "--epochs", "2", "--hidden", "8",
            "--points-per-class", "40", "--chunk", "2", "--no-progress"]
    assert spirals(args) == 0
    frame = load_spirals_sweep("draws")
    assert len(frame) == 8 and sorted(set(frame["data"])) == ["draw 1", "draw 2"]
    assert sorted(frame.query("data == 'draw 2'")["seed"].unique()) == draw_seeds(2, 2)
    record = json.loads((sweep_folder("draws", "eq2-permutation", 1.0, draw=2) / f"seeds-{2 * DRAW_SEED_STRIDE:05d}-"
                         f"{2 * DRAW_SEED_STRIDE + 1:05d}.json").read_text())
    assert record["data"]["seed"] == 2 and record["data"]["points_per_class"] == 40
    # A run of a draw is the run of the same seed trained alone on that draw's data.
    config = paper_config("eq2-permutation", 1.0, epochs=2, hidden=(8,))
    alone = train_many(make_spirals(40, seed=2), [2 * DRAW_SEED_STRIDE], config).records[0]
    assert unpack_records(record["runs"])[0].final_test_error_pct == pytest.approx(alone.final_test_error_pct, abs=1e-4)
    assert spirals(args) == 0 and len(load_spirals_sweep("draws")) == 8  # resumed: nothing new


def _write_authors_files(folder: Path, split) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in (("x_train", split.x_train), ("x_test", split.x_test)):
        np.save(folder / f"{name}.npy", values.double().numpy())
    for name, values in (("y_train", split.y_train), ("y_test", split.y_test)):
        np.save(folder / f"{name}.npy", values.double().numpy()[:, None])


def test_authors_files_are_read_checked_and_named_when_missing(tmp_path, monkeypatch):
    from localmixup.paper.data import DatasetUnavailable
    from localmixup.paper.spirals.data import AUTHORS_FILES, load_authors_spirals

    monkeypatch.setenv("LOCALMIXUP_DATA", str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="raphael-baena/Local-Mixup") as missing:
        load_authors_spirals()
    assert str(tmp_path / "spirals_dataset") in str(missing.value) and "x_train.npy" in str(missing.value)
    made = make_spirals(30, seed=4)
    _write_authors_files(tmp_path / "spirals_dataset", made)
    with pytest.raises(DatasetUnavailable, match="SHA-256"):  # not the authors' files
        load_authors_spirals()
    loaded = load_authors_spirals(verify=False)  # the same format as theirs: float64 points, (N, 1) float labels
    assert loaded.x_train.dtype == torch.float32 and loaded.y_train.dtype == torch.int64 and loaded.y_train.shape == (48,)
    assert torch.equal(loaded.x_test, made.x_test) and torch.equal(loaded.y_train, made.y_train)
    np.save(tmp_path / "spirals_dataset" / "y_test.npy", np.full((12, 1), 3.0))
    with pytest.raises(DatasetUnavailable, match="labels in"):
        load_authors_spirals(verify=False)
    assert set(AUTHORS_FILES) == {"x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"}


def test_authors_data_sweep_refuses_without_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LOCALMIXUP_DATA", str(tmp_path / "data"))
    assert spirals(["--setting", "authors", "--authors-data", "--runs", "2", "--eps", "1", "--epochs", "1", "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("localmixup spirals: the authors' spirals data set is not in") and "\n" not in error.strip()
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


@pytest.mark.skipif(not (ROOT / "data" / "spirals_dataset" / "x_train.npy").is_file(), reason="the authors' files are not in data/")
def test_the_authors_files_as_shipped():
    from localmixup.paper.spirals.data import load_authors_spirals

    split = load_authors_spirals(ROOT / "data" / "spirals_dataset")
    assert split.x_train.shape == (1600, 2) and split.x_test.shape == (400, 2)
    assert set(split.y_train.tolist()) == {0, 1} and abs(float(split.x_train.mean())) < 0.05


def test_the_spirals_sweep_checks_its_files_before_training(tmp_path, monkeypatch, capsys):
    """A corrupt chunk is named with the option that sets it aside; an off-grid eps takes --batch-size;
    a results folder that cannot be written is refused before anything trains."""
    from localmixup.paper.chapters import recorded
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    small = ["--setting", "eq2-permutation", "--runs", "2", "--epochs", "1", "--hidden", "8", "--points-per-class", "30",
             "--chunk", "2", "--no-progress", "--tag", "t"]
    assert spirals([*small, "--eps", "0.7", "--batch-size", "16"]) == 0  # off the authors' grid, with a batch size
    chunk = sweep_folder("t", "eq2-permutation", 0.7) / "seeds-00000-00001.json"
    assert json.loads(chunk.read_text())["config"]["batch_size"] == 16
    for damage in ('{"config": {}, "data": {}, "runs": {}}', '{"config": {}, "data": {}, "seeds": [], "runs": {}}', "{trunc"):
        chunk.write_text(damage)
        assert spirals([*small, "--eps", "0.7", "--batch-size", "16"]) == 1
        error = capsys.readouterr().err
        assert str(chunk) in error and "--set-aside-corrupt" in error and error.count("\n") == 1
        assert chunk.read_text() == damage  # left in place
    assert spirals([*small, "--eps", "0.7", "--batch-size", "16", "--set-aside-corrupt"]) == 0
    assert "set aside" in capsys.readouterr().out and (chunk.parent / "corrupt" / chunk.name).is_file() and chunk.is_file()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the results folder should be")
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(blocked))
    assert spirals([*small, "--eps", "1"]) == 1 and "is a file" in capsys.readouterr().err
    assert not list(tmp_path.glob("blocked/**/*.json"))

    # the book picks a profile only when its records can all be read
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr("localmixup.paper.chapters.CHAPTERS", {"spirals": __import__("localmixup.paper.chapters", fromlist=["Chapter"]).Chapter(("quick",), lambda profile: [chunk])})
    assert recorded("spirals", "quick")
    chunk.write_text("")
    assert not recorded("spirals", "quick")
