"""One seeding scheme for every trainer: independent random streams derived from one seed.

A run's seed gives one random source per purpose, each from its own derived seed
:func:`localmixup.rng.derive_seed` ``(seed, *stream_path(stream))`` (the derivation the core uses
for its counter-based :class:`~localmixup.rng.Streams`): ``mix`` (the mixing draws: a
:class:`~localmixup.rng.Streams`, whose draws for one run do not depend on the other runs drawn
with it), ``order`` (data order and augmentation) and ``init`` (weight initialisation). The
streams are independent of each other and of those of every other seed, and nothing here reads
or reseeds torch's global generator: training a run leaves the caller's random state as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from localmixup.rng import Streams, derive_seed

#: The streams of a run and their index in the derivation.
STREAMS = {"mix": 0, "order": 1, "init": 2}


def stream_path(stream: str) -> tuple[int, int]:
    """The derivation path of stream ``stream`` (a key of :data:`STREAMS`): ``(0, index)``.

    The path every record of the project was drawn with: changing it changes every run's numbers.
    """
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(map(repr, STREAMS))}, got {stream!r}")
    return 0, STREAMS[stream]


def stream_seed(seed: int, stream: str) -> int:
    """The 63-bit seed of stream ``stream`` (a key of :data:`STREAMS`) of the run with this ``seed`` (integer >= 0)."""
    return derive_seed(seed, *stream_path(stream))


def generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`stream_seed` (a CUDA generator seeded alike
    draws other numbers than a CPU one)."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream))


def run_streams(seeds: int | Sequence[int], stream: str, device: torch.device | str | None = None) -> Streams:
    """Counter-based streams ``stream`` (a key of :data:`STREAMS`) of the run(s) ``seeds``: one per
    seed, run r's draws depending on its seed only (:class:`~localmixup.rng.Streams`)."""
    return Streams(seeds, stream=stream_path(stream), device=device)


@contextmanager
def seeded_global(source: torch.Generator) -> Iterator[None]:
    """Within the block, torch's global CPU generator draws from ``source``'s state (for code such as
    ``nn.Module`` initialisation that offers no generator argument); the global state is restored
    after, and ``source`` is advanced as if it had made the draws."""
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(source.get_state())
        yield
        source.set_state(torch.get_rng_state())
