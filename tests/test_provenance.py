"""Where a record comes from: the commit is the project's, not the installed package's."""

import subprocess

from localmixup.paper.provenance import environment, git_commit


def _git(folder, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def _project(tmp_path, monkeypatch):
    """A git repository with one commit of code.py, made the project: (its folder, its commit)."""
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "code.py").write_text("one\n")
    _git(project, "add", "code.py")
    _git(project, "commit", "-q", "-m", "first")
    monkeypatch.setenv("LOCALMIXUP_ROOT", str(project))
    return project, _git(project, "rev-parse", "--short=12", "HEAD")


def test_the_commit_is_the_project_s_where_results_are_written(tmp_path, monkeypatch):
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
