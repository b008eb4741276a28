"""Findings first: one line per result of the paper, with its verdict and its number, computed from
the records by the chapters' own readings, for the box at the top of the book's landing page.

Each line calls the reading its chapter shows (:mod:`localmixup.paper.spirals.readings`,
:mod:`localmixup.paper.table1.readings`, :mod:`localmixup.paper.table1.size_readings`,
:mod:`localmixup.paper.adamixup.readings`; the theory's exact verdicts,
:mod:`localmixup.theory.verdicts`) on the records of the profile the chapter was executed
with, so the box cannot drift from the chapters. ``localmixup book`` writes :func:`to_markdown`
into ``book/_findings.md`` (a build output) before the HTML build; the landing page includes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from localmixup.mixing import MIXUP_LIKE
from localmixup.paper.labels import DATASET_LABELS, DATASET_NAMES, MODEL_LABELS, PAPER_MODELS
from localmixup.paper.stats import PairedDifference

#: Verdicts of a line, relative to the paper's statement.
VERDICTS = ("holds", "holds with a correction", "does not hold", "not separated", "not run here")
#: The chapters whose box lines depend on the profile they were executed with (the spirals' verdicts come
#: from the draws sweep and the runs on the authors' data, whatever the profile).
CHAPTERS = ("theory_1d", "table1", "adamixup")


class Finding(NamedTuple):
    """One result of the paper: what it is, the verdict here (:data:`VERDICTS`), the number behind
    it, and the chapter (a document name of the book) that shows it."""

    result: str
    verdict: str
    number: str
    chapter: str


def _ci(d: PairedDifference) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} points ({d.n} paired run)"
    return f"{d.mean:+.2f} points (95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f})"


def default_profiles() -> dict[str, str]:
    """Per chapter, the profile ``localmixup book --profile auto`` executes it with."""
    from localmixup.paper.chapters import choose_profile

    return {chapter: choose_profile(chapter, "auto")[0] for chapter in CHAPTERS}


def theory_findings(profile: str) -> list[Finding]:
    """The one-dimensional theory: one line per printed statement, the chapter's verdicts at its
    profile's sizes (:func:`~localmixup.paper.theory.chapter_verdicts`)."""
    from localmixup.paper.theory import chapter_verdicts

    return [Finding(f"{v.statement} (1-D theory: {v.claim})", v.verdict, v.evidence, "theory_1d")
            for v in chapter_verdicts(profile)]


def combined_verdict(holds: list[bool]) -> str:
    """Holds in every scope: "holds"; in none: "does not hold"; in some: "holds with a correction"."""
    return "holds" if all(holds) else "does not hold" if not any(holds) else "holds with a correction"


def spirals_findings() -> list[Finding]:
    """Figure 3's two readings in the authors' setting, in every scope that carries a verdict
    (:func:`~localmixup.paper.spirals.readings.verdict_scopes`, as the spirals chapter's first table)."""
    from localmixup.paper.spirals.protocol import PAPER_EPS
    from localmixup.paper.spirals.readings import complete_draws, verdict_scopes
    from localmixup.paper.spirals.sweep import load_spirals_sweep

    found = verdict_scopes(complete_draws(load_spirals_sweep("draws"), PAPER_EPS), load_spirals_sweep("authors-data"))
    scopes = {scope: readings["authors"] for scope, readings in found.items() if "authors" in readings}
    if not scopes:
        return [Finding(f"Figure 3, spirals ({name})", "not run here", "neither the draws sweep nor the runs on the "
                        "authors' data are recorded", "spirals") for name in ("first reading", "second reading")]
    first = "; ".join(f"{scope}: {'holds' if r.first_holds else 'does not hold'}, Mixup − no mixing {_ci(r.mixup_vs_none)}, "
                      f"Local (ε = {r.best_eps:g}) − no mixing {_ci(r.local_vs_none)}" for scope, r in scopes.items())
    second = "; ".join(f"{scope}: {'holds' if r.second_holds else 'does not hold'}, Local (ε = {r.best_eps:g}) − Mixup "
                       f"{_ci(r.local_vs_mixup)}" for scope, r in scopes.items())
    return [
        Finding("Figure 3, spirals, first reading (Mixup and Local Mixup beat training without mixing; authors' setting)",
                combined_verdict([r.first_holds for r in scopes.values()]), first, "spirals"),
        Finding("Figure 3, spirals, second reading (Local Mixup beats Mixup; authors' setting)",
                combined_verdict([r.second_holds for r in scopes.values()]), second, "spirals"),
    ]


