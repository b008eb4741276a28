"""What the spirals records say (Figure 3): the paper's two readings, on one data set or across
draws of the data, the shape of the runs behind a mean, and the sentences the chapter builds from them.

The paper reads its Figure 3 twice: (1) Mixup and Local Mixup beat training without mixing
(eps = 0), and (2) Local Mixup, at its best threshold, beats Mixup (the largest eps). Both are
paired comparisons: runs that share a seed share their initial weights and data order.

On one data set a comparison is the mean of the per-seed differences with its Student-t interval
over seeds (:func:`~localmixup.paper.stats.paired_difference`): it says nothing of another draw
of the data. Across draws (runs nested in data sets), the estimate is the mean over draws of each
draw's mean difference, with the Student-t interval over draws (D - 1 degrees of freedom): with the
same number of runs on every draw this is the two-stage (summary-statistics) reading of a nested
design, whose interval includes the draw-to-draw variance as well as the run-to-run noise (the
variance of a draw's mean is ``between + within / runs``); it needs no model of how the two mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from localmixup.paper.stats import PairedDifference, confidence_interval, paired_difference

SEPARATED_PCT = 1.0
"""A run whose test error ends below this (percent) separated the spirals."""

FAILED_PCT = 10.0
"""A run whose test error ends above this (percent) failed to separate them."""

SETTING_LABELS = {"authors": "(a) authors' setting", "eq2-permutation": "(b) Eq. (2), permutation pairing",
                  "eq2-graph": "(c) Eq. (2), graph pairing"}
"""How the chapter names its three settings."""

ZERO_LABELS = {"authors": "no mixing", "eq2-permutation": "ε = 0 [fixed points only]", "eq2-graph": "no mixing"}
"""The name of eps = 0 in each setting. With permutation pairing, only the pairs a permutation maps to
themselves weigh 1, so (b) at eps = 0 trains on a handful of points per batch, not without mixing."""


def run_shape(frame: pd.DataFrame, by: Sequence[str] = ("setting", "data", "eps")) -> pd.DataFrame:
    """Per group of ``by``: runs, mean, median and standard deviation of the final test error (%),
    and the shares (%) of runs below :data:`SEPARATED_PCT` and above :data:`FAILED_PCT`.

    ``frame``: one row per run with ``test_error_pct`` and the columns of ``by``
    (:func:`~localmixup.paper.spirals.sweep.load_spirals_sweep`)."""
    groups = frame.groupby(list(by))["test_error_pct"]
    table = pd.DataFrame({
        "runs": groups.count(), "mean": groups.mean(), "median": groups.median(), "sd": groups.std(),
        f"below {SEPARATED_PCT:g}% (%)": groups.apply(lambda s: 100 * float((s < SEPARATED_PCT).mean())),
        f"above {FAILED_PCT:g}% (%)": groups.apply(lambda s: 100 * float((s > FAILED_PCT).mean())),
    })
    return table.sort_index(key=_by_draw)


def shape_cells(frame: pd.DataFrame, eps_values: Iterable[float]) -> pd.DataFrame:
    """:func:`run_shape` per setting and data set at ``eps_values``, one row per (setting, data set)
    and one column per eps, each cell "mean (median; % of runs below :data:`SEPARATED_PCT`; % above
    :data:`FAILED_PCT`)" in percent: the shape of every draw at a glance."""
    eps_values = [float(e) for e in eps_values]
    shape = run_shape(frame[frame["eps"].isin(eps_values)])
    if shape.empty:
        raise ValueError(f"no run at eps {eps_values}")
    below, above = f"below {SEPARATED_PCT:g}% (%)", f"above {FAILED_PCT:g}% (%)"
    cells = shape.apply(lambda r: f"{r['mean']:.1f} ({r['median']:.1f}; {r[below]:.0f}; {r[above]:.0f})", axis=1)
    table = cells.unstack("eps").reindex(columns=[e for e in eps_values if e in set(shape.index.get_level_values("eps"))])
    return table.sort_index(key=_by_draw).rename(columns=lambda e: f"ε = {e:g}")


def _by_draw(level: pd.Index) -> pd.Index:
    """Sort key of an index level: the data sets by :func:`_draw_key`, any other level as it is."""
    return level.map(_draw_key) if level.name == "data" else level


