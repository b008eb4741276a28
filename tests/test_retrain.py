"""Recorded runs retrain bit for bit at HEAD: one recorded run (or chunk of runs) of each study is
trained again from its stored configuration, on the CPU with its recorded thread count, and its
recorded epochs must come out identical. A prefix of the epochs is retrained (the learning rate of
those epochs does not depend on the total), which is enough: a different computation diverges
within an epoch.

The Table-1 cpu-profile and AdaMixup records (LeNet-5 on the full split) were trained again at one
clean commit, one thread each: those of 2026-11-27 did not retrain bit for bit with any commit (their
sweep's workers ran on a host whose math libraries chose other kernels)."""

import json
from pathlib import Path

import pytest

from localmixup.paper.training.retrain import epoch_numbers, retrain_prefix
from localmixup.paper.spirals.config import ManyRunsConfig
from localmixup.paper.spirals.trainer import train_many
from localmixup.paper.run_record import RunRecord, pack_records, unpack_records
from localmixup.paper.spirals.sweep import SIGNIFICANT, load_split

ROOT = Path(__file__).resolve().parent.parent
IMAGE_RECORDS = ["results/table1/size1000/fashion_mnist/local-decay0.0005-seed0.json",
                 "results/table1/cpu/fashion_mnist/mixup-seed0.json", "results/table1/cpu/fashion_mnist/adamixup-seed0.json"]
SPIRAL_CHUNKS = ["results/spirals/paper/authors/eps=1/seeds-00000-00199.json",
                 "results/spirals/paper/eq2-permutation/eps=1.5/seeds-00000-00199.json",
                 "results/spirals/draws/authors/eps=1/data=19/seeds-19000-19049.json"]  # the last draw of the draws sweep


@pytest.mark.parametrize("name", IMAGE_RECORDS)
def test_an_image_record_retrains_bit_for_bit(name):
    record = RunRecord.from_dict(json.loads((ROOT / name).read_text()))
    assert "+dirty" not in record.environment["commit"]
    result = retrain_prefix(ROOT / name, epochs=2)
    assert result.identical and result.epochs == 2, result


def test_a_different_computation_is_caught(tmp_path):
    """The comparison sees a record whose numbers the code does not give (one digit of one epoch changed)."""
    record = json.loads((ROOT / IMAGE_RECORDS[0]).read_text())
    record["epochs"][1]["test_error_pct"] += 0.01
    (tmp_path / "r.json").write_text(json.dumps(record))
    result = retrain_prefix(tmp_path / "r.json", epochs=2)
    assert result.first_difference == 2 and not result.identical
    with pytest.raises(ValueError, match="learning-rate step"):
        retrain_prefix(ROOT / IMAGE_RECORDS[0], epochs=len(record["epochs"]))


@pytest.mark.parametrize("name", SPIRAL_CHUNKS)
def test_a_spirals_chunk_retrains_bit_for_bit(name):
    chunk = json.loads((ROOT / name).read_text())
    runs = unpack_records(chunk["runs"])
    assert not [r for r in runs if "+dirty" in r.environment["commit"]]
    first = runs[0].epochs[0].epoch  # the first recorded epoch
    config = ManyRunsConfig(**{**chunk["config"], "hidden": tuple(chunk["config"]["hidden"]), "epochs": first})
    again = train_many(load_split(chunk["data"]), chunk["seeds"], config, curve_every=first, threads=chunk["threads"])
    again = unpack_records(pack_records(again.records, significant=SIGNIFICANT))  # as the chunk stores them
    assert [epoch_numbers(r.epochs[0]) for r in again] == [epoch_numbers(r.epochs[0]) for r in runs]


def test_the_cpu_profile_records_come_from_one_clean_commit():
    """What the Table 1 chapter says of its cpu-profile records (Table 1's row and AdaMixup's)."""
    records = [json.loads(p.read_text()) for p in sorted((ROOT / "results/table1/cpu/fashion_mnist").glob("*.json"))]
    commits = {r["environment"]["commit"] for r in records}
    assert len(records) == 75 and len(commits) == 1 and "+dirty" not in commits.pop()
    assert {r["threads"] for r in records} == {1}
