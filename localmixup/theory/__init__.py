"""The paper's one-dimensional theory (Sections 3 and 4.2), computed exactly (numpy and scipy)."""

from localmixup.extras import require

require("theory", "localmixup.theory")

from localmixup.theory.one_d import (
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
    within_sampling_error,
)

__all__ = [
    "PiecewiseLinear",
    "band_coefficients",
    "band_weights",
    "beta_density",
    "bias_variance",
    "bin_means",
    "brute_force_optimum",
    "lemma31_function",
    "lemma31_operator",
    "linear_invariance_defect",
    "linear_optimum",
    "linear_risk_matrix",
    "mixup_optimum",
    "optimum_operator",
    "optimum_values",
    "periodic_operator",
    "within_sampling_error",
]