def _draw_key(label: str) -> float:
    """Sort key of a data label (:func:`~localmixup.paper.spirals.protocol.data_label`): the authors' data
    first, then the draws by number (draw 2 before draw 10)."""
    return float(label.removeprefix("draw ")) if label.startswith("draw ") else -1.0


def complete_draws(frame: pd.DataFrame, grid: Iterable[float]) -> pd.DataFrame:
    """The runs of ``frame`` (one row per run) on the data sets that are complete for their
    setting: runs at every eps of ``grid`` (and no other), with the same seeds at each, and as
    many runs as the fullest such data set, so that each weighs the same in an across-draws mean."""
    grid = {float(e) for e in grid}
    parts = []
    for _, runs in frame.groupby("setting"):
        complete = {}
        for data, d in runs.groupby("data"):
            seeds = {frozenset(s) for _, s in d.groupby("eps")["seed"]}
            if set(d["eps"]) == grid and len(seeds) == 1:
                complete[data] = len(next(iter(seeds)))
        if complete:
            full = max(complete.values())
            parts.append(runs[runs["data"].isin([data for data, n in complete.items() if n == full])])
    return pd.concat(parts) if parts else frame.iloc[:0]


def _errors(frame: pd.DataFrame, setting: str, eps: float) -> pd.DataFrame:
    rows = frame[(frame["setting"] == setting) & (frame["eps"] == eps)]
    if rows.empty:
        raise ValueError(f"no recorded run of setting {setting!r} at eps={eps:g}")
    return rows


def paired(frame: pd.DataFrame, setting: str, eps_a: float, eps_b: float) -> PairedDifference:
    """Error at ``eps_a`` minus error at ``eps_b`` (points) on one data set, paired by seed."""
    a, b = (_errors(frame, setting, e) for e in (eps_a, eps_b))
    if a["data"].nunique() != 1 or set(a["data"]) != set(b["data"]):
        raise ValueError(f"paired() reads one data set; these runs span {sorted(set(a['data']) | set(b['data']))}: "
                         "read them across draws with across_draws(per_draw(...)), or reading()")
    return paired_difference(dict(zip(a["seed"], a["test_error_pct"])), dict(zip(b["seed"], b["test_error_pct"])))


def per_draw(frame: pd.DataFrame, setting: str, eps_a: float, eps_b: float | None = None) -> pd.Series:
    """Per data set: the mean error at ``eps_a`` or, with ``eps_b``, the mean paired difference
    ``eps_a - eps_b`` over the seeds both ran on that data set."""
    a = _errors(frame, setting, eps_a).set_index(["data", "seed"])["test_error_pct"]
    if eps_b is None:
        return a.groupby(level="data").mean()
    b = _errors(frame, setting, eps_b).set_index(["data", "seed"])["test_error_pct"]
    return (a - b).dropna().groupby(level="data").mean()


def across_draws(values: pd.Series) -> PairedDifference:
    """The mean over data sets of ``values`` (one number per data set, :func:`per_draw`) with its
    Student-t interval over data sets; ``separated`` when the interval excludes 0."""
    mean, half, n = confidence_interval(list(values))
    return PairedDifference(mean, half, n, bool(n >= 2 and abs(mean) > half))


