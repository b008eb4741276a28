"""Host-to-device copies that do not stall the GPU's queue."""

from __future__ import annotations

import torch


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device``; a CPU tensor bound for a GPU goes through pinned memory, asynchronously.

    A plain ``t.to("cuda")`` from pageable memory waits until the GPU has finished all the work
    queued before it, so a training loop that draws its random pairs on the CPU would wait for
    every step to finish before launching the next. From pinned memory the copy is queued like a
    kernel (torch's pinned-memory cache keeps the buffer alive until the copy has run).
    """
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
