"""The Ray backend of :func:`localmixup.paper.sweep.images.run_sweep`: one Ray task per pending run.

Ray is an optional extra (``pip install 'localmixup[ray]'``), imported only here and only when
this backend is asked for.

Who writes the records
----------------------
The task *returns* its record to the driver (the process that called ``run_sweep``), and the
driver writes it with the same atomic :func:`~localmixup.paper.record_files.write_record` as the local
backend. Writing in the workers would also be atomic, but returning is better:

* **one writer**: a record is written once, by one process, after its task has finished; a
  worker killed mid-run (SIGKILL, OOM, lost node) has written nothing, and its retry is just
  another attempt whose result the driver receives once. No half record, no duplicate, and no
  race between a retried attempt and a zombie of the first one;
* **one file system**: the records land under the driver's ``results/`` (or
  ``$LOCALMIXUP_RESULTS``), whether or not the worker nodes share that folder;
* **same paths**: the record path comes from the same :func:`~.record_path` in the same
  process as with the local backend.

A record is a few kilobytes, so sending it back costs nothing. The price is that runs finished
by workers but not yet received when the *driver* dies are lost (they are still pending, so a
re-run trains them again), the same as the run in progress of a killed local sweep.

Failures
--------
* A run whose training raises is recorded as failed (``status="failed"``, ``error`` = the
  exception, ``traceback``), in the shape of the records of runs stopped by a NaN loss; the
  sweep goes on. Like every recorded run it is not re-run; delete its file to try again.
* A worker process that dies mid-run (killed, out of memory, node lost) is retried by Ray up to
  ``max_retries`` times; if every attempt dies, the run is recorded as failed with the cause.
* Problems of the worker's environment rather than of the run (a dataset missing on a node,
  ``localmixup`` not importable there) are *not* recorded, so they are retried by the next
  sweep once fixed: the sweep finishes the other runs, then raises one ``RuntimeError``.

Determinism and CPU threads
---------------------------
The seeds are set by the training function itself, so they are the same everywhere. On the
CPU, float results also depend on the number of intra-op threads: each task reserves
``cpus_per_run`` CPU slots of its node and trains with exactly that many torch threads
(``torch.set_num_threads``), so runs never oversubscribe a node. By default ``cpus_per_run`` is
1, the thread count the local backend trains with by default, so the same seeds give
bit-identical metrics with both backends (on the same kind of CPU); a local sweep run with
``threads=k`` matches ``cpus_per_run=k``. For GPU runs (``gpus_per_run``) the default is 1 CPU
per run too: the host threads do not change GPU numbers.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localmixup.paper.training.config import TrainConfig

INSTALL_HINT = "install the extra: pip install 'localmixup[ray]'"
CONNECT_TIMEOUT_S = 10.0
# Environment variables of the driver that change what a worker trains on (not RESULTS: only the driver writes).
FORWARDED_ENV = ("LOCALMIXUP_DATA", "LOCALMIXUP_ROOT", "LOCALMIXUP_NO_DOWNLOAD")
# What Ray raises when the process or node running a task died (after its retries).
_DEATHS = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError", "ObjectReconstructionFailedError",
           "OwnerDiedError", "LocalRayletDiedError")
# Ray's switch for one-machine instances (meant for macOS and Windows): "0" makes the node's IP
# address 127.0.0.1, and then every Ray server listens on 127.0.0.1 only.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray():
    """``import ray``, or a ``RuntimeError`` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(f"backend='ray' needs Ray, which is not installed ({error}); {INSTALL_HINT}") from None
    return ray


