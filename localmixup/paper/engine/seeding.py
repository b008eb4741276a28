"""One seeding scheme for every trainer: independent random streams derived from one seed.

A run's seed gives one :class:`torch.Generator` per purpose (``init``: weight initialisation;
``order``: data order and augmentation; ``mix``: the mixing draws), each seeded from
``numpy.random.SeedSequence([seed, stream])``. The streams are independent of each other and
of the streams of every other seed, and nothing here reads or reseeds torch's global generator:
training a run leaves the caller's random state as it was.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np
import torch

from localmixup.validation import check_integer

#: The streams of a run, in the order of their index in the SeedSequence.
STREAMS = ("init", "order", "mix")


def stream_seed(seed: int, stream: str) -> int:
    """The 63-bit seed of stream ``stream`` (one of :data:`STREAMS`) of the run with this ``seed`` (integer >= 0)."""
    seed = check_integer("seed", seed, low=0)
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(map(repr, STREAMS))}, got {stream!r}")
    state = np.random.SeedSequence([seed, STREAMS.index(stream)]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def run_generators(seed: int, devices: dict[str, torch.device | str] | None = None) -> dict[str, torch.Generator]:
    """One generator per stream of :data:`STREAMS` for the run with this ``seed``.

    ``devices`` places some of them (e.g. ``{"order": "cuda"}``: the data order drawn where the data
    are); the others are on the CPU. A CUDA generator seeded alike draws other numbers than a CPU one.
    """
    devices = devices or {}
    return {name: torch.Generator(device=devices.get(name, "cpu")).manual_seed(stream_seed(seed, name))
            for name in STREAMS}


@contextmanager
def seeded_global(generator: torch.Generator) -> Iterator[None]:
    """Within the block, torch's global CPU generator draws from ``generator``'s state (for code such as
    ``nn.Module`` initialisation that offers no generator argument); the global state is restored after,
    and ``generator`` is advanced as if it had made the draws."""
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(generator.get_state())
        yield
        generator.set_state(torch.get_rng_state())