class Reading(NamedTuple):
    """The paper's two readings of Figure 3 in one setting (errors in %, differences in points).

    ``mixup_vs_none``: Mixup minus no mixing; ``local_vs_none``, ``local_vs_mixup``: the best local
    threshold ``best_eps`` (lowest mean error strictly between 0 and the Mixup threshold) minus no
    mixing, minus Mixup. On one data set, intervals over seeds; across draws, over data sets.
    """

    setting: str
    scope: str  # "one data set" or "across draws"
    data_sets: int
    mixup_eps: float
    best_eps: float
    means: dict[float, float]
    mixup_vs_none: PairedDifference
    local_vs_none: PairedDifference
    local_vs_mixup: PairedDifference

    @property
    def first_holds(self) -> bool:
        """Mixup and Local Mixup both below no mixing."""
        return self.mixup_vs_none.side == "below" and self.local_vs_none.side == "below"

    @property
    def second_holds(self) -> bool:
        """Local Mixup below Mixup."""
        return self.local_vs_mixup.side == "below"

    def markdown(self, label: str, zero: str = "no mixing") -> str:
        """The reading as Markdown bullets, every number from the runs; ``zero`` names eps = 0."""
        unit = "data sets" if self.scope == "across draws" else "paired seeds"

        def diff(name: str, d: PairedDifference) -> str:
            if d.n < 2:
                return f"{name}: {d.mean:+.2f} points from {d.n} {unit}, too few for an interval"
            verdict = {"below": "lower", "above": "higher", "not separated": "the interval contains 0"}[d.side]
            return f"{name}: {d.mean:+.2f} points (95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f}, {d.n} {unit}): {verdict}"

        return "\n".join([
            f"**{label}** ({self.data_sets} data set(s), intervals over {unit}): {zero} {self.means[0.0]:.1f}%, Mixup "
            f"(ε = {self.mixup_eps:g}) {self.means[self.mixup_eps]:.1f}%, best local threshold ε = {self.best_eps:g} "
            f"{self.means[self.best_eps]:.1f}%.",
            f"- {diff(f'Mixup − {zero}', self.mixup_vs_none)}.",
            f"- {diff(f'Local (ε = {self.best_eps:g}) − {zero}', self.local_vs_none)}.",
            f"- {diff(f'Local (ε = {self.best_eps:g}) − Mixup', self.local_vs_mixup)}.",
            f"- First reading (Mixup and Local Mixup beat {zero}): **{'holds' if self.first_holds else 'does not hold'}**; "
            f"second reading (Local Mixup beats Mixup): **{'holds' if self.second_holds else 'does not hold'}**.",
        ])


def reading(frame: pd.DataFrame, setting: str, mixup_eps: float) -> Reading:
    """The two readings for ``setting`` from its runs in ``frame`` (one row per run: ``setting``,
    ``data``, ``eps``, ``seed``, ``test_error_pct``), at every eps recorded, Mixup being
    ``mixup_eps`` (a threshold at or above the largest distance between training points). One data
    set: intervals over seeds; several: the across-draws reading (see the module docstring)."""
    runs = frame[frame["setting"] == setting]
    draws = sorted(set(runs["data"]))
    if not draws:
        raise ValueError(f"no recorded run of setting {setting!r}")
    means = {float(e): float(v) for e, v in
             (runs.groupby(["eps", "data"])["test_error_pct"].mean().groupby(level="eps").mean()).items()}
    local = {e: m for e, m in means.items() if 0.0 < e < mixup_eps}
    if 0.0 not in means or mixup_eps not in means or not local:
        raise ValueError(f"setting {setting!r} needs runs at eps = 0, at eps = {mixup_eps:g} and between; has {sorted(means)}")
    best = min(local, key=local.get)
    if len(draws) == 1:
        compare = lambda a, b: paired(runs, setting, a, b)  # noqa: E731
    else:
        compare = lambda a, b: across_draws(per_draw(runs, setting, a, b))  # noqa: E731
    return Reading(setting, "one data set" if len(draws) == 1 else "across draws", len(draws), mixup_eps, best, means,
                   compare(mixup_eps, 0.0), compare(best, 0.0), compare(best, mixup_eps))


def _interval(d: PairedDifference) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} ({d.n} pair, no interval)"
    return f"{d.mean:+.2f} [{d.mean - d.half:+.2f}, {d.mean + d.half:+.2f}]"


def verdict_table(scopes: Mapping[str, Mapping[str, Reading]]) -> pd.DataFrame:
    """The paper's two readings, one row per setting and reading, one column per scope (e.g.
    ``{"across 20 draws": {setting: Reading}, "authors' data": {...}}``; a setting missing from a
    scope reads "—"). A cell says whether the reading holds there and the paired differences it
    rests on, in points, with their 95% interval in brackets: Mixup and the best local threshold
    minus eps = 0 for the first reading, the best local threshold minus Mixup for the second."""
    rows = []
    for setting, label in SETTING_LABELS.items():
        if not any(setting in readings for readings in scopes.values()):
            continue
        first = {"setting": label, "reading": f"1. Mixup and Local Mixup below {ZERO_LABELS[setting]}"}
        second = {"setting": label, "reading": "2. Local Mixup below Mixup"}
        for scope, readings in scopes.items():
            r = readings.get(setting)
            first[scope] = "—" if r is None else (
                f"{'holds' if r.first_holds else 'does not hold'}: Mixup {_interval(r.mixup_vs_none)}, "
                f"ε = {r.best_eps:g} {_interval(r.local_vs_none)}")
            second[scope] = "—" if r is None else (
                f"{'holds' if r.second_holds else 'does not hold'}: ε = {r.best_eps:g} − Mixup {_interval(r.local_vs_mixup)}")
        rows += [first, second]
    if not rows:
        raise ValueError("no reading to tabulate: every scope is empty")
    return pd.DataFrame(rows).set_index(["setting", "reading"])