def parse_address(address: str | None) -> tuple[str, int] | None:
    """``(host, port)`` of ``"HOST:PORT"`` or ``"ray://HOST:PORT"``; None for None, ``"auto"`` and ``"local"``.

    Raises ``ValueError`` naming ``address`` for anything else.
    """
    if address is None or address in ("auto", "local"):
        return None
    text = address[len("ray://"):] if isinstance(address, str) and address.startswith("ray://") else address
    host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address must be 'auto', 'local', 'HOST:PORT' or 'ray://HOST:PORT' (the head node's Ray "
                         f"port, 6379 by default), got {address!r}")
    return host, int(port)


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast (``RuntimeError``, one line, within ``timeout`` seconds) if nothing listens at ``address``."""
    target = parse_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RuntimeError(f"cannot reach a Ray cluster at {address}: {reason} (start one with "
                           f"`ray start --head --port {target[1]}` on the head node, or check the address)") from None


def connect(address: str | None) -> bool:
    """Connect this process to Ray; return True if this call started the connection (so it must
    shut it down), False if an existing one (e.g. ``ray.init`` in a notebook) is reused.

    ``address``: ``"HOST:PORT"`` / ``"ray://HOST:PORT"`` of a running cluster's head node (checked
    with a TCP connection first, so a wrong address fails within seconds), ``"local"``: a new Ray
    instance on this machine alone, or ``"auto"`` / None: ``$RAY_ADDRESS``, else the cluster last
    started on this machine, else (None only) a new Ray instance on this machine alone.

    A new instance on this machine listens on 127.0.0.1 only, without dashboard, and Ray's
    token file is made readable by its owner only (see :func:`~.loopback_only`,
    :func:`~.protect_token`); a line on stderr says so where this Ray version does not allow it.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    check_reachable(address)
    import logging

    local = starts_local(address)
    protect_token(create=local)
    try:
        if local:
            with loopback_only():
                ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    except (ConnectionError, TimeoutError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RuntimeError(f"cannot connect to the Ray cluster at {address or 'auto'}: {first}") from None
    protect_token(create=False)  # what Ray itself may have written
    if local and ray.util.get_node_ip_address() not in ("127.0.0.1", "::1"):
        print(f"warning: Ray on this machine listens on every network interface at {ray.util.get_node_ip_address()} "
              f"(this Ray version ignores {LOOPBACK_ENV}=0): see the cluster page for how to protect it", file=sys.stderr)
    return True


def starts_local(address: str | None) -> bool:
    """Whether ``ray.init(address)`` starts a new Ray instance on this machine (rather than joining a
    cluster): ``"local"``, or None where neither ``$RAY_ADDRESS`` nor a cluster started on this
    machine gives an address (Ray's own lookup)."""
    if address is not None:
        return address == "local"
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None) is None
    except Exception:  # noqa: BLE001 - another Ray version, or a bad $RAY_ADDRESS that ray.init reports itself
        return os.environ.get("RAY_ADDRESS") in (None, "", "local")


@contextmanager
def loopback_only() -> Iterator[None]:
    """Within: a Ray instance started by this process takes 127.0.0.1 as its node's address, so its
    servers (GCS, raylet, object manager, workers, runtime-env agent) listen on 127.0.0.1 only.

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when it is imported: the variable is set for
    the processes it starts, and the value it read in this process (already imported) is switched
    for the duration. Both are restored on exit, so a later connection to a cluster is unaffected.
    """
    try:
        from ray._private import ray_constants
    except ImportError:  # another layout: the environment variable alone (the processes Ray starts)
        ray_constants = None
    before_env = os.environ.get(LOOPBACK_ENV)
    before = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[LOOPBACK_ENV] = "0"
    if before is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before is not None:
            ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(LOOPBACK_ENV, None)
        else:
            os.environ[LOOPBACK_ENV] = before_env


