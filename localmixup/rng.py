"""Random numbers of the method: counter-based streams, one per run, and Beta draws from uniforms.

Every draw of :class:`~localmixup.mixing.LocalMixup` comes from a *random source*:

* ``None``: torch's global RNG;
* a ``torch.Generator``: one stream, reproducible, eager only (``torch.compile`` cannot trace
  a generator argument);
* a :class:`Streams`: R independent counter-based streams, one per seed. The numbers of call
  ``c`` of stream ``r`` are a hash of (seed r, c, position): they depend on run r's seed and on
  how many calls came before, never on how many other runs are drawn with it, so R runs drawn
  at once give each run exactly what it would get alone. A draw is pure tensor arithmetic on the
  streams' device (no host round trip, any device, traceable by ``torch.compile(fullgraph=True)``).

Seeds are derived with :func:`derive_seed` (SplitMix64 steps, exact integer arithmetic), so
streams for a run, a purpose, a DDP rank or a DataLoader worker are all independent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral

import torch

from localmixup.checks import check_seed

_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
_GOLDEN32 = 0x9E3779B9
_GAMMA_TRIES = 8  # candidates per Gamma draw: all rejected with probability < 0.05 ** 8 ~ 4e-11


def derive_seed(seed: int, *path: int) -> int:
    """A 63-bit seed derived from ``seed`` and the integers of ``path`` (each in [0, 2**64), as ``seed``:
    the derivation reads 64 bits, so larger integers would alias smaller ones).

    ``derive_seed(s, a) != derive_seed(s, b)`` for a != b with overwhelming probability, and
    derived seeds look unrelated to one another (SplitMix64 finaliser after each step), so
    ``derive_seed(seed, rank, worker)`` gives every process of a job its own stream.
    """
    # the seed is hashed alone first: adding a path entry to the raw seed would make
    # derive_seed(s, a) equal derive_seed(s + 1, a - 1)
    state = _splitmix64(check_seed("seed", seed))
    for part in path:
        state = _splitmix64((state + check_seed("path entry", part) + 0x9E3779B97F4A7C15) & _MASK64)
    return _splitmix64(state) >> 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    # (x * c) mod 2**32 for x in [0, 2**32) without overflowing int64: with c = 2**31 + c',
    # x * 2**31 mod 2**32 is (x & 1) << 31, and x * c' < 2**63 - 2**32.
    if c < 2**31:
        return (x * c) & _MASK32
    return (x * (c - 2**31) + ((x & 1) << 31)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # "lowbias32" (C. Wellons' hash prospector): a bijection of [0, 2**32) with strong avalanche.
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class Streams:
    """R independent counter-based random streams, one per seed.

    Args:
        seeds: an integer in [0, 2**64) (one stream; draws have no run dimension) or a sequence / 1-D
            integer tensor of R such seeds (draws have a leading run dimension R).
        stream: an integer or a sequence of integers (each in [0, 2**64)) that select one of many independent families of streams of the
            same seeds (e.g. 0 for mixing, 1 for data order), see :func:`derive_seed`.
        device: where the numbers are made (default CPU).

    Each call of :meth:`uniform` or :meth:`permutation` consumes one value of the shared call
    counter; run r's numbers depend on ``seeds[r]``, ``stream`` and the counter only.
    :meth:`get_state` / :meth:`set_state` save and restore the counter (as for a
    ``torch.Generator``).
    """

    def __init__(self, seeds: int | Sequence[int] | torch.Tensor, *, stream: int | Sequence[int] = 0,
                 device: torch.device | str | None = None) -> None:
        if isinstance(seeds, torch.Tensor):
            if seeds.is_floating_point() or seeds.ndim > 1:
                raise ValueError(f"seeds must be an integer or a 1-D integer tensor, got {seeds.dtype} of shape {tuple(seeds.shape)}")
            seeds = seeds.tolist()
        single = isinstance(seeds, Integral)
        values = [seeds] if single else _integers("seeds", seeds)
        if not values:
            raise ValueError("seeds must hold at least one seed (integers in [0, 2**64))")
        path = (stream,) if isinstance(stream, Integral) else _integers("stream", stream)
        keys = [derive_seed(check_seed("seed", s), *path) for s in values]
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        key = torch.tensor([[k & _MASK32, (k >> 32) & _MASK32] for k in keys], dtype=torch.int64, device=self.device)
        self._k0, self._k1 = (key[0, 0], key[0, 1]) if single else (key[:, 0], key[:, 1])
        self.counter = torch.zeros((), dtype=torch.int64, device=self.device)

    @property
    def shape(self) -> tuple[int, ...]:
        """() for one stream, (R,) for R streams: the leading shape of every draw."""
        return tuple(self._k0.shape)

    def __repr__(self) -> str:
        return f"Streams(runs={self.shape[0] if self.shape else None}, device={self.device})"

    def words(self, n: int) -> torch.Tensor:
        """``n`` random 32-bit words per stream, int64 (*shape, n) in [0, 2**32); one counter step."""
        c = self.counter.clone()
        self.counter.add_(1)  # in place: a compiled step sees a tensor, not a new constant each call
        call = _mix32(self._k1 ^ _mix32((c >> 32) ^ _mix32(c & _MASK32)))
        s0, s1 = _mix32(self._k0 ^ call), _mix32((self._k1 + call) & _MASK32)
        position = _mul32(torch.arange(n, dtype=torch.int64, device=self.device), _GOLDEN32)
        return _mix32(_mix32((position + s0[..., None]) & _MASK32) ^ s1[..., None])

    def uniform(self, n: int) -> torch.Tensor:
        """``n`` float64 uniforms per stream in the open interval (0, 1), shape ``(*shape, n)``."""
        return (self.words(n).double() + 0.5) * 2.0**-32

    def permutation(self, n: int) -> torch.Tensor:
        """A uniform random permutation of range(n) per stream, int64 ``(*shape, n)``.

        The order of 63-bit random keys (two words each; ties, with probability below
        n**2 / 2**64, keep index order).
        """
        w = self.words(2 * n).unflatten(-1, (n, 2))
        return ((w[..., 0] << 31) | (w[..., 1] >> 1)).argsort(dim=-1, stable=True)

    def get_state(self) -> torch.Tensor:
        """The counter, as a CPU int64 tensor of one element (see :meth:`set_state`)."""
        return self.counter.detach().cpu().reshape(1).clone()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a counter saved by :meth:`get_state`."""
        if not isinstance(state, torch.Tensor) or state.numel() != 1 or state.is_floating_point():
            raise ValueError(f"state must be what Streams.get_state returned (one int64 counter), got {state!r}")
        self.counter.fill_(int(state.reshape(()).item()))


