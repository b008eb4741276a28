"""What the AdaMixup chapter's records say: the error of Mixup, Local Mixup and AdaMixup with their
differences paired by seed, read against the paper's claim (Local Mixup below AdaMixup); the
convergence; AdaMixup's learned policy and discriminator; the recorded cost measurement; and the
chapter's reading as Markdown.

The functions take run records (dicts, as :func:`~localmixup.paper.record_files.read_record`
returns them) or frames and return data; the ``describe*`` functions render it. The cost
measurement is a record too (:func:`cost_record`): reused when it exists for the same runs, steps,
rounds and device, else measured and written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from localmixup.paper.stats import PairedDifference, confidence_interval, describe_difference, paired_difference
from localmixup.paper.sweep.results import final_errors, runs_of
from localmixup.paper.adamixup.plan import ADAMIXUP_METHODS

METHODS = ADAMIXUP_METHODS
LABELS = {"mixup": "Mixup", "local": "Local Mixup", "adamixup": "AdaMixup"}
#: The paired comparisons the chapter shows, ``a - b``; the first is the paper's claim (Section 5.3).
PAIRS = (("local", "adamixup"), ("local", "mixup"), ("adamixup", "mixup"))
#: The paper's values in the comparison of Section 5.3 (error %, as mean, printed half-width and runs). Mixup
#: is not in that comparison; its CIFAR-10 value from Table 1 (100 runs) is shown, labelled as such.
PAPER = {("cifar10", "adamixup"): (4.11, 0.12, "5 runs (Sec. 5.3)"), ("cifar10", "local"): (3.89, 0.12, "5 runs (Sec. 5.3)"),
         ("cifar10", "mixup"): (4.13, 0.03, "100 runs (Table 1)")}
MIB = 2 ** 20


def cell(values: Sequence[float]) -> str:
    """``9.93 ± 0.44 (n=5)``, ``9.93 (n=1)`` or ``—`` for no value."""
    mean, half, n = confidence_interval(values)
    if n == 0:
        return "—"
    return f"{mean:.2f} (n=1)" if n == 1 else f"{mean:.2f} ± {half:.2f} (n={n})"


def error_table(records: Sequence[Mapping[str, Any]], error_dataset: str, profile: str, labels: Mapping[str, str],
                unavailable: Mapping[str, str]) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[float, float, int]]]:
    """The error table (CIFAR-10 and ``error_dataset``, one row per method: ours, the paper's, why
    there is no run) and the summary ``(dataset, method) -> (mean, half-width, finished runs)``."""
    rows, summary = [], {}
    for d in dict.fromkeys(["cifar10", error_dataset]):
        for m in METHODS:
            done = runs_of(records, d, m)
            ok = [r["final_test_error_pct"] for r in done if r["status"] == "ok"]
            summary[d, m] = confidence_interval(ok)
            paper = PAPER.get((d, m))
            note = unavailable.get(d, "") if not done else (f"{len(done) - len(ok)} run(s) failed (NaN loss)" if len(ok) < len(done) else "")
            rows.append({"dataset": labels.get(d, d) + ("" if d != error_dataset or profile == "paper" else f" — {profile} profile"),
                         "method": LABELS[m] + (" (trained under this recipe)" if m == "adamixup" else ""), "ours: error %": cell(ok),
                         "paper: error %": f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "—",
                         "paper: runs": paper[2] if paper else "", "why no runs / notes": note})
    return pd.DataFrame(rows).set_index(["dataset", "method"]), summary


class ErrorReading(NamedTuple):
    """The error comparison on one dataset (errors in %, differences in points, paired by seed).

    ``means``: method -> (mean, half-width, finished runs); ``differences``: ``(a, b) -> a - b`` for
    each pair of :data:`PAIRS`."""

    dataset: str
    means: dict[str, tuple[float, float, int]]
    differences: dict[tuple[str, str], PairedDifference]

    @property
    def claim(self) -> PairedDifference:
        """Local Mixup minus AdaMixup (the paper claims it is below 0)."""
        return self.differences["local", "adamixup"]

    @property
    def verdict(self) -> str:
        """``"Local Mixup ahead"`` (as the paper), ``"AdaMixup ahead"`` (the opposite) or ``"not separated"``."""
        return {"below": "Local Mixup ahead", "above": "AdaMixup ahead", "not separated": "not separated"}[self.claim.side]

    @property
    def best(self) -> str:
        return min(self.means, key=lambda m: self.means[m][0])

    @property
    def spread(self) -> float:
        """The largest minus the smallest mean (points)."""
        means = [v[0] for v in self.means.values()]
        return max(means) - min(means)

    @property
    def intervals_overlap(self) -> bool:
        """Whether the unpaired 95% intervals of the three means all overlap (each with 2 runs or more)."""
        m = self.means
        return all(v[2] >= 2 for v in m.values()) and all(
            abs(m[a][0] - m[b][0]) <= m[a][1] + m[b][1] for a in m for b in m)


def error_reading(records: Sequence[Mapping[str, Any]], dataset: str) -> ErrorReading:
    """The comparison of the three methods on ``dataset`` from its finished runs."""
    errors = {m: final_errors(runs_of(records, dataset, m)) for m in METHODS}
    missing = [m for m in METHODS if not errors[m]]
    if missing:
        raise ValueError(f"{dataset}: no finished run of {missing}")
    return ErrorReading(dataset, {m: confidence_interval(list(errors[m].values())) for m in METHODS},
                        {(a, b): paired_difference(errors[a], errors[b]) for a, b in PAIRS})


def describe_differences(reading: ErrorReading, label: str) -> str:
    """Every paired difference, one Markdown bullet each."""
    return "\n".join(f"- {label}: {describe_difference(LABELS[a], LABELS[b], d)}" for (a, b), d in reading.differences.items())


def mean_curves(curves: pd.DataFrame, methods: Iterable[str] = METHODS) -> dict[str, np.ndarray]:
    """Method -> mean test error (%) over seeds at each epoch, in epoch order (methods with runs only;
    ``curves``: :func:`~localmixup.paper.sweep.results.learning_curves`)."""
    if not len(curves):
        return {}
    return {m: part.groupby("epoch")["test_error_pct"].mean().to_numpy() for m in methods
            if len(part := curves[curves["method"] == m])}


def speed_table(mean_curve: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per method: error after epoch 1, mean error over the epochs (lower = faster), final error (%)."""
    return pd.DataFrame({LABELS[m]: {"error after epoch 1 (%)": c[0], "mean error over the epochs (%)": float(np.mean(c)),
                                     "error after the last epoch (%)": c[-1]} for m, c in mean_curve.items()}).T


