"""tools/gpu_transfer.py: pack records and a real checkpoint into bounded parts, unpack them with checks."""

import importlib.util
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import torch

from localmixup.paper.training.checkpoints import Checkpoint, training_state
from localmixup.paper.models import build_model

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_transfer", ROOT / "tools" / "gpu_transfer.py")
gpu_transfer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_transfer)
TransferError = gpu_transfer.TransferError

SMALL = 128 * 1024  # bytes per part in these tests: the LeNet-5 checkpoint (~500 kB) spans several parts
FOLDER = "table1/paper/fashion_mnist"


def gpu_results(base: Path) -> Path:
    """A results folder as a GPU sweep leaves it: committed quick records (real ones) and the
    checkpoint of a run in progress (a real LeNet-5 state saved by Checkpoint, i.e. torch.save)."""
    results = base / "results"
    folder = results / FOLDER
    folder.mkdir(parents=True)
    for record in sorted((ROOT / "results" / "table1" / "quick" / "fashion_mnist").glob("*.json"))[:6]:
        shutil.copy(record, folder / record.name)
    torch.manual_seed(0)
    model = build_model("lenet5", 10, 3)
    momentum = [torch.randn_like(p) for p in model.parameters()]
    generator = torch.Generator().manual_seed(5)
    state = training_state(list(model.parameters()), momentum, [generator])
    Checkpoint(folder / ".checkpoints" / "baseline-seed7.pt", {"configs": ["x"], "device": "cuda"}).save(
        {**state, "epoch": 3, "records": [], "elapsed": 1.0, "extra": {}})
    (folder / ".checkpoints" / ".baseline-seed7.pt.abc.tmp").write_bytes(b"half-written")  # never packed
    return results


def pack_it(tmp_path, results, **kwargs):
    out = tmp_path / "out"
    manifest = gpu_transfer.pack(out, [results / "table1"], results=results, max_bytes=SMALL, **kwargs)
    return out, manifest


def read_only(folder: Path) -> None:
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP)


def test_round_trip_restores_every_file_and_a_loadable_checkpoint(tmp_path):
    source = gpu_results(tmp_path / "gpu")
    out, manifest = pack_it(tmp_path, source)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["manifest.json", *[f"part-{i:02d}.bin" for i in range(len(manifest["parts"]))]]
    assert 2 <= len(manifest["parts"]) <= 7  # the checkpoint is split across parts
    assert all(p.stat().st_size <= SMALL for p in out.iterdir())
    assert manifest["left_out"] == []
    assert manifest["checkpoint_folders"] == {f"{FOLDER}/.checkpoints": ["baseline-seed7.pt"]}
    read_only(out)  # the fetched files are read-only here

    here = tmp_path / "here" / "results"
    summary = gpu_transfer.unpack(out, results=here)
    packed = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file() and p.suffix != ".tmp")
    assert sorted(summary["written"]) == packed and len(packed) == 7
    for relative in packed:
        assert (here / relative).read_bytes() == (source / relative).read_bytes()
    identity = {"configs": ["x"], "device": "cuda"}
    restored = Checkpoint(here / FOLDER / ".checkpoints" / "baseline-seed7.pt", identity).load()
    assert restored["epoch"] == 3 and torch.equal(restored["tensors"][0], torch.load(
        source / FOLDER / ".checkpoints" / "baseline-seed7.pt", weights_only=True)["tensors"][0])
    assert not list(here.rglob("*.tmp"))

    again = gpu_transfer.unpack(out, results=here)  # idempotent
    assert again["written"] == [] and len(again["unchanged"]) == 7


def test_a_different_existing_record_is_never_overwritten(tmp_path):
    source = gpu_results(tmp_path / "gpu")
    out, manifest = pack_it(tmp_path, source)
    here = tmp_path / "here" / "results"
    (here / FOLDER).mkdir(parents=True)
    name = manifest["files"][0]["path"].rsplit("/", 1)[1]
    (here / FOLDER / name).write_text('{"another": "run"}')
    with pytest.raises(TransferError, match=f"never overwritten: {FOLDER}/{name}"):
        gpu_transfer.unpack(out, results=here)
    assert (here / FOLDER / name).read_text() == '{"another": "run"}'
    assert sorted(p.name for p in (here / FOLDER).iterdir()) == [name]  # nothing else written either