def _integers(name: str, values: object) -> list:
    """``values`` as a list if it is a sequence (or other iterable, not a string), else a ``TypeError`` naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be an integer or a sequence of integers in [0, 2**64), got {type(values).__name__}")
    return list(values)


Source = torch.Generator | Streams | None


def check_source(name: str, source: object) -> Source:
    """``source`` if it is None, a ``torch.Generator`` or :class:`Streams`, else a ``ValueError``."""
    if source is not None and not isinstance(source, (torch.Generator, Streams)):
        raise ValueError(f"{name} must be a torch.Generator, a localmixup.Streams or None, got {type(source).__name__}")
    return source


def source_shape(source: Source) -> tuple[int, ...]:
    """Leading (run) shape of the draws of ``source``: (R,) for R streams, else ()."""
    return source.shape if isinstance(source, Streams) else ()


def uniform(source: Source, n: int) -> torch.Tensor:
    """``n`` float64 uniforms in (0, 1] (in (0, 1) for :class:`Streams`) per stream, on the source's device."""
    if isinstance(source, Streams):
        return source.uniform(n)
    device = source.device if source is not None else torch.device("cpu")
    return 1.0 - torch.rand(n, generator=source, device=device, dtype=torch.float64)  # (0, 1]: logs stay finite


def permutation(source: Source, n: int) -> torch.Tensor:
    """A uniform random permutation of range(n) per stream (int64), on the source's device."""
    if isinstance(source, Streams):
        return source.permutation(n)
    device = source.device if source is not None else torch.device("cpu")
    return torch.randperm(n, generator=source, device=device)


def beta_uniforms(alpha: float) -> int:
    """How many uniforms :func:`beta_from_uniforms` reads per draw of Beta(alpha, alpha)."""
    return 1 if alpha == 1.0 else 2 * (3 * _GAMMA_TRIES + 1)


def beta_from_uniforms(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """Draws of Beta(alpha, alpha) from uniforms ``u`` of shape (..., :func:`beta_uniforms`) in (0, 1].

    Beta(1, 1) is the uniform law: lam = u. Otherwise ``lam = G1 / (G1 + G2)`` for two Gamma(alpha) variates, each by Marsaglia and Tsang's
    method (2000) with a fixed number of candidates (normal by Box-Muller, then the acceptance
    test; the first accepted candidate is kept; shape alpha + 1 then a ``U**(1/alpha)`` boost
    when alpha < 1), computed in float64 on the log scale so that tiny alphas give lam in
    {0, 1} rather than NaN. If every candidate of a draw is rejected (probability below
    5e-11 per Gamma variate) the Gamma's mode is used. No host synchronisation, fixed shapes:
    compiles with ``torch.compile(fullgraph=True)``.

    Returns float64 (...) in [0, 1].
    """
    if alpha == 1.0:
        return u.double().squeeze(-1)
    shape = alpha if alpha >= 1.0 else alpha + 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    u = u.double().unflatten(-1, (2, 3 * _GAMMA_TRIES + 1))
    u1, u2, u3 = u[..., : 3 * _GAMMA_TRIES].unflatten(-1, (_GAMMA_TRIES, 3)).unbind(-1)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    v = (1.0 + c * z) ** 3
    log_v = torch.log(v.clamp_min(1e-300))
    accepted = (v > 0) & (torch.log(u3) < 0.5 * z * z + d - d * v + d * log_v)
    first = accepted.int().argmax(dim=-1, keepdim=True)  # first accepted candidate (0 if none)
    log_gamma = math.log(d) + torch.where(accepted.any(dim=-1), log_v.gather(-1, first).squeeze(-1), 0.0)
    if alpha < 1.0:
        log_gamma = log_gamma + torch.log(u[..., -1]) / alpha
    return torch.sigmoid(log_gamma[..., 0] - log_gamma[..., 1])