def policy_epochs(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per epoch of each finished AdaMixup run: ``seed`` and the epoch's record (``lam_mean``,
    ``start_mean``, ``width_mean``, ``discriminator_accuracy``, ``intrusion_ce``, ...)."""
    return pd.DataFrame([{"seed": r["config"]["seed"], **e} for r in records
                         if r["config"]["method"] == "adamixup" and r["status"] == "ok" for e in r["epochs"]])


#: The entropy (nats) of the 1 to 2 proportion of mixed to real samples a step scores with split_batch
#: (B/2 mixed, B real), which a discriminator that has learned only its bias reaches.
PRIOR_ENTROPY = math.log(3) - 2 / 3 * math.log(2)


class PolicyReading(NamedTuple):
    """AdaMixup's policy and discriminator after the last epoch (means over seeds)."""

    lam: float
    start: float
    width: float
    discriminator_accuracy: float
    intrusion_ce: float

    @property
    def policy(self) -> str:
        """``"collapsed"`` (lam below 0.05 or above 0.95), ``"plain"`` (the region covers almost all of
        [0, 1]: lam close to U(0, 1), as plain Mixup) or ``"narrow"``."""
        if self.lam < 0.05 or self.lam > 0.95:
            return "collapsed"
        return "plain" if self.start < 0.1 and self.start + self.width > 0.9 else "narrow"

    @property
    def discriminator_at_chance(self) -> bool:
        return abs(self.discriminator_accuracy - 0.5) < 0.02


def policy_reading(epochs: pd.DataFrame) -> PolicyReading:
    """The last epoch of :func:`policy_epochs`, averaged over seeds."""
    last = epochs[epochs["epoch"] == epochs["epoch"].max()]
    return PolicyReading(*(float(last[k].mean()) for k in ("lam_mean", "start_mean", "width_mean",
                                                            "discriminator_accuracy", "intrusion_ce")))