def test_a_newer_checkpoint_replaces_the_older_and_stale_ones_are_pruned_on_request(tmp_path):
    source = gpu_results(tmp_path / "gpu")
    out, _ = pack_it(tmp_path, source)
    here = tmp_path / "here" / "results"
    checkpoints = here / FOLDER / ".checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "baseline-seed7.pt").write_bytes(b"an older state")
    (checkpoints / "mixup-seed2.pt").write_bytes(b"a run that finished on the GPU")
    summary = gpu_transfer.unpack(out, results=here)
    assert summary["replaced"] == [f"{FOLDER}/.checkpoints/baseline-seed7.pt"] and summary["pruned"] == []
    assert (checkpoints / "mixup-seed2.pt").is_file()
    summary = gpu_transfer.unpack(out, results=here, prune_checkpoints=True)
    assert summary["pruned"] == [f"{FOLDER}/.checkpoints/mixup-seed2.pt"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["baseline-seed7.pt"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove", "manifest"])
def test_damaged_packs_are_refused_before_anything_is_written(tmp_path, damage):
    source = gpu_results(tmp_path / "gpu")
    out, _ = pack_it(tmp_path, source)
    part = out / "part-01.bin"
    if damage == "flip":
        data = bytearray(part.read_bytes())
        data[100] ^= 1
        part.write_bytes(bytes(data))
    elif damage == "truncate":
        part.write_bytes(part.read_bytes()[:-1])
    elif damage == "remove":
        part.unlink()
    else:
        (out / "manifest.json").unlink()
    message = {"flip": "part-01.bin is truncated or corrupt", "truncate": "part-01.bin is truncated or corrupt",
               "remove": "part part-01.bin is missing", "manifest": "holds no manifest.json"}[damage]
    here = tmp_path / "here" / "results"
    with pytest.raises(TransferError, match=message):
        gpu_transfer.unpack(out, results=here)
    assert not here.exists()


def test_a_file_whose_bytes_differ_from_the_manifest_is_refused(tmp_path):
    # parts intact (their sha256 rewritten too), one file's sha256 wrong: the per-file check catches it
    source = gpu_results(tmp_path / "gpu")
    out, manifest = pack_it(tmp_path, source)
    manifest["files"][-1]["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TransferError, match="baseline-seed7.pt' is corrupt"):
        gpu_transfer.unpack(out, results=tmp_path / "here")
    assert not (tmp_path / "here").exists()


@pytest.mark.parametrize("path", ["../escape.json", "/etc/x.json", "table1/../../x.json", "a\\b.json", ""])
def test_paths_leaving_the_results_folder_are_refused(tmp_path, path):
    source = gpu_results(tmp_path / "gpu")
    out, manifest = pack_it(tmp_path, source)
    manifest["files"][0]["path"] = path
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TransferError, match="path"):
        gpu_transfer.unpack(out, results=tmp_path / "here" / "results")
    assert not (tmp_path / "here").exists()


def test_what_does_not_fit_is_left_out_and_listed(tmp_path, capsys):
    source = gpu_results(tmp_path / "gpu")
    out = tmp_path / "out"
    manifest = gpu_transfer.pack(out, [source / FOLDER], results=source, max_files=3, max_bytes=SMALL)
    assert [f["path"].rsplit("/", 1)[1] for f in manifest["left_out"]] == ["baseline-seed7.pt"]
    assert len(manifest["files"]) == 6 and len(list(out.iterdir())) <= 3  # the records always come first
    assert "left out table1/paper/fashion_mnist/.checkpoints/baseline-seed7.pt" in capsys.readouterr().err
    summary = gpu_transfer.unpack(out, results=tmp_path / "here")
    assert summary["left_out"] == [f"{FOLDER}/.checkpoints/baseline-seed7.pt"] and len(summary["written"]) == 6


def test_newer_packs_only_what_the_command_wrote(tmp_path):
    source = gpu_results(tmp_path / "gpu")
    stamp = tmp_path / "stamp"
    stamp.touch()
    past = time.time() - 100
    os.utime(stamp, (past, past))
    for p in (source / FOLDER).glob("*.json"):
        os.utime(p, (past - 10, past - 10))  # carried to the machine before the command
    fresh = sorted((source / FOLDER).glob("*.json"))[2]
    fresh.touch()
    out = tmp_path / "out"
    manifest = gpu_transfer.pack(out, [source], results=source, newer=stamp, max_bytes=SMALL)
    assert sorted(f["path"] for f in manifest["files"]) == [f"{FOLDER}/.checkpoints/baseline-seed7.pt",
                                                            f"{FOLDER}/{fresh.name}"]


def test_command_line_round_trip(tmp_path, capsys):
    source = gpu_results(tmp_path / "gpu")
    out, here = tmp_path / "out", tmp_path / "here"
    assert gpu_transfer.main(["pack", str(out), str(source / "table1"), "--results", str(source),
                              "--max-bytes", str(SMALL)]) == 0
    assert "packed 7 files" in capsys.readouterr().out
    assert gpu_transfer.main(["unpack", str(out), "--results", str(here)]) == 0
    assert "written: 7" in capsys.readouterr().out
    (here / FOLDER / sorted(p.name for p in (source / FOLDER).glob("*.json"))[0]).write_text("{}")
    assert gpu_transfer.main(["unpack", str(out), "--results", str(here)]) == 1
    assert "never overwritten" in capsys.readouterr().err


def test_bad_arguments_are_named(tmp_path):
    source = gpu_results(tmp_path / "gpu")
    with pytest.raises(ValueError, match="max_files must be an integer >= 2"):
        gpu_transfer.pack(tmp_path / "o1", [source], results=source, max_files=1)
    with pytest.raises(ValueError, match="max_bytes must be an integer >= 1024"):
        gpu_transfer.pack(tmp_path / "o2", [source], results=source, max_bytes=10)
    with pytest.raises(ValueError, match="paths must lie inside the results folder"):
        gpu_transfer.pack(tmp_path / "o3", [tmp_path], results=source)
    with pytest.raises(ValueError, match="paths must be existing"):
        gpu_transfer.pack(tmp_path / "o4", [source / "nothing"], results=source)
    out, _ = pack_it(tmp_path, source)
    with pytest.raises(ValueError, match="out already holds a pack"):
        gpu_transfer.pack(out, [source], results=source)