def scope_readings(frame: pd.DataFrame, mixup_eps: float | None = None) -> dict[str, Reading]:
    """:func:`reading` of every setting of ``frame`` that has runs at eps = 0, at Mixup's threshold
    (``mixup_eps``, default the largest eps recorded) and between."""
    out = {}
    for setting in SETTING_LABELS:
        runs = frame[frame["setting"] == setting]
        if not runs.empty:
            out[setting] = reading(runs, setting, float(runs["eps"].max()) if mixup_eps is None else mixup_eps)
    return out


def verdict_scopes(draws: pd.DataFrame, own: pd.DataFrame) -> dict[str, dict[str, Reading]]:
    """The scopes that carry Figure 3's verdicts, scope -> :func:`scope_readings`: across the draws of
    ``draws`` (complete draws, :func:`complete_draws`; a setting with fewer than two is left out) and
    on the authors' data ``own``; a scope without runs is left out."""
    draws = draws[draws.groupby("setting")["data"].transform("nunique") >= 2]
    scopes = {}
    if not draws.empty:
        scopes[f"across {draws['data'].nunique()} draws"] = scope_readings(draws)
    if not own.empty:
        scopes[f"authors' data ({int(own.groupby(['setting', 'eps']).size().min())} runs)"] = scope_readings(own)
    return scopes


class Collapse(NamedTuple):
    """Runs that separated the spirals and then lost it, at one eps (errors in %)."""

    runs: int
    separated: int  # reached below SEPARATED_PCT * 2 at some recorded epoch
    collapsed: int  # of those, ended above FAILED_PCT
    best_epoch_mean: float  # mean over runs of each run's lowest recorded test error
    last_epoch_mean: float
    lowest_mean_epoch: int  # the recorded epoch where the mean error over runs is lowest
    lowest_mean: float


def collapses(curves: pd.DataFrame) -> dict[float, Collapse]:
    """Per eps, from learning curves (one row per eps, seed and recorded epoch with
    ``test_error_pct``, :func:`~localmixup.paper.spirals.sweep.load_spirals_curves`): how many runs
    reached under twice :data:`SEPARATED_PCT` and then ended above :data:`FAILED_PCT`, and the
    best-epoch against the last-epoch error."""
    out = {}
    for eps, rows in curves.groupby("eps"):
        by_run = rows.sort_values("epoch").groupby("seed")["test_error_pct"]
        best, last = by_run.min(), by_run.last()
        reached = best < 2 * SEPARATED_PCT
        mean_by_epoch = rows.groupby("epoch")["test_error_pct"].mean()
        out[float(eps)] = Collapse(len(best), int(reached.sum()), int((reached & (last > FAILED_PCT)).sum()), float(best.mean()),
                                   float(last.mean()), int(mean_by_epoch.idxmin()), float(mean_by_epoch.min()))
    return out


def collapses_per_draw(curves: pd.DataFrame, eps_values: Iterable[float]) -> pd.DataFrame:
    """:func:`collapses` on each data set of ``curves`` (with a ``data`` column,
    :func:`~localmixup.paper.spirals.sweep.load_spirals_curves`), at ``eps_values``: one row per
    data set, one column per eps, each cell "collapsed of separated of runs" (e.g. ``"3 / 40 / 50"``)."""
    eps_values = [float(e) for e in eps_values]
    cells = {}
    for data, part in curves[curves["eps"].isin(eps_values)].groupby("data"):
        found = collapses(part)
        cells[data] = {f"ε = {e:g}": "—" if e not in found else f"{found[e].collapsed} / {found[e].separated} / {found[e].runs}"
                       for e in eps_values}
    if not cells:
        raise ValueError(f"no learning curve at eps {eps_values}")
    return pd.DataFrame.from_dict(cells, orient="index").loc[sorted(cells, key=_draw_key)].rename_axis("data")