def cost_record(configs: Sequence[Any], path: Any, device: Any, steps: int, rounds: int) -> dict[str, Any]:
    """The step costs of ``configs`` (:func:`~localmixup.paper.training.costs.step_costs`), read from
    the record at ``path`` when it was measured for the same runs on the same device, else measured
    here and written there."""
    import localmixup.paper as lp
    from localmixup.paper.training.config import TrainConfig

    record = lp.read_record(path) if path.is_file() else None
    if (record is None or [TrainConfig.as_recorded(c) for c in record["configs"]] != [c.to_dict() for c in configs]
            or record["environment"]["device"] != lp.device_name(device)):
        from localmixup.paper.training.costs import step_costs

        record = {"configs": [c.to_dict() for c in configs], "steps": steps, "rounds": rounds,
                  "costs": step_costs(configs, device, steps=steps, rounds=rounds), "environment": lp.environment(device)}
        lp.write_record(path, record)
    return record


class CostRatios(NamedTuple):
    """AdaMixup over Local Mixup: parameters, time per step (CPU time where measured on a CPU,
    wall-clock time on a GPU) and memory saved for the backward pass."""

    parameters: float
    time: float
    memory: float
    cpu: bool


def cost_ratios(record: Mapping[str, Any]) -> CostRatios:
    """The ratios of a cost record (:func:`cost_record`)."""
    by = {c["method"]: c for c in record["costs"]}
    cpu = "CPU" in record["environment"]["device"]
    key = "cpu_seconds_per_step" if cpu else "seconds_per_step"  # CPU time resists a shared CPU's load
    return CostRatios(by["adamixup"]["parameters"] / by["local"]["parameters"], by["adamixup"][key] / by["local"][key],
                      by["adamixup"]["saved_for_backward_bytes"] / by["local"]["saved_for_backward_bytes"], cpu)


def cost_table(record: Mapping[str, Any], records: Sequence[Mapping[str, Any]], dataset: str) -> pd.DataFrame:
    """One row per method of the cost record: parameters of each part, time per epoch (measured here,
    and the recorded runs' median), memory saved for the backward pass and GPU peaks (MiB)."""
    rows = []
    for c in record["costs"]:
        m, p = c["method"], c["parameter_counts"]
        done = runs_of(records, dataset, m)
        seconds = [e["seconds"] for r in done for e in r["epochs"]]
        peaks = [r["memory"]["cuda_peak_allocated_bytes"] for r in done
                 if (r.get("memory") or {}).get("cuda_peak_allocated_bytes") is not None]
        rows.append({
            "method": LABELS[m], "classifier params": p["classifier"], "generator params": p.get("generator", 0),
            "discriminator params": p.get("discriminator", 0), "total params": p["total"],
            "s / epoch (here, wall-clock)": c["seconds_per_epoch"],
            "CPU s / epoch (here, process CPU time)": c["cpu_seconds_per_epoch"],
            "s / epoch (recorded runs, median)": float(np.median(seconds)) if seconds else math.nan,
            "saved for backward / step (MiB)": c["saved_for_backward_bytes"] / MIB,
            "GPU step peak (MiB)": c["cuda_step_peak_bytes"] / MIB if c["cuda_step_peak_bytes"] is not None else math.nan,
            "GPU run peak, recorded (MiB)": max(peaks) / MIB if peaks else math.nan,
        })
    return pd.DataFrame(rows).set_index("method")


def _interval(d: PairedDifference) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} points ({d.n} paired seed)"
    return f"{d.mean:+.2f} points (95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f}, {d.n} paired seeds)"


def describe_error(reading: ErrorReading, label: str, profile: str) -> list[str]:
    """The error comparison as Markdown bullets, led by the paired test of the paper's claim."""
    d, paper = reading.claim, PAPER["cifar10", "local"][0] - PAPER["cifar10", "adamixup"][0]
    where = f"{label}, {profile} profile; AdaMixup trained under this recipe"
    if reading.verdict == "AdaMixup ahead":
        head = f"AdaMixup is ahead of Local Mixup, **the opposite of the paper** ({paper:+.2f} points on CIFAR-10)"
    elif reading.verdict == "Local Mixup ahead":
        head = f"Local Mixup is ahead of AdaMixup, **as in the paper** ({paper:+.2f} points on CIFAR-10)"
    else:
        head = f"these runs do not separate Local Mixup from AdaMixup (the paper: {paper:+.2f} points on CIFAR-10)"
    best = reading.best
    lines = [f"- **Error, paired by seed** ({where}): Local Mixup − AdaMixup {_interval(d)}: {head}."]
    lines += [f"  - {describe_difference(LABELS[a], LABELS[b], x)}" for (a, b), x in reading.differences.items()
              if (a, b) != ("local", "adamixup")]
    lines.append(f"- **Means**: lowest for {LABELS[best]} ({reading.means[best][0]:.2f} %); the three means lie within "
                 f"{reading.spread:.2f} points" + ("; their unpaired 95 % intervals all overlap, so only the pairing by "
                                                   "seed separates them." if reading.intervals_overlap and any(
                                                       x.separated for x in reading.differences.values())
                                                   else "; their unpaired 95 % intervals all overlap."
                                                   if reading.intervals_overlap else "."))
    return lines


