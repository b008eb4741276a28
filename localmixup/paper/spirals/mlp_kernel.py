"""The compiled CPU kernel of the spirals trainer (``mlp_kernel.c``): build, load, call.

The kernel trains R independent MLPs for one epoch, one run after the other, so that a run's
parameters and Adam state stay in the core's cache. It is compiled on first use with the
system's C compiler (``$CC``, else ``cc``) for this machine (``-march=native``) and cached
under ``$LOCALMIXUP_CACHE`` (default ``~/.cache/localmixup``), keyed by the source, the
compiler's flags and the CPU. Where no compiler works, :func:`load` returns None and says
why once (a ``RuntimeWarning``); the trainer then runs its torch path, which computes the same
updates, more slowly.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("mlp_kernel.c")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=gnu11", "-shared", "-fPIC")
PAD = 8
"""Every layer width is padded to a multiple of this (one AVX vector of float32)."""
MAX_CLASSES = 64
MAX_LAYERS = 64


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$LOCALMIXUP_CACHE`` or ``~/.cache/localmixup``."""
    return Path(os.environ.get("LOCALMIXUP_CACHE", Path.home() / ".cache" / "localmixup"))


def _cpu_identity() -> str:
    # -march=native code must not run on another CPU (a cache shared over NFS, a copied home).
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = []
    return platform.machine() + platform.processor() + "".join(lines)


@cache
def load(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The kernel for ``dtype`` (torch.float32 or torch.float64), compiled if needed; None if it cannot be built."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler or not SOURCE.is_file():
        why = "no C compiler found (set CC)" if not compiler else f"{SOURCE} is missing from this installation"
        warnings.warn(f"{why}: the spirals trainer uses its slower torch path", RuntimeWarning, stacklevel=2)
        return None
    flags = [*FLAGS, *(["-DREAL_DOUBLE"] if dtype == torch.float64 else [])]
    key = hashlib.sha256("\0".join([SOURCE.read_text(), compiler, *flags, _cpu_identity()]).encode()).hexdigest()[:16]
    path = cache_dir() / f"mlp_kernel-{key}.so"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".so")
        os.close(fd)
        try:
            subprocess.run([compiler, *flags, "-o", tmp, str(SOURCE), "-lm"], check=True, capture_output=True, text=True)
            os.replace(tmp, path)  # atomic: concurrent processes may compile at once
        except (OSError, subprocess.CalledProcessError) as error:
            Path(tmp).unlink(missing_ok=True)
            detail = getattr(error, "stderr", "") or str(error)
            warnings.warn(f"could not compile {SOURCE.name} ({detail.strip()[:300]}): the spirals trainer uses its slower torch path",
                          RuntimeWarning, stacklevel=2)
            return None
    lib = ctypes.CDLL(str(path))
    lib.mlp_epoch.restype = lib.mlp_predict.restype = ctypes.c_int
    return lib


