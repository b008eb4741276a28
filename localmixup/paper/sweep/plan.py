"""What a Table-1 sweep will do, decided before anything trains: its runs, where each record and
checkpoint goes, which runs are still owed, and whether every one of those files can be written.

A record's path says how its run was trained: runs trained in a stack
(:mod:`~localmixup.paper.training.stacked`) round differently from runs trained alone, so they are
kept in a folder of their own and never mix in one table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localmixup.paper.data import DATASETS
from localmixup.paper.training.automatic_decay import automatic_decay
from localmixup.paper.training.config import METHODS, TrainConfig
from localmixup.paper.run_record import RunRecord
from localmixup.paper.training.stacked import stackable
from localmixup.paper.protocols import PROTOCOLS, profile_config
from localmixup.paper.record_files import RUN_FIELDS, CorruptFile, read_record, results_dir
from localmixup.checks import check_choice, check_integer


def parse_seeds(text: str | int | Sequence[int]) -> list[int]:
    """``"0-9"``, ``"0,2,5"``, ``"3"`` (or a list of ints) -> sorted distinct seeds >= 0."""
    if isinstance(text, int) or (isinstance(text, Sequence) and not isinstance(text, str)):
        items = [text] if isinstance(text, int) else list(text)
        return sorted({check_integer("seeds", s, low=0) for s in items})
    seeds: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds must look like '0-9', '0,3,5' or '4' (integers >= 0, ranges low-high), got {text!r}")
        low = int(m.group(1))
        seeds.update(range(low, (int(m.group(2)) if m.group(2) else low) + 1))
    return sorted(seeds)


def parse_list(name: str, text: str | Sequence[str], choices: Sequence[str]) -> list[str]:
    """Comma-separated names (or a list), each checked against ``choices``; order kept, duplicates dropped."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    items = [t for t in items if t]
    if not items:
        raise ValueError(f"{name} must name at least one of {', '.join(choices)}")
    return list(dict.fromkeys(check_choice(name, t, tuple(choices)) for t in items))


def parse_overrides(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Training settings that replace a profile's in every run of a chapter (fields of
    :class:`~localmixup.paper.training.config.TrainConfig`, e.g. ``{"epochs": 1, "train_size": 256}``):
    a mapping, its JSON text (as ``localmixup book -p overrides '{...}'`` passes it) or None. Runs
    with overrides are recorded in a folder of their own (:func:`folder_tag`)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, Mapping):
        raise ValueError(f"overrides must be a mapping of training settings (or its JSON text) such as "
                         f'{{"epochs": 1, "train_size": 256}}, got {value!r}')
    return dict(value)


def make_configs(datasets: str | Sequence[str], methods: str | Sequence[str], seeds: str | Sequence[int], profile: str,
                 decays: Sequence[float | str] | None = None, **overrides) -> list[TrainConfig]:
    """Every run of a sweep: datasets x methods x seeds (x decays for ``local``; default: the
    profile's decay rate of the dataset; ``"auto"``: the automatic rate of the training split,
    :func:`~localmixup.paper.training.automatic_decay.automatic_decay`, computed here once per training
    split: once for a fixed subset, per seed where each seed draws its own).
    ``overrides`` as in :func:`~localmixup.paper.protocols.profile_config`."""
    datasets = parse_list("dataset", datasets, tuple(DATASETS))
    methods = parse_list("method", methods, METHODS)
    seeds = parse_seeds(seeds)
    configs = []
    for dataset in datasets:
        for method in methods:
            for decay in (decays or [None]) if method == "local" else [None]:
                for seed in seeds:
                    rule = {"decay": decay}
                    if decay == "auto":
                        rule = {"decay": automatic_decay(profile_config(profile, dataset, method, seed, **overrides)),
                                "decay_rule": "nearest_other_class"}
                    configs.append(profile_config(profile, dataset, method, seed, **overrides, **rule))
    return configs