def describe_policy(p: PolicyReading) -> list[str]:
    """AdaMixup's policy and discriminator after the last epoch, as Markdown bullets."""
    lines = [f"- **AdaMixup's policy** after the last epoch: mean lam {p.lam:.3f} (mean policy region "
             f"[{p.start:.3f}, {p.start + p.width:.3f}], width {p.width:.3f}): "
             + {"collapsed": "the policy has collapsed to (almost) no mixing.",
                "plain": "its regions cover almost all of [0, 1], so it draws lam close to U(0, 1), as plain Mixup does.",
                "narrow": "the policy still mixes, in a region narrower than [0, 1]."}[p.policy]]
    if p.discriminator_at_chance:
        lines.append(f"- **AdaMixup's discriminator** is at chance after the last epoch (balanced accuracy {p.discriminator_accuracy:.3f}); its "
                     f"intrusion CE, {p.intrusion_ce:.3f} nats, is {'close to' if abs(p.intrusion_ce - PRIOR_ENTROPY) < 0.02 else 'unlike'} "
                     f"the {PRIOR_ENTROPY:.3f} nats of a constant guess of the real/mixed proportion (1 mixed for 2 real): "
                     "it has not yet left the saddle point of its N(0, 1e-3) initialisation, so nothing yet pushes the "
                     "policy away from intrusions; the policy moves under the mixing CE alone.")
    else:
        lines.append(f"- **AdaMixup's discriminator** separates real from mixed samples (balanced accuracy {p.discriminator_accuracy:.3f} "
                     f"after the last epoch, chance 0.5; intrusion CE {p.intrusion_ce:.3f} nats).")
    return lines


def describe(profile: str, labels: Mapping[str, str], error: ErrorReading | None, unavailable: Mapping[str, str],
             mean_curve: Mapping[str, np.ndarray], curve_dataset: str, policy: PolicyReading | None,
             ratios: CostRatios, resnet_ratio: float) -> str:
    """The chapter's reading as Markdown: the error (the paired test first), CIFAR-10 when not run,
    the convergence, AdaMixup's policy and discriminator, the cost."""
    lines = describe_error(error, labels.get(error.dataset, error.dataset), profile) if error is not None else []
    if "cifar10" in unavailable:
        lines.append(f"- **CIFAR-10**: not run here ({unavailable['cifar10']}); the paper's 4.11 ± 0.12 (AdaMixup) versus "
                     "3.89 ± 0.12 (Local Mixup) is unchecked. Its Local Mixup value (3.89) is also below its own Table 1 value "
                     "(4.03 ± 0.03, 100 runs), with the same network.")
    if mean_curve:
        faster = min(mean_curve, key=lambda m: float(np.mean(mean_curve[m])))
        lines.append(f"- **Convergence** ({labels.get(curve_dataset, curve_dataset)}): lowest error averaged over the "
                     f"epochs for {LABELS[faster]} ({float(np.mean(mean_curve[faster])):.2f} %; Local Mixup "
                     f"{float(np.mean(mean_curve['local'])):.2f} %, AdaMixup {float(np.mean(mean_curve['adamixup'])):.2f} %).")
    if policy is not None:
        lines += describe_policy(policy)
    lines.append(f"- **Cost**: AdaMixup trains x{ratios.parameters:.2f} the parameters of Local Mixup (x{resnet_ratio:.2f} "
                 f"with ResNet-18), keeps x{ratios.memory:.2f} the activations per step for the backward pass and takes "
                 f"x{ratios.time:.2f} the {'CPU' if ratios.cpu else 'wall-clock'} time per step here.")
    return "\n".join(lines)