def describe_collapses(table: dict[float, Collapse], eps_values: Iterable[float]) -> str:
    """One sentence per eps of ``eps_values``: separated, collapsed, best-epoch and last-epoch means."""
    lines = []
    for eps in eps_values:
        c = table[eps]
        lines.append(f"- ε = {eps:g}: {c.separated} of {c.runs} runs reached under {2 * SEPARATED_PCT:g}% test error at some "
                     f"recorded epoch and {c.collapsed} of them ended above {FAILED_PCT:g}%; each run's best recorded epoch "
                     f"averages {c.best_epoch_mean:.1f}% against {c.last_epoch_mean:.1f}% at the last; the mean over runs is "
                     f"lowest at epoch {c.lowest_mean_epoch} ({c.lowest_mean:.1f}%).")
    return "\n".join(lines) if lines else "(no threshold asked)"



def longer_training(curves: pd.DataFrame, early: int, late: int) -> pd.DataFrame:
    """Per eps, from learning curves recorded at epochs ``early`` and ``late`` (one row per eps,
    seed and recorded epoch, :func:`~localmixup.paper.spirals.sweep.load_spirals_curves`): runs,
    mean test error (%) at each, and the paired change ``late - early`` with its 95% interval
    (``low``, ``high``), over the seeds recorded at both."""
    rows = []
    for eps, part in curves.groupby("eps"):
        at = {e: dict(zip(p["seed"], p["test_error_pct"])) for e, p in part[part["epoch"].isin([early, late])].groupby("epoch")}
        if early not in at or late not in at:
            raise ValueError(f"eps={eps:g}: the curves need epochs {early} and {late}, have {sorted(set(part['epoch']))}")
        d = paired_difference(at[late], at[early])
        rows.append({"eps": float(eps), "runs": d.n, f"epoch {early}": sum(at[early].values()) / len(at[early]),
                     f"epoch {late}": sum(at[late].values()) / len(at[late]), "change": d.mean, "low": d.mean - d.half,
                     "high": d.mean + d.half})
    return pd.DataFrame(rows).set_index("eps")


def describe_longer_training(table: pd.DataFrame, collapsed: Mapping[float, Collapse], label: str) -> str:
    """One Markdown bullet for a setting trained longer: per eps, the mean error at the early and the
    late epoch and the paired change with its 95% interval (``table`` from :func:`longer_training`),
    then the runs that separated and then collapsed over the long runs (``collapsed``, :func:`collapses`)."""
    early, late = (c for c in table.columns if c.startswith("epoch "))
    moves = [f"ε = {eps:g}: {row[early]:.1f}% → {row[late]:.1f}% ({row['change']:+.2f} points, 95% CI "
             f"{row['low']:+.2f} to {row['high']:+.2f}, {int(row['runs'])} runs)" for eps, row in table.iterrows()]
    fell = "; ".join(f"ε = {eps:g}: {c.collapsed} of {c.runs}" for eps, c in collapsed.items())
    return (f"- **{label}**: " + "; ".join(moves) + ".\n"
            f"  Runs that separated then collapsed over {late.removeprefix('epoch ')} epochs: {fell}.")


class SoftmaxBaseline(NamedTuple):
    """Training without mixing with the authors' softmax output against plain logits, run by run
    (errors in %): runs of each, the share (%) of each that ends above :data:`FAILED_PCT`, and the
    share (%) of the seeds run by both where the softmax output is worse."""

    runs: tuple[int, int]
    failed_pct: tuple[float, float]
    paired: int
    worse_pct: float

    def markdown(self) -> str:
        return (f"With the softmax output, {self.failed_pct[0]:.0f}% of the runs end above {FAILED_PCT:g}% test error; "
                f"with plain logits, {self.failed_pct[1]:.0f}%. On the {self.paired} seeds run by both, the softmax output "
                f"is worse in {self.worse_pct:.0f}% of the runs, equal or better in the others.")