def padded(width: int) -> int:
    """``width`` rounded up to a multiple of :data:`PAD`."""
    return -(-width // PAD) * PAD


def layout(sizes: Sequence[int]) -> tuple[list[int], list[int]]:
    """Input and padded output width of each layer of the MLPs of widths ``sizes`` (input to output)."""
    fan_out = [padded(w) for w in sizes[1:]]
    return [sizes[0], *fan_out[:-1]], fan_out


def pack(layers: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The kernel's parameters (R, P) of R MLPs given layer by layer as (weight (R, out, in), bias (R, out)).

    Run r's row holds, layer after layer, the weight transposed (input rows, output columns) then
    the bias, every output width padded with zeros to a multiple of :data:`PAD`: padded units have
    zero weights, activation and gradient, so training never moves them.
    """
    sizes = [layers[0][0].shape[2], *(w.shape[1] for w, _ in layers)]
    parts = []
    for (weight, bias), k, n in zip(layers, *layout(sizes)):
        runs, out, inputs = weight.shape
        w = weight.new_zeros(runs, k, n)
        w[:, :inputs, :out] = weight.transpose(1, 2)
        b = bias.new_zeros(runs, n)
        b[:, :out] = bias
        parts += [w.flatten(1), b]
    return torch.cat(parts, dim=1).contiguous()


def unpack(params: torch.Tensor, sizes: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The layers (weight (R, out, in), bias (R, out)) of :func:`pack`'s parameters, unpadded copies."""
    layers, first = [], 0
    for k, n, inputs, out in zip(*layout(sizes), sizes[:-1], sizes[1:]):
        w = params[:, first : first + k * n].view(-1, k, n)
        b = params[:, first + k * n : first + k * n + n]
        layers.append((w[:, :inputs, :out].transpose(1, 2).clone(), b[:, :out].clone()))
        first += k * n + n
    return layers


def _split(runs: int, threads: int, call) -> None:
    """``call(first, last)`` on ``threads`` contiguous groups of ``range(runs)``, in parallel
    (ctypes releases the GIL during the call); raises if a call reports missing memory."""
    groups = min(threads, runs)
    bounds = [runs * g // groups for g in range(groups + 1)]
    if groups == 1:
        codes = [call(0, runs)]
    else:
        with ThreadPoolExecutor(groups) as pool:
            codes = list(pool.map(call, bounds[:-1], bounds[1:]))
    if any(codes):
        raise MemoryError("the spirals kernel could not allocate its scratch memory")


def _pointer(t: torch.Tensor, first: int = 0) -> ctypes.c_void_p:
    """Address of row ``first`` of the contiguous tensor ``t``."""
    return ctypes.c_void_p(t.data_ptr() + first * t.stride(0) * t.element_size())


def _check(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> None:
    if any(not t.is_contiguous() or t.dtype != dtype or t.device.type != "cpu" for t in tensors):
        raise ValueError("the kernel needs contiguous CPU tensors of the parameters' dtype")


def _widths(fan_in: Sequence[int], fan_out: Sequence[int], classes: int) -> tuple[ctypes.Array, ctypes.Array]:
    if not 1 <= classes <= MAX_CLASSES or len(fan_in) > MAX_LAYERS:
        raise ValueError(f"the kernel handles 1..{MAX_CLASSES} classes and at most {MAX_LAYERS} layers")
    return (ctypes.c_int * len(fan_in))(*fan_in), (ctypes.c_int * len(fan_out))(*fan_out)


def epoch(
    lib: ctypes.CDLL,
    params: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    fan_in: Sequence[int],
    fan_out: Sequence[int],
    classes: int,
    x: torch.Tensor,
    targets: torch.Tensor,
    coefficients: torch.Tensor,
    *,
    batch_size: int,
    softmax_output: bool,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    step: int,
    threads: int = 1,
) -> torch.Tensor:
    """One epoch of Adam for each run, in place on ``params``, ``exp_avg``, ``exp_avg_sq`` (R, P).

    Args:
        lib: :func:`load`'s kernel for the dtype of every tensor given.
        fan_in, fan_out: input and padded output width of each layer (the layout of ``params``).
        classes: the first ``classes`` outputs are the logits (1..64).
        x: (R, n, fan_in[0]) inputs in training order; the batches are consecutive slices of
            ``batch_size`` rows, the last one possibly smaller.
        targets: (R, n, classes) soft targets; coefficients: (R, n): the batch loss is
            ``sum_i c_i CE(o_i, t_i)`` with o the logits, or their softmax if ``softmax_output``.
        lr, betas, eps: Adam's (as ``torch.optim.Adam``, no weight decay); step: steps done before.
        threads: runs are split into this many groups trained in parallel.

    Returns:
        float64 (R,): each run's mean over the epoch's steps of its batch loss, each taken
        before the step's update (what an autograd loop would average).
    """
    runs, n = x.shape[:2]
    _check((params, exp_avg, exp_avg_sq, x, targets, coefficients), params.dtype)
    k, widths = _widths(fan_in, fan_out, classes)
    loss = torch.empty(runs, dtype=torch.float64)

    def call(first: int, last: int) -> int:
        return lib.mlp_epoch(
            ctypes.c_int(last - first), ctypes.c_int(len(fan_in)), k, widths, ctypes.c_int(classes),
            _pointer(params, first), _pointer(exp_avg, first), _pointer(exp_avg_sq, first), ctypes.c_ssize_t(params.shape[1]),
            _pointer(x, first), _pointer(targets, first), _pointer(coefficients, first), ctypes.c_int(n),
            ctypes.c_int(batch_size), ctypes.c_int(int(softmax_output)),
            ctypes.c_double(lr), ctypes.c_double(betas[0]), ctypes.c_double(betas[1]), ctypes.c_double(eps), ctypes.c_long(step),
            _pointer(loss, first),
        )  # fmt: skip

    _split(runs, threads, call)
    return loss / -(-n // batch_size)


def predict(lib: ctypes.CDLL, params: torch.Tensor, fan_in: Sequence[int], fan_out: Sequence[int], classes: int,
            x: torch.Tensor, *, threads: int = 1) -> torch.Tensor:
    """Predicted class (first maximum of the logits) of each row of x (n, fan_in[0]) by each run: int64 (R, n)."""
    x = x.contiguous()
    _check((params, x), params.dtype)
    k, widths = _widths(fan_in, fan_out, classes)
    labels = torch.empty(params.shape[0], x.shape[0], dtype=torch.int64)

    def call(first: int, last: int) -> int:
        return lib.mlp_predict(
            ctypes.c_int(last - first), ctypes.c_int(len(fan_in)), k, widths, ctypes.c_int(classes),
            _pointer(params, first), ctypes.c_ssize_t(params.shape[1]), _pointer(x), ctypes.c_int(x.shape[0]), _pointer(labels, first),
        )  # fmt: skip

    _split(params.shape[0], threads, call)
    return labels
