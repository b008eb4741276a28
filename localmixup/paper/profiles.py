"""Execution profiles of the notebooks: ``quick`` (CPU, minutes), ``cpu`` (Fashion-MNIST with LeNet-5, hours on a
CPU) and ``paper`` (GPU, the paper's protocol)."""

from __future__ import annotations

import torch

from localmixup.paper.provenance import default_device, environment
from localmixup.validation import check_choice

PROFILES = ("quick", "cpu", "paper")


def check_profile(profile: str, *, allow_cpu: bool = False) -> torch.device:
    """Validate ``profile`` and return the device to run it on.

    The paper profile on a CPU would take days: it is refused unless ``allow_cpu``.
    """
    check_choice("profile", profile, PROFILES)
    device = default_device()
    if profile == "paper" and device.type == "cpu" and not allow_cpu:
        raise RuntimeError(
            "profile='paper' follows the paper's protocol and needs a GPU; none is visible. "
            "Use profile='quick', or pass allow_cpu=True to run it on the CPU anyway."
        )
    return device


def chapter_header(profile: str, **parameters: object) -> None:
    """Display, at the top of a chapter, how it was executed: profile, parameters, device, date, commit."""
    from IPython.display import Markdown, display

    env = environment()
    shown = ", ".join(f"`{k}={v!r}`" for k, v in parameters.items())
    lines = [
        f"**Executed** with profile `{profile}`" + (f" ({shown})" if shown else "") + f" on {env['device']},",
        f"{env['date']}, commit `{env['commit']}`, torch {env['torch']}.",
    ]
    display(Markdown(" ".join(lines)))
