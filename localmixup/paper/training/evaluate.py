"""Test error of a trained model, or of every run of a stack, in percent."""

from __future__ import annotations

from typing import Any

import torch

from localmixup.paper.data import DeviceLoader
from localmixup.paper.training.step import device_autocast


@torch.no_grad()
def test_error(model: Any, loader: DeviceLoader, **call: Any) -> float | list[float]:
    """Test error in percent (in [0, 100]) of ``model`` over ``loader`` (put back in training mode
    afterwards); ``call`` is passed to the model: a :class:`~.StackedModels` called with
    ``shared=True`` gives one error per run (a list of R floats)."""
    model.train(False)
    wrong = torch.zeros((), dtype=torch.int64, device=loader.device)
    for x, y in loader:
        with device_autocast(loader.device):
            wrong = wrong + (model(x, **call).argmax(-1) != y).sum(-1)
    model.train(True)
    errors = 100.0 * wrong.double() / loader.x.shape[0]
    return errors.item() if errors.ndim == 0 else errors.tolist()
