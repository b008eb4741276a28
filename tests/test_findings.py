"""The landing page's findings box: one line per result of the paper, computed by the chapters' own
readings from the committed records, and written by ``localmixup book`` before the HTML build."""

import nbformat

from localmixup.paper import findings as fi
from localmixup.paper.book import FINDINGS_PAGE, executed_profile, write_findings


def test_the_box_has_one_bullet_per_finding_with_its_verdict_and_chapter():
    lines = [fi.Finding("Table 1, X row", "does not hold", "Local Mixup − Mixup +0.50 points", "table1"),
             fi.Finding("Theorem 4.2", "holds with a correction", "the lower bound fails for K = 1..10", "theory_1d")]
    box = fi.to_markdown(lines)
    assert box.startswith("```{admonition} Findings first") and box.rstrip().endswith("```")
    bullets = [line for line in box.splitlines() if line.startswith("- ")]
    assert bullets == ["- Table 1, X row: **does not hold**; Local Mixup − Mixup +0.50 points ({doc}`table1`).",
                       "- Theorem 4.2: **holds with a correction**; the lower bound fails for K = 1..10 ({doc}`theory_1d`)."]


def test_executed_profile_reads_papermills_injected_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nprofile = "cpu"\nallow_cpu = True\n',
                                          metadata={"tags": ["injected-parameters"]})]
    nbformat.write(nb, tmp_path / "table1.ipynb")
    assert executed_profile(tmp_path / "table1.ipynb") == "cpu"
    assert executed_profile(tmp_path / "absent.ipynb") is None


def test_the_box_equals_what_the_readings_compute_from_the_committed_records(tmp_path):
    """Each line's verdict and number are those of the chapter's reading on the profile that
    ``localmixup book --profile auto`` renders; the written box is exactly their Markdown."""
    from localmixup.paper.adamixup import readings as ar
    from localmixup.paper.adamixup.plan import adamixup_plan
    from localmixup.paper.chapters import choose_profile
    from localmixup.paper.labels import DATASET_LABELS
    from localmixup.paper.sweep.plan import record_paths
    from localmixup.paper.sweep.results import records_of
    from localmixup.paper.table1 import readings as t1
    from localmixup.paper.table1.plan import table1_plan
    from localmixup.paper.table1.size_readings import load_size_runs, size_readings, study_summary

    profiles = {c: choose_profile(c, "auto")[0] for c in fi.CHAPTERS}
    lines = fi.findings(profiles)
    assert all(f.verdict in fi.VERDICTS for f in lines)

    # the 1-D theory: the chapter's exact verdicts at the sizes of its profile, one line per statement
    from localmixup.paper.theory import chapter_verdicts

    theory = [f for f in lines if f.chapter == "theory_1d"]
    assert [(f.verdict, f.number) for f in theory] == [(v.verdict, v.evidence) for v in chapter_verdicts(profiles["theory_1d"])]
    assert [f.result.split(" (")[0] for f in theory] == ["Figure 2", "Lemma 3.1", "Theorem 3.2", "Theorem 4.1", "Theorem 4.2",
                                                         "Theorem 4.3"]

    # Figure 3: the spirals chapter's two readings in the authors' setting, across draws and on the authors' data
    from localmixup.paper.spirals.protocol import PAPER_EPS
    from localmixup.paper.spirals.readings import complete_draws, verdict_scopes
    from localmixup.paper.spirals.sweep import load_spirals_sweep

    found = verdict_scopes(complete_draws(load_spirals_sweep("draws"), PAPER_EPS), load_spirals_sweep("authors-data"))
    scopes = {scope: readings["authors"] for scope, readings in found.items()}
    assert len(scopes) == 2 and any(s.startswith("across") for s in scopes) and any("authors' data" in s for s in scopes)
    first, second = (next(f for f in lines if f.result.startswith(f"Figure 3, spirals, {k} reading")) for k in ("first", "second"))
    assert first.verdict == fi.combined_verdict([r.first_holds for r in scopes.values()])
    assert second.verdict == fi.combined_verdict([r.second_holds for r in scopes.values()])
    for scope, r in scopes.items():
        assert f"{scope}: " in first.number and fi._ci(r.mixup_vs_none) in first.number
        assert fi._ci(r.local_vs_mixup) in second.number
    assert [fi.combined_verdict(h) for h in ([True, True], [False, False], [True, False])] == [
        "holds", "does not hold", "holds with a correction"]

    # Table 1: every row run here, and the size study
    plan = table1_plan(profiles["table1"])
    runs, _ = t1.load(plan)
    for dataset in plan.trained:
        d = t1.dataset_reading(runs, dataset)
        [row] = [f for f in lines if f.result.startswith(f"Table 1, {dataset.replace('fashion_mnist', 'Fashion-MNIST')} row")]
        assert row.verdict == d.verdict and fi._ci(d.local_vs_mixup) in row.number
        assert ("the baseline is best" in row.number) == d.baseline_best
    s = study_summary(size_readings(load_size_runs()))
    size = next(f for f in lines if f.result.startswith("Table 1 across training-set sizes"))
    weight = load_size_runs().groupby(["size", "method"])["pair_weight"].mean()
    localised = [w for w in s.local_wins if weight[w] < 0.95]  # a rate whose pairs weigh as Mixup's is Mixup
    if not localised and not s.local_losses:
        assert size.verdict == "not separated"
    assert ("no size and rate" in size.number) == (not s.local_wins)
    assert all(f"{w[0]:,} ({w[1]}, mean pair weight" in size.number for w in s.local_wins)
    assert size.number.count("this is Mixup") == len(s.local_wins) - len(localised)
    not_run = {f.result for f in lines if f.verdict == "not run here" and f.chapter == "table1"}
    assert {f"Table 1, {DATASET_LABELS[d]}" for d in plan.unavailable} <= not_run

    # Section 5.3: the paired test of Local Mixup against AdaMixup
    plan = adamixup_plan(profiles["adamixup"])
    e = ar.error_reading(records_of(record_paths(plan.configs)), plan.extra["error_dataset"])
    [ada] = [f for f in lines if f.result.startswith("Section 5.3, AdaMixup against Local Mixup")]
    assert ada.verdict == {"Local Mixup ahead": "holds", "AdaMixup ahead": "does not hold", "not separated": "not separated"}[e.verdict]
    assert fi._ci(e.claim) in ada.number

    # what `localmixup book` writes before the HTML build (no executed chapter here: the auto profiles)
    (tmp_path / "book").mkdir()
    assert write_findings(tmp_path).read_text(encoding="utf-8") == fi.to_markdown(lines)
    assert (tmp_path / FINDINGS_PAGE).is_file()
