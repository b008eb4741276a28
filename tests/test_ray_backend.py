"""The Ray backend of the sweep on a real local Ray cluster (head + one worker node on this
machine, one CPU slot each): same records as the local backend, worker deaths, bad input.

The cluster is started by this file with its own ``--temp-dir`` and stopped by killing exactly
the processes it started (found through that temp dir and their descendants), never with
``ray stop``, which would stop every Ray process of the user on the machine.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import pytest

pytest.importorskip("ray", reason="Ray is not installed (optional extra: pip install 'localmixup[ray]')")

from localmixup.paper.record_files import read_record  # noqa: E402
from localmixup.paper.sweep.images import check_backend, run_sweep  # noqa: E402
from localmixup.paper.sweep.plan import make_configs, record_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
TINY = dict(epochs=2, train_size=128, test_size=64, batch_size=32)
TASK_TITLE = b"ray::train_task"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (ppid, cmdline)
    return table


def _cluster_processes(temp_dir: str) -> dict[int, bytes]:
    """The processes of the cluster started in ``temp_dir``: those naming it, and their descendants."""
    table = _processes()
    ours = {pid for pid, (_, cmd) in table.items() if temp_dir.encode() in cmd and pid != os.getpid()}
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in ours} - ours - {os.getpid()}
        if not more:
            return {pid: table[pid][1] for pid in ours}
        ours |= more


def _stop(temp_dir: str) -> list[int]:
    """Kill the cluster's processes (only those); return the ones still alive afterwards."""
    seen: set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _cluster_processes(temp_dir):
            seen.add(pid)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + (5 if sig == signal.SIGTERM else 10)
        while time.time() < deadline and _alive(temp_dir):
            time.sleep(0.2)
    deadline = time.time() + 5  # let init reap them, so that nothing, not even a zombie, is left
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in seen):
        time.sleep(0.2)
    return _alive(temp_dir)


def _alive(temp_dir: str) -> list[int]:
    alive = []
    for pid in _cluster_processes(temp_dir):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


class Cluster(NamedTuple):
    address: str
    temp_dir: str


