"""Argument checks shared by the public API: each names the parameter and its accepted range."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

SEED_LIMIT = 2**64
"""Seeds are integers in [0, SEED_LIMIT): the seed derivation reads 64 bits, so larger seeds would alias smaller ones."""
INDEX_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
"""The dtypes of class indices (and of integer one-hot targets); bool labels are refused: convert them with ``.long()``."""


def check_integer(name: str, value: object, *, low: int = 0, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]``, else raise a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer in {_interval(low, high, True, True)}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {_interval(low, high, True, True)}, got {value!r}")
    return int(value)


def check_seed(name: str, value: object) -> int:
    """Return ``value`` as an int in [0, 2**64), else raise a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    return int(value)


def check_tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a tensor, else raise a ``TypeError`` naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__} (convert it with torch.as_tensor)")
    return value


def check_label_dtype(name: str, y: torch.Tensor, *, soft: bool) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``y`` holds class indices of :data:`INDEX_DTYPES`
    or, with ``soft``, soft targets (floating point, or integer one-hot rows). Reads no value."""
    if y.dtype in INDEX_DTYPES or (soft and y.is_floating_point()):
        return
    accepted = "soft targets (floating point) or integer one-hot rows" if soft else "integer class indices"
    hint = ": convert 0/1 labels with .long()" if y.dtype == torch.bool else ""
    raise ValueError(f"{name} must hold {accepted} of dtype int8, int16, int32, int64 or uint8"
                     f"{' (or floating point)' if soft else ''}, got {y.dtype}{hint}")


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float in the given interval, else raise a ``ValueError``."""
    interval = _interval(low, high, not low_open, not high_open)
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return str(value)


def check_batch(x: torch.Tensor, y: torch.Tensor | None = None, *, runs: int = 0) -> int:
    """Validate a batch ``x`` of shape (B, ...) and its targets ``y``; return B.

    ``y`` holds (B,) integer class indices >= 0 or (B, C) soft targets (see
    :func:`check_soft_targets`; integer one-hot rows count as soft targets). With ``runs=1``,
    x is a stack (R, B, ...) of R batches and y has a leading R too. Reads the values on the
    host (a GPU synchronises).
    """
    if check_tensor("x", x).ndim < runs + 1:
        raise ValueError(f"x must be a tensor of shape {'(R, B, ...)' if runs else '(B, ...)'}, got {tuple(x.shape)}")
    size = x.shape[runs]
    if size == 0 or x.numel() == 0:
        raise ValueError("x must hold at least one sample (batch size B >= 1), got an empty batch")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite: it contains NaN or infinite values")
    if y is not None:
        lead = tuple(x.shape[: runs + 1])
        if tuple(check_tensor("y", y).shape[: runs + 1]) != lead or y.ndim not in (runs + 1, runs + 2):
            got = tuple(y.shape)
            raise ValueError(f"y must have one entry per sample of x: class indices of shape {lead} or soft targets of "
                             f"shape {(*lead, 'C')}, got {got}")
        soft = y.ndim == runs + 2
        if not soft and y.is_floating_point():
            raise ValueError(f"y of shape {lead} must hold integer class indices, got dtype {y.dtype} "
                             "(soft targets have one row per sample)")
        check_label_dtype("y", y, soft=soft)
        if soft:
            check_soft_targets("y", y)
        elif bool((y < 0).any()):
            raise ValueError(f"y must hold class indices >= 0, got minimum {int(y.min())}")
    return size


def check_points(x: object, batched: bool) -> tuple[int, ...]:
    """The shape (B,) of a batch ``x`` of shape (B, ...) ((R, B) of a stack (R, B, ...) with ``batched``);
    a ``TypeError`` if x is not a tensor, a ``ValueError`` if it has too few dimensions."""
    if check_tensor("x", x).ndim < 1 + bool(batched):
        raise ValueError(f"batched=True needs x of shape (R, B, ...), got shape {tuple(x.shape)}" if batched else
                         "x must have shape (B, ...), got a scalar")
    return tuple(x.shape[: 1 + bool(batched)])


def check_soft_targets(name: str, target: torch.Tensor) -> None:
    """Raise ``ValueError`` unless every row (last dimension) of ``target`` is a probability
    vector: finite entries >= 0 summing to 1 (to 1e-3, or 4 ulps of a low-precision dtype).
    Reads the values on the host."""
    tolerance = max(1e-3, 4 * torch.finfo(target.dtype).eps) if target.is_floating_point() else 0.0
    values = target.float()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError(f"{name} must hold soft targets >= 0 (finite), got minimum {values.min().item()}")
    worst = (values.sum(dim=-1) - 1.0).abs().max().item() if values.numel() else 0.0
    if worst > tolerance:
        raise ValueError(f"{name} rows must sum to 1 (soft targets), got a row {worst:.3g} away from 1")


def _interval(low: float | None, high: float | None, low_closed: bool, high_closed: bool) -> str:
    left = "(-inf" if low is None else ("[" if low_closed else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if high_closed else ")")
    return f"{left}, {right}"


def check_partner(partner: object, shape: tuple[int, ...], validate: bool = True) -> torch.Tensor:
    """``partner``, an integer tensor of ``shape`` (..., B) of indices in [0, B) (the range is checked
    only with ``validate``, which reads the values on the host), as int64."""
    if not isinstance(partner, torch.Tensor) or partner.dtype not in (torch.int32, torch.int64) or tuple(partner.shape) != tuple(shape):
        got = f"{partner.dtype} {tuple(partner.shape)}" if isinstance(partner, torch.Tensor) else type(partner).__name__
        raise ValueError(f"partner must be an integer tensor of shape {tuple(shape)} (one index per sample), got {got}")
    if validate and bool(((partner < 0) | (partner >= shape[-1])).any()):
        raise ValueError(f"partner must hold indices in [0, {shape[-1] - 1}]")
    return partner.long()
