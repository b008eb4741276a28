"""Argument checks shared by the public API: each names the parameter and its accepted range."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def check_integer(name: str, value: object, *, low: int = 0, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]``, else raise a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer in {_interval(low, high, True, True)}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {_interval(low, high, True, True)}, got {value!r}")
    return int(value)


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


def check_batch(x: torch.Tensor, y: torch.Tensor | None = None) -> int:
    """Validate a batch ``x`` of shape (B, ...) (and labels ``y`` of length B); return B."""
    if not isinstance(x, torch.Tensor) or x.ndim < 1:
        raise ValueError(f"x must be a tensor of shape (B, ...), got {type(x).__name__}")
    size = x.shape[0]
    if size == 0:
        raise ValueError("x must hold at least one sample (batch size B >= 1), got an empty batch")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite: it contains NaN or infinite values")
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != size:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y must have one entry per sample of x (length {size}), got {got}")
        if not y.is_floating_point() and y.ndim == 1 and bool((y < 0).any()):
            raise ValueError(f"y must hold class indices >= 0, got minimum {int(y.min())}")
    return size


def _interval(low: float | None, high: float | None, low_closed: bool, high_closed: bool) -> str:
    left = "(-inf" if low is None else ("[" if low_closed else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if high_closed else ")")
    return f"{left}, {right}"
