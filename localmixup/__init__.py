"""Local Mixup (Baena, Drumetz, Gripon, 2022): Mixup whose pairs are weighted by a locality graph.

Typical use in a training loop::

    mix = LocalMixup("exp", alpha=1e-3)
    batch = mix(x, y)
    loss = mixup_loss(model(batch.x), batch)
"""

__version__ = "0.1.0"

from .distances import pairwise_distances
from .graphs import GRAPHS, locality_weights
from .loss import mixup_loss, per_sample_cross_entropy
from .mixing import PAIRINGS, LocalMixup, MixedBatch
from .profiles import PROFILES, chapter_header, check_profile
from .provenance import default_device, device_name, environment, git_commit
from .records import data_dir, load_records, missing, project_root, read_record, results_dir, write_record
from .spirals import Split, make_spirals
from .theory1d import (
    PiecewiseLinear,
    band_coefficients,
    band_weights,
    beta_density,
    bias_variance,
    bin_means,
    brute_force_optimum,
    lemma31_function,
    lemma31_operator,
    linear_invariance_defect,
    linear_optimum,
    linear_risk_matrix,
    mixup_optimum,
    optimum_operator,
    optimum_values,
    periodic_operator,
)
from .intrusion import intrusion_rate
from .many_runs import VARIANTS, ManyRunsConfig, ManyRunsResult, StackedMLP, train_many, train_single
from .spirals_sweep import PAPER_BATCH_SIZES, PAPER_EPS, load_spirals_sweep, sweep_spirals

__all__ = [
    "GRAPHS",
    "PAIRINGS",
    "PAPER_BATCH_SIZES",
    "PAPER_EPS",
    "PROFILES",
    "VARIANTS",
    "LocalMixup",
    "ManyRunsConfig",
    "ManyRunsResult",
    "MixedBatch",
    "PiecewiseLinear",
    "Split",
    "StackedMLP",
    "band_coefficients",
    "band_weights",
    "beta_density",
    "bias_variance",
    "bin_means",
    "brute_force_optimum",
    "chapter_header",
    "check_profile",
    "data_dir",
    "default_device",
    "device_name",
    "environment",
    "git_commit",
    "intrusion_rate",
    "lemma31_function",
    "lemma31_operator",
    "linear_invariance_defect",
    "linear_optimum",
    "linear_risk_matrix",
    "load_records",
    "load_spirals_sweep",
    "locality_weights",
    "make_spirals",
    "missing",
    "mixup_loss",
    "mixup_optimum",
    "optimum_operator",
    "optimum_values",
    "pairwise_distances",
    "per_sample_cross_entropy",
    "periodic_operator",
    "project_root",
    "read_record",
    "results_dir",
    "sweep_spirals",
    "train_many",
    "train_single",
    "write_record",
]
