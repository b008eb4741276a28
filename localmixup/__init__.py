"""Local Mixup (Baena, Drumetz, Gripon, 2022): Mixup whose pairs are weighted by a locality graph.

Typical use in a training loop::

    mix = LocalMixup("exp", alpha=1e-3)
    batch = mix(x, y)
    loss = mixup_loss(model(batch.x), batch)
"""

__version__ = "0.1.0"

from .adamixup import AdaMixup, PolicyDraw, adamixup_step, split_model
from .aggregate import PAPER_TABLE1, confidence_interval, format_table1, interval_table, table1
from .data import DATASETS, DatasetUnavailable, DeviceLoader, dataset_status, load_arrays
from .distances import pairwise_distances
from .graphs import GRAPHS, locality_weights
from .intrusion import intrusion_rate
from .loss import mixup_loss, per_sample_cross_entropy
from .many_runs import VARIANTS, ManyRunsConfig, ManyRunsResult, StackedMLP, train_many, train_single
from .mixing import PAIRINGS, LocalMixup, MixedBatch
from .models import MODELS, build_model, count_parameters
from .profiles import PROFILES, chapter_header, check_profile
from .plots import plot_band
from .provenance import default_device, device_name, environment, git_commit
from .records import data_dir, load_records, missing, project_root, read_record, results_dir, write_record
from .spirals import Split, make_spirals
from .spirals_sweep import PAPER_BATCH_SIZES, PAPER_EPS, load_spirals_sweep, sweep_spirals
from .stacked import STACKABLE, StackedModels, check_stackable, stacks, train_stacked
from .sweep import BACKENDS, check_backend, make_configs, pending, record_path, run_one, run_sweep
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
from .train import METHODS, TrainConfig, profile_config, train_run
from .transfer import to_device

__all__ = [
    "DATASETS",
    "GRAPHS",
    "METHODS",
    "MODELS",
    "PAIRINGS",
    "PAPER_BATCH_SIZES",
    "PAPER_EPS",
    "PAPER_TABLE1",
    "PROFILES",
    "STACKABLE",
    "VARIANTS",
    "BACKENDS",
    "AdaMixup",
    "DatasetUnavailable",
    "DeviceLoader",
    "LocalMixup",
    "ManyRunsConfig",
    "ManyRunsResult",
    "MixedBatch",
    "PiecewiseLinear",
    "PolicyDraw",
    "Split",
    "StackedMLP",
    "StackedModels",
    "TrainConfig",
    "adamixup_step",
    "band_coefficients",
    "band_weights",
    "beta_density",
    "bias_variance",
    "bin_means",
    "brute_force_optimum",
    "build_model",
    "chapter_header",
    "check_backend",
    "check_profile",
    "check_stackable",
    "confidence_interval",
    "count_parameters",
    "data_dir",
    "dataset_status",
    "default_device",
    "device_name",
    "environment",
    "format_table1",
    "git_commit",
    "interval_table",
    "intrusion_rate",
    "lemma31_function",
    "lemma31_operator",
    "linear_invariance_defect",
    "linear_optimum",
    "linear_risk_matrix",
    "load_arrays",
    "load_records",
    "load_spirals_sweep",
    "locality_weights",
    "make_configs",
    "make_spirals",
    "missing",
    "mixup_loss",
    "mixup_optimum",
    "optimum_operator",
    "optimum_values",
    "pairwise_distances",
    "pending",
    "per_sample_cross_entropy",
    "plot_band",
    "periodic_operator",
    "profile_config",
    "project_root",
    "read_record",
    "record_path",
    "results_dir",
    "run_one",
    "run_sweep",
    "split_model",
    "stacks",
    "sweep_spirals",
    "table1",
    "to_device",
    "train_many",
    "train_run",
    "train_single",
    "train_stacked",
    "write_record",
]
