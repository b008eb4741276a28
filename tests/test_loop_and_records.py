"""The epoch loop every trainer shares, and many run records packed into one object."""

import json
import math

import pytest

from localmixup.paper.training.loop import EpochResult, Trainee, train_epochs
from localmixup.paper.run_record import RunRecord, pack_records, unpack_records


def _trainee(losses: dict[int, list[float]], evaluated: list[int]) -> Trainee:
    """Runs whose epoch ``e`` has the given losses; every evaluation is logged in ``evaluated``."""

    def epoch(index: int) -> EpochResult:
        return EpochResult(losses[index], 0.1, {"pair_weight": [0.5 + index, 0.25]})

    def errors() -> list[float]:
        evaluated.append(len(evaluated))
        return [10.0, 20.0]

    return Trainee(epoch, errors)


def test_the_loop_records_the_asked_epochs_and_every_failure():
    evaluated, saved = [], []
    losses = {0: [1.0, 1.0], 1: [0.9, math.nan], 2: [0.8, 0.7], 3: [0.7, 0.6], 4: [0.6, 0.5]}
    records = [RunRecord({"seed": 0}), RunRecord({"seed": 1})]
    alive = train_epochs(_trainee(losses, evaluated), records, 5, record_at={2, 4},
                         after_epoch=lambda done, alive: saved.append((done, list(alive))))
    assert alive == [True, False]
    assert [e.epoch for e in records[0].epochs] == [2, 4, 5]  # the asked epochs and the last
    assert [e.epoch for e in records[1].epochs] == [2] and records[1].failed_epoch == 2 and not records[1].ok
    assert records[1].epochs[0].test_error_pct is None and "not finite" in records[1].error
    assert [e.stats["pair_weight"] for e in records[0].epochs] == [1.5, 3.5, 4.5]
    assert len(evaluated) == 3  # measured only where recorded
    assert saved == [(1, [True, True]), (2, [True, False]), (3, [True, False]), (4, [True, False])]


def test_the_loop_resumes_part_way_and_stops_when_every_run_failed():
    records = [RunRecord({"seed": 0})]
    train_epochs(_trainee({2: [0.5], 3: [0.4]}, []), records, 4, first=2)
    assert [e.epoch for e in records[0].epochs] == [3, 4]
    records = [RunRecord({"seed": 0}), RunRecord({"seed": 1})]
    train_epochs(_trainee({0: [math.inf, math.nan], 1: [1.0, 1.0]}, []), records, 2)
    assert [len(r.epochs) for r in records] == [1, 1] and not any(r.ok for r in records)


def _records() -> list[RunRecord]:
    records = []
    for seed in range(3):
        r = RunRecord({"eps": 1.0, "hidden": [100, 100], "seed": seed}, parameters=20502, stack={"runs": 3, "position": seed})
        for epoch in range(2 if seed != 2 else 1):
            loss = math.nan if seed == 2 else 1.0 / (1 + epoch + seed) + 1e-9
            r.add_epoch(epoch, loss, 10.0 * seed + epoch if seed != 2 else None, 0.01, 0.5, pair_weight=0.123456789)
        records.append(r.close(12.5, {"parameter_bytes": 82008}, {"torch": "2.x"}))
    return records


def test_packed_records_round_trip_and_store_what_runs_share_once():
    records = _records()
    packed = pack_records(records)
    text = lambda rs: json.dumps([r.to_dict() for r in rs])  # noqa: E731  (NaN != NaN: compare the text)
    assert text(unpack_records(json.loads(json.dumps(packed)))) == text(records)
    assert packed["shared"]["environment"] == {"torch": "2.x"} and packed["shared"]["train_seconds"] == 12.5
    assert packed["each"]["config"]["each"] == {"seed": [0, 1, 2]} and packed["each"]["config"]["shared"]["eps"] == 1.0
    assert packed["each"]["status"] == ["ok", "ok", "failed"]
    assert packed["each"]["epochs"]["each"]["epoch"] == [[1, 2], [1, 2], [1]]
    rounded = unpack_records(pack_records(records, significant=4))
    assert rounded[0].epochs[0].stats["pair_weight"] == 0.1235 and rounded[1].epochs[1].train_loss == 0.3333
    assert math.isnan(rounded[2].epochs[0].train_loss) and rounded[2].failed_epoch == 1
    # unpacked records do not share their values
    unpacked = unpack_records(packed)
    unpacked[0].config["eps"] = 2.0
    assert unpacked[1].config["eps"] == 1.0


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.pop("runs"), "not packed"),
    (lambda p: p["each"]["status"].pop(), "status"),
    (lambda p: p.pop("shared"), "not packed"),
])
def test_damaged_packed_records_are_refused(damage, message):
    packed = pack_records(_records())
    damage(packed)
    with pytest.raises(ValueError, match=message):
        unpack_records(packed)
    with pytest.raises(ValueError, match="at least one"):
        pack_records([])