def trained_stacked(config: TrainConfig, stack: int = 1) -> bool:
    """Whether a sweep with option ``stack`` trains ``config`` in a stack: every stackable run when
    ``stack`` > 1, even one left alone in its group, so that a run's path never depends on its partners."""
    return check_integer("stack", stack, low=1) > 1 and stackable(config)


def folder_tag(config: TrainConfig, stack: int = 1) -> str:
    """``quick`` or ``paper`` for runs of that profile as defined; ``<profile>-custom-<hash>`` for runs
    with overridden settings (other than decay and seed), so they never mix into a profile's table;
    ``-stacked`` appended for runs trained in a stack (:func:`~.trained_stacked`)."""
    reference = profile_config(config.profile, config.dataset, config.method, config.seed, decay=config.decay,
                               decay_rule=config.decay_rule) \
        if config.profile in PROTOCOLS else None
    if reference is not None and reference.to_dict() == config.to_dict():
        tag = config.profile
    else:
        d = config.to_dict()
        if d["subset_seed"] == config.seed:  # each seed draws its own subset: one folder for all seeds
            d["subset_seed"] = "seed"
        for key in ("seed", "method", "decay", "decay_rule"):
            d.pop(key)
        tag = f"{config.profile}-custom-{hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]}"
    return tag + ("-stacked" if trained_stacked(config, stack) else "")


def record_name(config: TrainConfig) -> str:
    """``baseline-seed3.json``, ``mixup-seed3.json``, ``local-decay0.0005-seed3.json``, and for an
    automatic rate ``local-auto-seed3.json`` (rule ``nearest_other_class``) or ``local-auto-<rule>-seed3.json``."""
    if config.method != "local":
        return f"{config.method}-seed{config.seed}.json"
    if config.decay_rule is None:
        return f"local-decay{config.decay:g}-seed{config.seed}.json"
    rule = "" if config.decay_rule == "nearest_other_class" else f"-{config.decay_rule}"
    return f"local-auto{rule}-seed{config.seed}.json"


def record_path(config: TrainConfig, stack: int = 1) -> Path:
    """``results/table1/<folder tag>/<dataset>/<record name>`` (see :func:`~.folder_tag`)."""
    return results_dir("table1", folder_tag(config, stack), config.dataset) / record_name(config)


def checkpoint_path(configs: Sequence[TrainConfig], stack: int = 1) -> Path:
    """Checkpoint file of a run (or a stack of runs) in progress: ``.checkpoints/`` beside the first
    run's record, named after it (and, for a stack, after all its runs)."""
    first = record_path(configs[0], stack)
    name = first.stem
    if len(configs) > 1:
        digest = hashlib.sha1("\n".join(str(record_path(c, stack)) for c in configs).encode()).hexdigest()[:8]
        name += f"+{len(configs) - 1}-{digest}"
    return first.parent / ".checkpoints" / f"{name}.pt"


def pending(configs: Iterable[TrainConfig], stack: int = 1, threads: int | None = None) -> list[TrainConfig]:
    """The configurations whose record does not exist yet (duplicates dropped, order kept).

    Raises ``ValueError`` naming the file if an existing record was made with another
    configuration or trained another way (alone / in a stack; on a CPU with another number of
    torch threads than ``threads``, if given): it must not pass for this run, whose numbers differ.
    """
    seen, todo = set(), []
    for c in configs:
        path = record_path(c, stack)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            todo.append(c)
            continue
        try:
            recorded = RunRecord.from_dict(read_record(path, RUN_FIELDS))  # a corrupt file: CorruptFile, naming it
        except CorruptFile:
            raise
        except ValueError as error:
            raise ValueError(f"{path} is not a run record ({error}); move it away to train this run") from None
        wanted = json.loads(json.dumps(c.to_dict()))
        had = TrainConfig.as_recorded(recorded.config)
        if had != wanted:
            differ = sorted(k for k in wanted.keys() | had.keys() if wanted.get(k) != had.get(k))
            raise ValueError(f"{path} was recorded with another configuration (differs in {', '.join(differ)}); "
                             "move it away to train this one")
        if (recorded.stack is not None) != trained_stacked(c, stack):
            how = "in a stack" if recorded.stack is not None else "alone"
            raise ValueError(f"{path} holds a run trained {how}, which rounds differently: it cannot stand for this "
                             "one; move it away to train this one")
        if threads is not None and recorded.threads is not None and recorded.threads != threads:
            raise ValueError(f"{path} was trained on a CPU with {recorded.threads} torch thread(s), and this sweep trains "
                             f"with {threads}, which rounds differently: pass threads={recorded.threads} (--threads) to "
                             "go on with these records, or move them away")
    return todo


