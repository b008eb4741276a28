"""The paper's one-dimensional theory (Sections 3 and 4.2), computed exactly (numpy and scipy)."""

from localmixup.extras import require

require("theory", "localmixup.theory")

from localmixup.theory.one_d import (
    GapScaling,
    PiecewiseLinear,
    band_coefficients,
    band_weights,
    beta_density,
    bias_variance,
    bin_means,
    brute_force_optimum,
    gap_scaling,
    grid_weights,
    lemma31_function,
    lemma31_operator,
    linear_gap_operator,
    linear_gap_rms,
    linear_invariance_defect,
    linear_optimum,
    linear_risk_matrix,
    mixup_optimum,
    optimum_operator,
    optimum_values,
    periodic_operator,
    within_sampling_error,
)

__all__ = [
    "GapScaling",
    "PiecewiseLinear",
    "band_coefficients",
    "band_weights",
    "beta_density",
    "bias_variance",
    "bin_means",
    "brute_force_optimum",
    "gap_scaling",
    "grid_weights",
    "lemma31_function",
    "lemma31_operator",
    "linear_gap_operator",
    "linear_gap_rms",
    "linear_invariance_defect",
    "linear_optimum",
    "linear_risk_matrix",
    "mixup_optimum",
    "optimum_operator",
    "optimum_values",
    "periodic_operator",
    "within_sampling_error",
]
