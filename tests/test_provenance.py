"""Where a record comes from: the commit of the code that ran (the checkout holding the imported
package, else the project's), read when the process loaded it; the host CPU."""

import subprocess
from pathlib import Path

import localmixup.paper.provenance as provenance
from localmixup.paper.provenance import environment, git_commit


def _git(folder, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def _repository(folder, name):
    """A git repository at ``folder`` with one commit of the file ``name``: its commit."""
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / name).write_text("one\n")
    _git(folder, "add", name)
    _git(folder, "commit", "-q", "-m", "first")
    return _git(folder, "rev-parse", "--short=12", "HEAD")


def _project(tmp_path, monkeypatch):
    """A git repository with one commit of code.py, made the project: (its folder, its commit)."""
    project = tmp_path / "project"
    head = _repository(project, "code.py")
    monkeypatch.setenv("LOCALMIXUP_ROOT", str(project))
    monkeypatch.setattr(provenance, "code_checkout", lambda: None)  # the package as installed from a wheel
    return project, head


def test_the_commit_is_the_code_s_checkout_wherever_results_go(tmp_path, monkeypatch):
    """A sweep started from another checkout (or with its results elsewhere) names the code it imported."""
    project, head = _project(tmp_path, monkeypatch)
    code = tmp_path / "code"
    commit = _repository(code, "localmixup.py")
    monkeypatch.setattr(provenance, "code_checkout", lambda: code)
    assert git_commit() == commit != head


def test_this_package_is_read_from_its_checkout():
    import localmixup

    checkout = provenance.code_checkout()
    assert checkout is not None and Path(localmixup.__file__).resolve().is_relative_to(checkout)


def test_without_a_checkout_the_commit_is_the_project_s(tmp_path, monkeypatch):
    project, head = _project(tmp_path, monkeypatch)
    assert git_commit() == head and environment("cpu")["commit"] == head
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("LOCALMIXUP_ROOT", str(other))
    assert git_commit() == "unknown"  # not a repository: said so, rather than the package's commit


def test_a_checkout_that_moves_after_the_code_was_read_is_dirty(tmp_path, monkeypatch):
    """A long-lived sweep keeps the code it loaded: a commit made meanwhile is not the code of its runs."""
    project, head = _project(tmp_path, monkeypatch)
    assert git_commit() == head  # first reading: the code as it stands
    (project / "code.py").write_text("two\n")
    assert git_commit() == head + "+dirty"  # edited since
    _git(project, "commit", "-q", "-am", "second")
    assert git_commit() == head + "+dirty"  # committed since: still not the code that was read
    (project / "code.py").write_text("one\n")
    _git(project, "commit", "-q", "-am", "back")
    assert git_commit() == head + "+dirty"  # another commit, even with the same files


def test_the_host_cpu_is_recorded():
    from localmixup.paper.provenance import cpu_name

    import torch

    name = cpu_name()
    assert environment("cpu")["cpu"] == name and name.endswith(torch.backends.cpu.get_cpu_capability())