def table1_findings(profile: str) -> list[Finding]:
    """Table 1's rows: the rows run here (:func:`~localmixup.paper.table1.readings.dataset_reading`),
    the size study (:func:`~localmixup.paper.table1.size_readings.study_summary`), and the rows not
    run here with the paper's values."""
    from localmixup.paper.table1 import readings as t1
    from localmixup.paper.table1.plan import table1_plan
    from localmixup.paper.table1.report import PAPER_TABLE1, TABLE1_DATASETS
    from localmixup.paper.table1.size_readings import load_size_runs, size_readings, study_summary

    plan = table1_plan(profile)
    runs, _ = t1.load(plan)
    out, shown = [], set()
    for dataset in plan.trained:
        try:
            r = t1.dataset_reading(runs, dataset)
        except ValueError:
            continue
        net = MODEL_LABELS.get(r.model, r.model)
        shown.add((dataset, r.model))
        base = (f"; the baseline is best by about {r.baseline_margin:.1f} point (Local Mixup − baseline "
                f"{_ci(r.differences['local', 'baseline'])})" if r.baseline_best else
                f"; Local Mixup − baseline {_ci(r.differences['local', 'baseline'])}")
        out.append(Finding(f"Table 1, {DATASET_NAMES[dataset]} row ({net}, {profile} profile"
                           + ("" if r.paper_model else ", not the paper's network") + ")",
                           r.verdict,
                           f"Local Mixup − Mixup {_ci(r.local_vs_mixup)}{base}; {r.runs['local']} seeds; "
                           f"the paper: {r.paper_gap:+.2f} points", "table1"))
    size_runs = load_size_runs()
    readings = size_readings(size_runs)
    if readings:
        s = study_summary(readings)
        sizes = ", ".join(f"{r.size:,}" for r in readings)
        # a win at a rate whose pairs weigh as Mixup's (mean pair weight >= MIXUP_LIKE) is no evidence for locality
        weight = size_runs.groupby(["size", "method"])["pair_weight"].mean()
        local = [(size, m) for size, m in s.local_wins if weight[size, m] < MIXUP_LIKE]
        verdict = ("holds" if local and not s.local_losses else "does not hold" if s.local_losses and not local
                   else "not separated" if not local else "holds with a correction")
        helps = ", ".join(f"{size:,}" for size in s.mixup_helps) or "no size"
        wins = "; ".join(f"{size:,} ({m}, mean pair weight {weight[size, m]:.2f}"
                         + (")" if (size, m) in local else f": at least {MIXUP_LIKE:g}, this is Mixup)")
                         for size, m in s.local_wins) or "no size and rate"
        out.append(Finding(f"Table 1 across training-set sizes (Fashion-MNIST, LeNet-5; {sizes} images)", verdict,
                           f"Local Mixup below Mixup at {wins}; Mixup below the baseline at {helps} images", "table1"))
    for dataset in TABLE1_DATASETS:
        if (dataset, PAPER_MODELS[dataset]) in shown:
            continue
        local, mixup = PAPER_TABLE1[dataset, "local"], PAPER_TABLE1[dataset, "mixup"]
        why = plan.unavailable.get(dataset) or ("this build ran another network" if dataset in plan.trained else "no run")
        out.append(Finding(f"Table 1, {DATASET_LABELS[dataset]}", "not run here",
                           f"the paper: Local Mixup {local[0]:.2f} ± {local[1]:.2f} against Mixup {mixup[0]:.2f} ± {mixup[1]:.2f} "
                           f"({why})", "table1"))
    return out


def adamixup_findings(profile: str) -> list[Finding]:
    """Section 5.3: the paired test of Local Mixup against AdaMixup
    (:func:`~localmixup.paper.adamixup.readings.error_reading`), and CIFAR-10 if not run."""
    from localmixup.paper.adamixup import readings as ar
    from localmixup.paper.adamixup.plan import adamixup_plan
    from localmixup.paper.sweep.plan import record_paths
    from localmixup.paper.sweep.results import records_of

    plan = adamixup_plan(profile)
    runs = records_of(record_paths(plan.configs))
    dataset = plan.extra["error_dataset"]
    out = []
    if dataset in plan.trained:
        try:
            r = ar.error_reading(runs, dataset)
        except ValueError:
            r = None
        if r is not None:
            model = ", ".join(sorted({MODEL_LABELS[c.model] for c in plan.configs if c.dataset == dataset}))
            verdict = {"Local Mixup ahead": "holds", "AdaMixup ahead": "does not hold", "not separated": "not separated"}[r.verdict]
            out.append(Finding(f"Section 5.3, AdaMixup against Local Mixup ({DATASET_NAMES[dataset]}, {model}, {profile} profile)",
                               verdict, f"Local Mixup − AdaMixup {_ci(r.claim)}, {r.claim.n} paired seeds: "
                               f"{r.verdict}; the paper: {ar.PAPER['cifar10', 'local'][0] - ar.PAPER['cifar10', 'adamixup'][0]:+.2f} "
                               "points on CIFAR-10", "adamixup"))
    if dataset != "cifar10" or "cifar10" in plan.unavailable:
        local, ada = ar.PAPER["cifar10", "local"], ar.PAPER["cifar10", "adamixup"]
        out.append(Finding("Section 5.3 on CIFAR-10 (ResNet-18) and convergence on MNIST", "not run here",
                           f"the paper: Local Mixup {local[0]:.2f} ± {local[1]:.2f} against AdaMixup {ada[0]:.2f} ± {ada[1]:.2f} "
                           f"({plan.unavailable.get('cifar10', 'not in this profile')})", "adamixup"))
    return out


def findings(profiles: Mapping[str, str] | None = None) -> list[Finding]:
    """Every line of the box, in the order of the paper; ``profiles``: chapter -> the profile it was
    executed with (default: :func:`default_profiles`)."""
    from localmixup.paper.chapters import choose_profile

    profiles = {chapter: (profiles or {}).get(chapter) or choose_profile(chapter, "auto")[0] for chapter in CHAPTERS}
    return [*theory_findings(profiles["theory_1d"]), *spirals_findings(), *table1_findings(profiles["table1"]),
            *adamixup_findings(profiles["adamixup"])]


def to_markdown(lines: list[Finding]) -> str:
    """The box: a MyST admonition with one bullet per finding (verdict in bold, the number, a link to
    the chapter)."""
    bullets = "\n".join(f"- {f.result}: **{f.verdict}**; {f.number} ({{doc}}`{f.chapter}`)." for f in lines)
    return ("```{admonition} Findings first\n:class: tip\n\n"
            "Each line is computed from the recorded runs by the chapter's own reading, when the book is built.\n\n"
            f"{bullets}\n```\n")
