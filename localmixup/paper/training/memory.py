"""What a training step keeps in memory for its backward pass, measured device-independently."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class SavedTensorBytes:
    """Context manager: bytes of the distinct tensor storages that autograd saves for the backward
    pass while it is active (the activations a training step must keep in memory).

    Storages are counted once each (by address), at their full size; those of ``exclude``
    (typically the parameters, resident anyway) are left out. This is a device-independent
    measure of the step's activation memory, deterministic for a given configuration; it is not
    the process's peak memory (allocator caching, gradients, temporaries freed before the
    backward and the optimiser's buffers are not in it).
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.storages: dict[int, int] = {}

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without a storage: nothing resident to count
            return t
        if storage.data_ptr() not in self.exclude:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    def __enter__(self) -> "SavedTensorBytes":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