def token_path() -> Path:
    """Where Ray reads its authentication token: ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def protect_token(create: bool) -> Path | None:
    """Keep Ray's token file (:func:`~.token_path`) readable by its owner only; return its path.

    Ray's token authentication (Ray 2.60) writes it with the process's umask, usually readable by
    every user of the machine: with ``create`` (a new instance about to start), a missing token is
    created here first, mode 0600, in Ray's format (64 hex digits), so Ray uses it rather than
    writing its own; an existing one of ours open to others is restricted to 0600 (said on stderr). Nothing is done when
    the token comes from ``$RAY_AUTH_TOKEN``, when ``RAY_AUTH_MODE`` is not ``token``, or for a
    Ray without token authentication.
    """
    import importlib.util

    if os.environ.get("RAY_AUTH_TOKEN") or importlib.util.find_spec("ray._private.authentication") is None:
        return None
    path = token_path()
    if create and not path.exists() and os.environ.get("RAY_AUTH_MODE", "token").lower() == "token":
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    elif path.is_file() and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
        print(f"made Ray's token {path} readable by you only (it was readable by other users)", file=sys.stderr)
    return path if path.is_file() else None


def resolve_cpus(cpus_per_run: int | None) -> int:
    """CPU slots (= torch threads) per run: ``cpus_per_run``, else 1 (the local backend's default
    thread count, so that CPU runs give the same numbers on both backends; GPU runs too)."""
    return 1 if cpus_per_run is None else cpus_per_run


def check_resources(gpus_per_run: float | None, cpus_per_run: int) -> None:
    """Refuse (``RuntimeError``) a sweep that no node of the cluster could ever schedule."""
    ray = import_ray()
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= cpus_per_run for r in nodes):
        most = max((r.get("CPU", 0) for r in nodes), default=0)
        raise RuntimeError(f"each run needs {cpus_per_run} CPU slot(s) (= its torch threads; by default this process's "
                           f"thread count, as the local backend) but the largest node of the Ray cluster has {most:g}: "
                           f"pass cpus_per_run (--cpus-per-run), or set OMP_NUM_THREADS")
    if gpus_per_run and not any(r.get("GPU", 0) >= gpus_per_run for r in nodes):
        most = max((r.get("GPU", 0) for r in nodes), default=0)
        raise RuntimeError(f"gpus_per_run={gpus_per_run:g} but the largest node of the Ray cluster has {most:g} GPU(s)")


def failed_record(config: TrainConfig, error: str, trace: str | None = None, seconds: float = 0.0,
                  device: str | None = None) -> dict[str, Any]:
    """The record of a run that did not finish: the keys of :func:`~localmixup.paper.training.fit.train_run`'s
    records (``status="failed"``, no epochs, no final error) plus ``error`` (one line) and
    ``traceback`` (text or None)."""
    from localmixup.paper.provenance import environment

    try:
        env = environment(device)
    except Exception:  # a broken device must not hide the run's own error
        env = environment("cpu")
    return {"config": config.to_dict(), "status": "failed", "failed_epoch": None, "epochs": [],
            "final_test_error_pct": None, "parameters": None, "fast_path": None, "train_seconds": seconds,
            "environment": env, "error": error, "traceback": trace}


def train_task(config: TrainConfig, device: str | None, fast: bool | None, threads: int,
               env: dict[str, str]) -> dict[str, Any]:
    """The body of one Ray task: train ``config`` and return ``{"record": ...}`` (a finished or
    failed record) or ``{"unavailable": message}`` when the worker's environment cannot train at all."""
    import torch

    from localmixup.paper.data import DatasetUnavailable
    from localmixup.paper.training.fit import train_run

    os.environ.update(env)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        return {"record": train_run(config, device, fast=fast, progress=False).to_dict()}
    except DatasetUnavailable as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}
    except Exception as error:
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return {"record": failed_record(config, message, traceback.format_exc(), time.perf_counter() - start, device)}


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def run_ray(todo: Sequence[TrainConfig], *, address: str | None = None, gpus_per_run: float | None = None,
            cpus_per_run: int | None = None, device: str | None = None, fast: bool | None = None,
            progress: bool = True, max_retries: int = 2, connected: bool | None = None) -> None:
    """Train ``todo`` as Ray tasks; write each record on this process as its task finishes.

    Args:
        todo: the pending runs (see :func:`localmixup.paper.sweep.plan.pending`).
        address: see :func:`~.connect`.
        gpus_per_run: GPUs reserved per run (a fraction lets runs share a GPU); None or 0: CPU only.
        cpus_per_run: CPU slots reserved per run, and its torch threads (default: see
            :func:`~.resolve_cpus`).
        device: torch device in the worker (default: CUDA if Ray gave the task a GPU, else CPU).
        fast: CUDA-graph step (default on CUDA).
        progress: a tqdm bar over runs, updated as they finish.
        max_retries: attempts after a worker death before the run is recorded as failed.
        connected: True/False if the caller already called :func:`~.connect` (and :func:`~.check_resources`)
            and owns / does not own the connection; None: connect here.

    Raises:
        RuntimeError: unreachable cluster, or runs that could not start (their records are not
            written, so a later sweep retries them).
    """
    from tqdm.auto import tqdm

    from localmixup.paper.record_files import write_record
    from localmixup.paper.sweep.plan import record_path

    ray = import_ray()
    deaths = tuple(getattr(ray.exceptions, name) for name in _DEATHS if hasattr(ray.exceptions, name))
    cpus = resolve_cpus(cpus_per_run)
    owner = connect(address) if connected is None else connected
    refs: dict[Any, TrainConfig] = {}
    waiting: list[Any] = []
    try:
        if connected is None:
            check_resources(gpus_per_run, cpus)
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        task = ray.remote(train_task).options(num_cpus=cpus, num_gpus=gpus_per_run or 0, max_retries=max_retries,
                                              retry_exceptions=False)
        refs = {task.remote(c, device, fast, cpus, env): c for c in todo}
        bar = tqdm(total=len(refs), desc="runs (ray)", unit="run", disable=not progress)
        unavailable: list[str] = []
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                config = refs[ref]
                name = f"{config.dataset} {config.method} seed {config.seed}"
                try:
                    result = ray.get(ref)
                except Exception as error:  # noqa: BLE001 - sorted by kind below
                    if isinstance(error, deaths):  # every attempt's process died: record the run as failed
                        result = {"record": failed_record(config, f"the worker process died ({max_retries} retries "
                                                                  f"allowed): {_one_line(error)}", device="cpu")}
                    else:  # the task failed outside the training (e.g. localmixup not importable there)
                        result = {"unavailable": _one_line(error)}
                if "record" in result:
                    write_record(record_path(config), result["record"])
                    if result["record"]["status"] != "ok":
                        tqdm.write(f"run failed: {name}: {result['record'].get('error') or 'non-finite loss'}", file=sys.stderr)
                else:
                    unavailable.append(f"{name}: {result['unavailable']}")
                bar.set_postfix_str(name)
                bar.update()
        bar.close()
        if unavailable:
            raise RuntimeError(f"{len(unavailable)} run(s) could not start on the cluster and were not recorded "
                               f"(a new sweep retries them); first: {unavailable[0]}")
    finally:
        if owner:
            ray.shutdown()
        else:  # interrupted on a connection we do not own: do not leave our runs behind
            for ref in waiting:
                ray.cancel(ref, force=True)