def softmax_baseline(softmax: pd.Series, logits: pd.Series) -> SoftmaxBaseline:
    """:class:`SoftmaxBaseline` from the final errors (%) at eps = 0 of setting (a) and of setting (c),
    each indexed by seed."""
    both = pd.concat({"softmax": softmax, "logits": logits}, axis=1).dropna()
    if both.empty:
        raise ValueError("softmax_baseline needs runs of both outputs on common seeds")
    failed = tuple(100 * float((s > FAILED_PCT).mean()) for s in (softmax, logits))
    return SoftmaxBaseline((len(softmax), len(logits)), failed, len(both),
                           100 * float((both["softmax"] > both["logits"]).mean()))


SIDE_WORDS = {"below": "lies below", "above": "lies above", "not separated": "is not distinguishable from"}
"""How a sentence says where one error lies against another (:attr:`~localmixup.paper.stats.PairedDifference.side`)."""


def closing_bullets(runs: pd.DataFrame, mixup_eps: float, *, scale: str, later: Reading | None = None,
                    later_epochs: int | None = None) -> str:
    """The spirals chapter's closing bullets, every number from the runs of one data set.

    ``runs``: one row per run of the settings (``setting``, ``data``, ``eps``, ``seed``,
    ``test_error_pct``, ``pair_weight``), the three of the chapter; ``scale``: how the chapter
    names the scale of these runs; ``later``: the authors' setting read again after
    ``later_epochs`` epochs on the same seeds (:func:`reading`), if recorded.
    """
    authors = reading(runs, "authors", mixup_eps)
    zero_logits = runs[(runs["setting"] == "eq2-graph") & (runs["eps"] == 0.0)]
    if zero_logits.empty:
        raise ValueError("closing_bullets needs the runs of setting 'eq2-graph' at eps = 0 (plain logits, no mixing)")
    best = _errors(runs, "authors", authors.best_eps)
    to_logits = paired_difference(dict(zip(best["seed"], best["test_error_pct"])),
                                  dict(zip(zero_logits["seed"], zero_logits["test_error_pct"])))
    kept = runs[runs["setting"] == "authors"].groupby("eps")["pair_weight"].mean()
    gain = ("Local Mixup shows no gain over training without mixing in these runs." if authors.local_vs_none.side != "below" else
            "Local Mixup's gain over training without mixing holds against both baselines." if to_logits.side == "below" else
            "Local Mixup's gain over training without mixing holds against the authors' baseline only: it rests on its softmax.")
    epochs = int(runs["epochs"].iloc[0])
    lines = [
        f"- These numbers come from {len(runs)} recorded runs at {scale}.",
        f"- The authors' best threshold (ε = {authors.best_eps:g}, {authors.means[authors.best_eps]:.1f}%) "
        f"{SIDE_WORDS[authors.local_vs_none.side]} their training without mixing ({authors.means[0.0]:.1f}%, softmax output) "
        f"and {SIDE_WORDS[to_logits.side]} training without mixing with plain logits ({zero_logits['test_error_pct'].mean():.1f}%; "
        f"paired difference {to_logits.mean:+.2f} ± {to_logits.half:.2f} points): {gain}",
        f"- The authors' batch scaling multiplies each batch's loss by the fraction of its pairs within ε (from "
        f"{kept[kept.index > 0].min():.2f} to {kept.max():.2f} over the grid): far pairs still train, and Adam, nearly "
        "invariant to the scale of the loss, sees little of ε.",
        "- Only the threshold graph is studied, as in the paper's Figure 3.",
    ]
    if later is not None:
        if later_epochs is None:
            raise ValueError("closing_bullets: later_epochs (the epochs of the later reading) is needed with later")
        changed = (later.first_holds, later.second_holds) != (authors.first_holds, authors.second_holds)
        d = later.local_vs_mixup
        lines.append(f"- The length of training {'changes' if changed else 'does not change'} the authors' setting's verdicts: "
                     f"after {later_epochs} epochs instead of {epochs} (same seeds, section above) the first reading "
                     f"{'holds' if later.first_holds else 'does not hold'} (Mixup − no mixing {later.mixup_vs_none.mean:+.2f} "
                     f"points) and the second {'holds' if later.second_holds else 'does not hold'} (ε = {later.best_eps:g} − Mixup "
                     f"{d.mean:+.2f} points, 95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f}).")
    return "\n".join(lines)