@pytest.fixture(scope="module")
def cluster():
    """``HOST:PORT`` of a Ray head node on 127.0.0.1 plus one worker node, one CPU slot each."""
    temp_dir = tempfile.mkdtemp(prefix="lmr", dir="/tmp")  # short: Unix socket paths must stay < 108 chars
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # RAY_AUTH_MODE: whatever ~/.ray/auth_token holds, the head node must not turn token authentication on by
    # itself (it does when that file exists), or the worker node, which does not, cannot join
    env.update(LOCALMIXUP_DATA=str(ROOT / "data"), PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    common = ["--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    address = f"127.0.0.1:{port}"
    try:
        for command in ([str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                         "--include-dashboard=false", "--temp-dir", temp_dir, *common],
                        [str(RAY), "start", "--address", address, "--node-ip-address", "127.0.0.1", *common]):
            started = subprocess.run(command, cwd=temp_dir, env=env, capture_output=True, text=True, timeout=180)
            assert started.returncode == 0, started.stdout + started.stderr
        yield Cluster(address, temp_dir)
    finally:
        left = _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


def _metrics(record: dict) -> dict:
    """What must not depend on the backend: everything but timings and the environment."""
    return {"config": record["config"], "status": record["status"], "failed_epoch": record["failed_epoch"],
            "final": record["final_test_error_pct"], "parameters": record["parameters"],
            "epochs": [{k: v for k, v in e.items() if k != "seconds"} for e in record["epochs"]]}


def _records(folder: Path) -> dict[str, dict]:
    return {p.name: read_record(p) for p in sorted(folder.rglob("*.json"))}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Every run of this file, local or on the cluster, trains with one torch thread: each node
    offers one CPU slot, which is both backends' default thread count per run."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The local backend's records of the runs used below (trained once, in this process)."""
    results = tmp_path_factory.mktemp("local")
    old = os.environ.get("LOCALMIXUP_RESULTS")
    os.environ["LOCALMIXUP_RESULTS"] = str(results)
    try:
        configs = make_configs("fashion_mnist", "baseline,mixup,local", "0-1", "quick", **TINY)
        run_sweep(configs, progress=False, device="cpu")
    finally:
        if old is None:
            os.environ.pop("LOCALMIXUP_RESULTS")
        else:
            os.environ["LOCALMIXUP_RESULTS"] = old
    return configs, {name: _metrics(r) for name, r in _records(results).items()}


def test_same_records_as_local_backend(cluster, local_reference, tmp_path, monkeypatch):
    configs, reference = local_reference
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    paths = run_sweep(configs, progress=False, device="cpu", backend="ray", address=cluster.address).paths
    assert paths == [record_path(c) for c in configs] and all(p.is_file() for p in paths)
    got = _records(tmp_path)
    assert sorted(got) == sorted(reference) and len(got) == 6
    for name, record in got.items():
        assert _metrics(record) == reference[name], name
        assert record["status"] == "ok" and len(record["epochs"]) == TINY["epochs"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".json"]
    # resuming: nothing left to train, nothing rewritten (and no cluster needed)
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    assert run_sweep(configs, progress=False, device="cpu", backend="ray", address="127.0.0.1:1").paths == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps


def test_cluster_too_small_for_the_thread_count(cluster, tmp_path, monkeypatch):
    import torch

    from localmixup.paper.sweep.ray_backend import resolve_cpus

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    configs = make_configs("fashion_mnist", "baseline", "0", "quick", **TINY)
    torch.set_num_threads(2)
    try:  # the default is the local backend's default thread count, 1, whatever this process uses
        assert resolve_cpus(None) == 1 and resolve_cpus(3) == 3
        with pytest.raises(RuntimeError, match=r"each run needs 2 CPU slot\(s\).* largest node of the Ray cluster has 1"):
            run_sweep(configs, progress=False, device="cpu", backend="ray", address=cluster.address, cpus_per_run=2)
        with pytest.raises(RuntimeError, match=r"each run needs 3 CPU slot"):
            run_sweep(configs, progress=False, device="cpu", backend="ray", address=cluster.address, cpus_per_run=3)
    finally:
        torch.set_num_threads(1)
    assert not (tmp_path / "results").exists()
    import ray

    assert not ray.is_initialized()


def test_a_run_that_raises_is_recorded_as_failed(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    good = make_configs("fashion_mnist", "baseline", "0", "quick", **TINY)
    # a configuration is checked when built; this one fails when its network is built, in the worker
    bad = make_configs("fashion_mnist", "baseline", "5", "quick", **dict(TINY, model_options={"blocks": [2, 2, 2, 2], "growth": -1}))
    run_sweep(bad + good, progress=False, device="cpu", backend="ray", address=cluster.address)
    failed, ok = read_record(record_path(bad[0])), read_record(record_path(good[0]))
    assert ok["status"] == "ok" and math.isfinite(ok["final_test_error_pct"])
    assert failed["status"] == "failed" and failed["final_test_error_pct"] is None and failed["epochs"] == []
    assert failed["error"].startswith("RuntimeError: Trying to create tensor with negative dimension")
    assert "Traceback" in failed["traceback"] and failed["config"] == bad[0].to_dict()
    assert len(list(tmp_path.rglob("*.json"))) == 2


def _kill_first_task(temp_dir: str, killed: list[int], stop: threading.Event, delay: float) -> None:
    """SIGKILL the first worker process of our cluster seen running a sweep task."""
    while not stop.is_set():
        tasks = [pid for pid, cmd in _cluster_processes(temp_dir).items() if cmd.startswith(TASK_TITLE)]
        if tasks:
            time.sleep(delay)  # well inside the run: loading data, training
            os.kill(tasks[0], signal.SIGKILL)
            killed.append(tasks[0])
            return
        time.sleep(0.01)


def _sweep_with_a_kill(cluster, configs, **options) -> list[int]:
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task, args=(cluster.temp_dir, killed, stop, 0.3), daemon=True)
    killer.start()
    try:
        run_sweep(configs, progress=False, device="cpu", backend="ray", address=cluster.address, **options)
    finally:
        stop.set()
        killer.join(5)
    assert len(killed) == 1, "no task process was seen running: the kill never happened"
    assert not Path(f"/proc/{killed[0]}").exists() or "Z" in Path(f"/proc/{killed[0]}/stat").read_text().rsplit(")", 1)[1][:3]
    return killed


def test_worker_killed_mid_run_is_retried_once_recorded(cluster, local_reference, tmp_path, monkeypatch):
    configs, reference = local_reference
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    _sweep_with_a_kill(cluster, configs, max_retries=2)
    got = _records(tmp_path)
    assert sorted(got) == sorted(reference), "every run recorded exactly once"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".json"], "no temporary file left"
    for name, record in got.items():
        assert _metrics(record) == reference[name], f"{name}: the retried run must give the local backend's numbers"


def test_worker_killed_without_retries_is_recorded_failed(cluster, local_reference, tmp_path, monkeypatch):
    configs, reference = local_reference
    configs = configs[:2]
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    _sweep_with_a_kill(cluster, configs, max_retries=0)
    got = _records(tmp_path)
    assert sorted(got) == sorted(record_path(c).name for c in configs)
    failed = [r for r in got.values() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"].startswith("the worker process died (0 retries allowed): WorkerCrashedError")
    ok = [name for name, r in got.items() if r["status"] == "ok"]
    assert len(ok) == 1 and _metrics(got[ok[0]]) == reference[ok[0]]


def test_cli_on_the_cluster_resumes(cluster, tmp_path):
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--methods", "baseline",
               "--seeds", "0-1", "--epochs", "1", "--train-size", "64", "--test-size", "32", "--batch-size", "32",
               "--backend", "ray", "--address", cluster.address, "--cpus-per-run", "1", "--no-progress"]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "training on the Ray cluster at" in first.stdout and "2 runs, 0 already recorded, 2 to train" in first.stdout
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == ["baseline-seed0.json", "baseline-seed1.json"]
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "2 runs, 2 already recorded, 0 to train" in again.stdout


# --- bad input: clear errors, nothing written ---------------------------------------------------

def test_bad_options_are_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    configs = make_configs("fashion_mnist", "baseline", "0", "quick", **TINY)
    cases = [(dict(backend="spark"), "backend must be one of 'local', 'ray'"),
             (dict(backend="ray", address="nohost"), "address must be"),
             (dict(backend="ray", address="127.0.0.1:99999"), "address must be"),
             (dict(backend="local", address="127.0.0.1:6379"), "address applies to backend='ray' only"),
             (dict(backend="local", gpus_per_run=0.5), "gpus_per_run applies to backend='ray' only"),
             (dict(backend="ray", jobs=2), "jobs applies to backend='local' only"),
             (dict(backend="ray", max_retries=-1), "max_retries must be"),
             (dict(backend="ray", device="cuda"), "needs gpus_per_run"),
             (dict(backend="ray", cpus_per_run=0), "cpus_per_run must be an integer"),
             (dict(backend="local", cpus_per_run=2), "cpus_per_run applies to backend='ray' only")]
    cases += [(dict(backend="ray", gpus_per_run=g), "gpus_per_run must be a fraction in (0, 1]")
              for g in (0, -0.5, 1.5, 2.5, float("nan"), float("inf"), True, "0.5")]
    for options, needle in cases:
        with pytest.raises(ValueError) as caught:
            run_sweep(configs, progress=False, **options)
        assert needle in str(caught.value), (options, str(caught.value))
    assert not (tmp_path / "results").exists()
    assert [check_backend("ray", None, g) for g in (0.25, 1, 1.0, 2, 3.0)] == [0.25, 1.0, 1.0, 2, 3]


def test_unreachable_address_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    configs = make_configs("fashion_mnist", "baseline", "0", "quick", **TINY)
    start = time.time()
    with pytest.raises(RuntimeError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:\d+: Connection refused"):
        run_sweep(configs, progress=False, backend="ray", address=f"127.0.0.1:{_free_port()}")
    assert time.time() - start < 15
    assert not (tmp_path / "results").exists()
    import ray

    assert not ray.is_initialized()


def test_missing_ray_says_how_to_install(tmp_path, monkeypatch):
    import localmixup.paper.sweep.ray_backend as backend

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(RuntimeError, match=r"install the extra: pip install 'localmixup\[ray\]'"):
        backend.import_ray()
    configs = make_configs("fashion_mnist", "baseline", "0", "quick", **TINY)
    with pytest.raises(RuntimeError, match=r"pip install 'localmixup\[ray\]'"):
        run_sweep(configs, progress=False, backend="ray", address="127.0.0.1:6379")
    assert not (tmp_path / "results").exists()


def test_cli_bad_input_one_line_errors(tmp_path):
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path / "results"), PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--methods", "baseline",
            "--epochs", "1", "--train-size", "64", "--test-size", "32", "--no-progress"]
    for args, needle, code in [
            (["--backend", "spark"], "backend must be one of 'local', 'ray', got 'spark'", 1),
            (["--backend", "ray", "--gpus-per-run", "0"], "argument --gpus-per-run: must be a real number in (0, inf)", 2),
            (["--backend", "ray", "--gpus-per-run", "1.5"], "gpus_per_run must be a fraction in (0, 1]", 1),
            (["--gpus-per-run", "0.5"], "gpus_per_run applies to backend='ray' only", 1),
            (["--backend", "ray", "--address", "localhost"], "address must be 'auto', 'local', 'HOST:PORT'", 1),
            (["--backend", "ray", "--address", f"127.0.0.1:{_free_port()}"], "cannot reach a Ray cluster at", 1)]:
        result = subprocess.run([*base, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == code and needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "results").exists()


# --- Ray on this machine alone: loopback only, a private token ----------------------------------

LOCAL_DRIVER = """
import sys
import ray
from localmixup.paper.sweep.ray_backend import connect

assert connect(None)
print(ray.get(ray.remote(lambda: 1).remote()), flush=True)  # a worker process is up too
sys.stdin.read()  # the test looks at the sockets, then closes stdin
ray.shutdown()
"""


def _descendants(pid: int) -> set[int]:
    table, found = _processes(), {pid}
    while more := {p for p, (ppid, _) in table.items() if ppid in found} - found:
        found |= more
    return found


def _listening(pids: set[int]) -> list[tuple[int, ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """(pid, address, port) of every TCP socket listening in one of ``pids`` (from /proc)."""
    owner = {}
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        owner.update({link[len("socket:["):-1]: pid for link in links if link.startswith("socket:[")})
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owner:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                found.append((owner[fields[9]], ipaddress.ip_address(raw), int(port, 16)))
    return found


def _loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_ray_on_this_machine_listens_on_loopback_only_and_keeps_its_token_private(tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="lmr", dir="/tmp")  # short: Unix socket paths must stay < 108 chars
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), RAY_ADDRESS="local", RAY_TMPDIR=temp_dir, RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=str(ROOT))
    driver = subprocess.Popen([sys.executable, "-c", LOCAL_DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        if driver.stdout.readline().strip() != "1":
            driver.kill()
            pytest.fail(f"the driver did not start Ray: {driver.communicate(timeout=30)[1]}")
        sockets = _listening(_descendants(driver.pid))
        names = {pid: cmd.split(b"\0")[0].decode(errors="replace") for pid, (_, cmd) in _processes().items()}
    finally:
        driver.stdin.close()
        driver.wait(timeout=120)
        left = _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert driver.returncode == 0 and not left
    assert len(sockets) >= 3, sockets  # at least the GCS, the raylet and the driver listen
    exposed = [(names.get(pid, pid), str(ip), port) for pid, ip, port in sockets if not _loopback(ip)]
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"
    token = tmp_path / ".ray" / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600 and re.fullmatch(r"[0-9a-f]{64}", token.read_text())
    assert (tmp_path / ".ray").stat().st_mode & 0o077 == 0


def test_an_open_token_is_made_private_and_others_are_left_alone(tmp_path, monkeypatch, capsys):
    from localmixup.paper.sweep.ray_backend import protect_token

    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("abc")
    token.chmod(0o644)
    assert protect_token(create=True) == token and token.stat().st_mode & 0o777 == 0o600 and token.read_text() == "abc"
    assert f"made Ray's token {token} readable by you only" in capsys.readouterr().err
    token.unlink()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token authentication: nothing to create
    assert protect_token(create=True) is None and not token.exists()
    monkeypatch.delenv("RAY_AUTH_MODE")
    elsewhere = tmp_path / "token"
    elsewhere.write_text("def")
    elsewhere.chmod(0o640)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(elsewhere))
    assert protect_token(create=False) == elsewhere and elsewhere.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x" * 64)  # the token is in the environment: no file is touched
    elsewhere.chmod(0o644)
    assert protect_token(create=True) is None and elsewhere.stat().st_mode & 0o777 == 0o644


def test_address_local_is_accepted():
    from localmixup.paper.sweep.ray_backend import parse_address, starts_local

    assert parse_address("local") is None and starts_local("local") and not starts_local("auto")
    assert not starts_local("127.0.0.1:6379") and check_backend("ray", "local") is None
