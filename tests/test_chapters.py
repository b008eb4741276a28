"""The book picks, per chapter, the most faithful profile whose runs are all recorded."""

import pytest

import localmixup.paper as lp
from localmixup.paper.chapters import CHAPTERS, choose_profile, table1_plan

RECORD = '{"status": "ok"}'  # a readable record (an empty object is a corrupt file)


def test_every_notebook_is_a_registered_chapter():
    assert {p.stem for p in (lp.project_root() / "notebooks").glob("*.ipynb")} == set(CHAPTERS)


def test_auto_picks_the_most_faithful_complete_profile(tmp_path, monkeypatch):
    if lp.default_device().type == "cuda":
        pytest.skip("a GPU is visible: auto falls back to paper")
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    # nothing recorded: quick on a CPU, which may train
    assert choose_profile("table1") == ("quick", False)
    for path in table1_plan("quick").paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RECORD)
    assert choose_profile("table1") == ("quick", True)
    paper = table1_plan("paper").paths
    assert paper, "Fashion-MNIST is installed here, so the paper profile plans its runs"
    for path in paper[:-1]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RECORD)
    assert choose_profile("table1") == ("quick", True), "an incomplete paper profile is not chosen"
    paper[-1].parent.mkdir(parents=True, exist_ok=True)
    paper[-1].write_text(RECORD)
    assert choose_profile("table1") == ("paper", True), "complete paper records are rendered on a CPU"
    paper[0].write_text("{}")
    assert choose_profile("table1") == ("quick", True), "a paper profile with an unreadable record is not chosen"
    paper[0].write_text(RECORD)
    # a chapter without records follows the device, and a forced profile is kept
    assert choose_profile("theory_1d") == ("quick", False)
    assert choose_profile("table1", "quick") == ("quick", True)
    assert choose_profile("theory_1d", "cpu") == ("quick", False), "a profile the chapter lacks falls back to quick"


def test_choose_profile_rejects_an_unknown_profile():
    with pytest.raises(ValueError, match="profile must be one of 'auto', 'paper', 'cpu', 'quick'"):
        choose_profile("table1", "fast")


def test_header_reports_where_and_when_the_records_were_made():
    made = lp.page.records_provenance([
        {"environment": {"device": "NVIDIA H100", "date": "2026-11-20T10:00:00+00:00", "commit": "abc"}},
        {"environment": {"device": "CPU (x86_64, 2 threads)", "date": "2026-11-22T10:00:00+00:00", "commit": "def"}},
        {"environment": {"device": "NVIDIA H100", "date": "2026-11-21T10:00:00+00:00", "commit": "abc"}},
    ])
    assert made == {"records": 3, "devices": ["CPU (x86_64, 2 threads)", "NVIDIA H100"],
                    "first": "2026-11-20T10:00:00+00:00", "last": "2026-11-22T10:00:00+00:00", "commits": ["abc", "def"]}


def test_a_markdown_table_keeps_the_index_and_escapes_pipes():
    import pandas as pd

    from localmixup.paper.page import markdown_table

    frame = pd.DataFrame({"verdict": ["holds", "a | b"]}, index=pd.Index(["x", "y"], name="setting"))
    assert markdown_table(frame).splitlines() == ["| setting | verdict |", "|---|---|", "| x | holds |", "| y | a \\| b |"]
    assert markdown_table(pd.DataFrame({"n": [1]})).splitlines()[2] == "| 1 |"


def test_the_header_describes_the_runs_it_is_updated_with():
    from localmixup.paper.page import ChapterHeader

    header = ChapterHeader("quick", 2, {"seed": 0})
    before = header.markdown([])
    assert "**Profile `quick`** (`seed=0`)." in before and "none yet of the 2 planned; this execution trains them" in before
    run = {"environment": {"date": "2026-12-07T10:00:00+00:00", "device": "CPU (x86_64, 1 threads)", "commit": "abc"}}
    after = header.markdown([run, run])
    assert "2 record(s) of the 2 planned, made on CPU (x86_64, 1 threads), 2026-12-07, at commit `abc`." in after
    with pytest.raises(RuntimeError, match="call chapter_header"):
        header.update([run])