def check_writable(files: Iterable[Path]) -> None:
    """Check, before anything trains, that every file of ``files`` (records, checkpoints) can be
    written: the nearest existing folder on its path is a folder in which a file can be created
    (so the missing ones can be made), and the path itself is not a folder. Raises ``ValueError``
    naming the path and what is wrong. Leaves nothing behind (a probe file is created and removed)."""
    files = list(dict.fromkeys(Path(f) for f in files))
    for folder in dict.fromkeys(f.parent for f in files):
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            raise ValueError(f"{existing} is a file, but records and checkpoints must be written in {folder}: "
                             "move it away, or choose another results folder ($LOCALMIXUP_RESULTS)")
        try:
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-test-", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
        except OSError as error:
            raise ValueError(f"cannot write in {existing} ({error.strerror or error}): records and checkpoints go "
                             f"to {folder}; make it writable, or choose another results folder ($LOCALMIXUP_RESULTS)") from None
    for f in files:
        if f.is_dir():
            raise ValueError(f"{f} is a folder, but the sweep must write a file there: move it away")


def unused_checkpoints(configs: Sequence[TrainConfig], planned: Iterable[Path], stack: int = 1) -> list[Path]:
    """Checkpoints beside the records of ``configs`` other than the ``planned`` ones (those of the
    pending runs or stacks, :func:`~.checkpoint_path`): no run will resume them."""
    folders = {record_path(c, stack).parent / ".checkpoints" for c in configs}
    used = set(planned)
    return sorted(p for folder in folders for p in folder.glob("*.pt") if p not in used)


def clean_temporary(folders: Iterable[Path]) -> int:
    """Remove temporary files that a killed :func:`~localmixup.paper.record_files.atomic_write` left behind
    (records, and checkpoints in ``.checkpoints/``)."""
    removed = 0
    for folder in set(folders):
        for tmp in [*Path(folder).glob(".*.json.*.tmp"), *Path(folder).glob(".checkpoints/.*.pt.*.tmp")]:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class ImagePlan:
    """The image runs a chapter renders for one profile.

    Attributes:
        profile: the profile.
        seeds: seeds of the main runs.
        trained: datasets trained (or loaded) here.
        unavailable: dataset -> why it has no run here.
        configs: the main runs (``TrainConfig``), loaded when recorded, else trained.
        extra: chapter-specific runs and sizes (e.g. an ablation's configs and grid).
        paths: every record file the chapter renders.
    """

    profile: str
    seeds: list[int]
    trained: list[str]
    unavailable: dict[str, str]
    configs: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


def unavailable_datasets(candidates: Sequence[str], wanted: Sequence[str], profile: str) -> dict[str, str]:
    """Dataset -> why a chapter has no run of it in ``profile`` (not trained in that profile, not
    wanted, or not on this machine: :func:`~localmixup.paper.data.dataset_status`)."""
    from localmixup.paper.data import dataset_status

    why = {d: f"not trained in the {profile} profile" if d not in PROTOCOLS[profile] else dataset_status(d) for d in candidates}
    why = {d: w for d, w in why.items() if w}
    for d in candidates:
        if d not in wanted and d not in why:
            why[d] = f"not trained in the {profile} profile"
    return why


def record_paths(configs: Sequence[Any]) -> list[Path]:
    """The record file of each run of ``configs``."""
    return [record_path(c) for c in configs]


# Sizes of each profile of the Table-1 chapter: seeds of the main runs, datasets, and the decay rates
# and seeds of the ablation of the exponential graph's rate ("auto": localmixup.decay.auto_decay).
