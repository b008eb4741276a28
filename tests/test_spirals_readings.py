"""The spirals readings on small synthetic records: each verdict in each direction, one data set and across draws."""

import pandas as pd
import pytest

from localmixup.paper.spirals.readings import (across_draws, collapses, paired, per_draw, reading, run_shape, scope_readings,
                                               verdict_table)


def _frame(errors: dict[float, list[float]], data: str = "authors", setting: str = "authors", offset: int = 0) -> pd.DataFrame:
    """Runs of one setting on one data set: errors[eps][i] is the error of seed offset + i."""
    return pd.DataFrame([{"setting": setting, "data": data, "eps": eps, "seed": offset + i, "test_error_pct": e}
                         for eps, values in errors.items() for i, e in enumerate(values)])


def test_both_readings_hold_when_mixup_and_local_are_below_no_mixing_and_local_below_mixup():
    frame = _frame({0.0: [20, 22, 24, 26], 1.0: [5, 6, 7, 8], 10.0: [10, 11, 12, 13.5]})
    r = reading(frame, "authors", 10.0)
    assert r.scope == "one data set" and r.best_eps == 1.0 and r.first_holds and r.second_holds
    assert r.mixup_vs_none.side == "below" and r.local_vs_mixup.n == 4
    assert r.means == {0.0: 23.0, 1.0: 6.5, 10.0: 11.625}
    text = r.markdown("(a) on the authors' data")
    assert "First reading (Mixup and Local Mixup beat no mixing): **holds**" in text and "95% CI" in text


def test_the_first_reading_fails_when_mixup_is_not_below_no_mixing_and_the_second_when_local_is_not_below_mixup():
    frame = _frame({0.0: [10, 11, 12, 13], 1.0: [5, 6, 7, 8], 10.0: [10.5, 10, 13, 12.5]})
    r = reading(frame, "authors", 10.0)
    assert r.mixup_vs_none.side == "not separated" and not r.first_holds and r.second_holds
    worse = reading(_frame({0.0: [20, 22, 24, 26], 1.0: [12, 13, 14, 15], 10.0: [5, 6, 7, 8]}), "authors", 10.0)
    assert worse.local_vs_mixup.side == "above" and not worse.second_holds
    assert "**does not hold**" in worse.markdown("x")


def test_across_draws_the_interval_is_over_data_sets_and_carries_their_spread():
    # two draws: the difference is -10 on one and +2 on the other, each with tiny run noise
    one = _frame({0.0: [30, 30.1, 29.9], 1.0: [20, 20.1, 19.9], 10.0: [20, 20, 20]}, data="draw 0")
    two = _frame({0.0: [10, 10.1, 9.9], 1.0: [12, 12.1, 11.9], 10.0: [20, 20, 20]}, data="draw 1", offset=1000)
    frame = pd.concat([one, two])
    assert per_draw(frame, "authors", 1.0, 0.0).round(6).to_dict() == {"draw 0": -10.0, "draw 1": 2.0}
    r = reading(frame, "authors", 10.0)
    assert r.scope == "across draws" and r.data_sets == 2 and r.local_vs_none.n == 2
    assert r.local_vs_none.mean == pytest.approx(-4.0) and r.local_vs_none.side == "not separated"  # the draws disagree
    within = paired(one, "authors", 1.0, 0.0)
    assert within.side == "below"  # on one draw alone it looks certain
    with pytest.raises(ValueError, match="across_draws"):
        paired(frame, "authors", 1.0, 0.0)
    assert across_draws(pd.Series([1.0, 1.1, 0.9])).side == "above"


def test_readings_refuse_what_they_cannot_read():
    with pytest.raises(ValueError, match="needs runs at eps = 0"):
        reading(_frame({0.0: [1, 2], 10.0: [1, 2]}), "authors", 10.0)
    with pytest.raises(ValueError, match="no recorded run of setting 'eq2-graph'"):
        reading(_frame({0.0: [1, 2]}), "eq2-graph", 10.0)


def test_run_shape_counts_separated_and_failed_runs():
    table = run_shape(_frame({0.0: [0.0, 0.5, 12.0, 30.0]}))
    row = table.loc[("authors", "authors", 0.0)]
    assert row["runs"] == 4 and row["median"] == 6.25 and row["below 1% (%)"] == 50.0 and row["above 10% (%)"] == 50.0


def test_collapses_count_runs_that_separated_then_failed():
    curves = pd.DataFrame([{"eps": 0.0, "seed": s, "epoch": e, "test_error_pct": v}
                           for s, values in enumerate([[5, 1, 20], [5, 1, 1], [30, 30, 30]])
                           for e, v in zip((10, 20, 30), values)])
    c = collapses(curves)[0.0]
    assert (c.runs, c.separated, c.collapsed) == (3, 2, 1)
    assert c.best_epoch_mean == pytest.approx(32 / 3) and c.last_epoch_mean == pytest.approx(17.0)
    assert c.lowest_mean_epoch == 20 and c.lowest_mean == pytest.approx(32 / 3)


def test_complete_draws_keep_the_balanced_data_sets_only():
    from localmixup.paper.spirals.readings import complete_draws

    full = _frame({0.0: [1, 2], 1.0: [1, 2]}, data="draw 0")
    partial = _frame({0.0: [1, 2]}, data="draw 1", offset=1000)  # eps = 1 not trained yet
    short = _frame({0.0: [1], 1.0: [1]}, data="draw 2", offset=2000)  # fewer runs than the others
    other = _frame({0.0: [5], 1.0: [6]}, data="draw 2", setting="eq2-permutation", offset=2000)
    kept = complete_draws(pd.concat([full, partial, short, other]), [0.0, 1.0])
    assert sorted(set(kept[kept.setting == "authors"]["data"])) == ["draw 0"]
    assert sorted(set(kept[kept.setting == "eq2-permutation"]["data"])) == ["draw 2"]
    assert complete_draws(partial.iloc[:0], [0.0, 1.0]).empty
    assert complete_draws(full, [0.0, 1.0, 10.0]).empty  # a threshold of the grid not trained yet


def test_longer_training_pairs_each_run_with_itself_earlier():
    from localmixup.paper.spirals.readings import longer_training

    curves = pd.DataFrame([{"eps": 0.0, "seed": s, "epoch": e, "test_error_pct": v}
                           for s, (a, b) in enumerate([(10, 20), (12, 21), (11, 23)]) for e, v in ((200, a), (400, b))])
    table = longer_training(curves, 200, 400)
    row = table.loc[0.0]
    assert row["runs"] == 3 and row["epoch 200"] == 11 and row["epoch 400"] == pytest.approx(64 / 3)
    assert row["change"] == pytest.approx(31 / 3) and row["low"] > 0
    with pytest.raises(ValueError, match="need epochs 200 and 600"):
        longer_training(curves, 200, 600)


def test_the_verdict_table_says_per_scope_which_reading_holds_with_its_numbers():
    holds = _frame({0.0: [20, 22, 24, 26], 1.0: [5, 6, 7, 8], 10.0: [10, 11, 12, 13.5]})
    fails = _frame({0.0: [10, 11, 12, 13], 1.0: [12, 13, 14, 15], 10.0: [10.5, 10, 13, 12.5]}, setting="eq2-permutation")
    table = verdict_table({"one": scope_readings(pd.concat([holds, fails])), "other": scope_readings(holds)})
    assert list(table.index.get_level_values("setting").unique()) == ["(a) authors' setting", "(b) Eq. (2), permutation pairing"]
    a, b = table.loc["(a) authors' setting"], table.loc["(b) Eq. (2), permutation pairing"]
    assert a.iloc[0]["one"].startswith("holds: Mixup -11.38 [") and a.iloc[1]["one"].startswith("holds: ε = 1 − Mixup -5.12 [")
    assert b.iloc[0]["one"].startswith("does not hold") and b.iloc[1]["one"].startswith("does not hold")
    assert b.iloc[0]["other"] == "—" and "ε = 0 [fixed points only]" in b.index[0]
    with pytest.raises(ValueError, match="every scope is empty"):
        verdict_table({"one": {}})


def test_the_longer_training_bullet_gives_each_change_and_the_collapses():
    from localmixup.paper.spirals.readings import Collapse, describe_longer_training, longer_training

    curves = pd.DataFrame([{"eps": eps, "seed": s, "epoch": e, "test_error_pct": v + eps}
                           for eps in (0.0, 1.0) for s, (a, b) in enumerate([(10, 20), (12, 21), (11, 23)])
                           for e, v in ((200, a), (400, b))])
    text = describe_longer_training(longer_training(curves, 200, 400),
                                    {0.0: Collapse(3, 2, 1, 0, 0, 400, 0), 1.0: Collapse(3, 0, 0, 0, 0, 400, 0)}, "(a)")
    assert text.startswith("- **(a)**: ε = 0: 11.0% → 21.3% (+10.33 points, 95% CI ")
    assert "ε = 1: 12.0% → 22.3%" in text and text.endswith("over 400 epochs: ε = 0: 1 of 3; ε = 1: 0 of 3.")


def test_the_softmax_baseline_counts_failed_runs_and_paired_losses():
    from localmixup.paper.spirals.readings import softmax_baseline

    softmax = pd.Series([40.0, 0.5, 12.0, 3.0], index=[0, 1, 2, 3])
    logits = pd.Series([0.0, 0.5, 1.0], index=[0, 1, 2])
    s = softmax_baseline(softmax, logits)
    assert s.runs == (4, 3) and s.failed_pct == (50.0, 0.0) and s.paired == 3 and s.worse_pct == pytest.approx(200 / 3)
    assert s.markdown().startswith("With the softmax output, 50% of the runs end above 10% test error; with plain logits, 0%.")
    with pytest.raises(ValueError, match="common seeds"):
        softmax_baseline(softmax, pd.Series([1.0], index=[9]))


def test_the_closing_bullets_compare_the_best_threshold_with_both_baselines():
    from localmixup.paper.spirals.readings import closing_bullets

    authors = _frame({0.0: [20, 22, 24, 26], 1.0: [5, 6, 7, 8], 10.0: [10, 11, 12, 13.5]}).assign(
        pair_weight=lambda f: f["eps"].map({0.0: 0.01, 1.0: 0.3, 10.0: 1.0}))
    logits = _frame({0.0: [0.0, 0.1, 0.0, 0.2]}, setting="eq2-graph").assign(pair_weight=1.0)
    runs = pd.concat([authors, logits]).assign(epochs=200)
    text = closing_bullets(runs, 10.0, scale="a test scale")
    assert text.startswith("- These numbers come from 16 recorded runs at a test scale.")
    assert ("(ε = 1, 6.5%) lies below their training without mixing (23.0%, softmax output) and lies above training "
            "without mixing with plain logits (0.1%;") in text
    assert "holds against the authors' baseline only: it rests on its softmax." in text
    assert "(from 0.30 to 1.00 over the grid)" in text and "length of training" not in text
    later = reading(_frame({0.0: [20, 22, 24, 26], 1.0: [5, 6, 7, 8], 10.0: [5.1, 6, 7.2, 8]}), "authors", 10.0)
    longer = closing_bullets(runs, 10.0, scale="s", later=later, later_epochs=400)
    assert "- The length of training changes the authors' setting's verdicts: after 400 epochs instead of 200" in longer
    assert "the second does not hold (ε = 1 − Mixup -0.07 points" in longer
    with pytest.raises(ValueError, match="later_epochs"):
        closing_bullets(runs, 10.0, scale="s", later=later)
    with pytest.raises(ValueError, match="eq2-graph"):
        closing_bullets(authors.assign(epochs=200), 10.0, scale="s")


def test_collapses_per_draw_give_one_row_per_data_set_in_draw_order():
    from localmixup.paper.spirals.readings import collapses_per_draw

    curves = pd.DataFrame([{"data": data, "eps": 0.0, "seed": 100 * i + s, "epoch": e, "test_error_pct": v}
                           for i, data in enumerate(["draw 10", "draw 2"])
                           for s, values in enumerate([[5, 1, 20], [5, 1, 1], [30, 30, 30 - 20 * i]])
                           for e, v in zip((10, 20, 30), values)])
    table = collapses_per_draw(curves, [0.0, 1.0])
    assert list(table.index) == ["draw 2", "draw 10"]
    assert table.loc["draw 10", "ε = 0"] == "1 / 2 / 3" and table.loc["draw 2", "ε = 0"] == "1 / 2 / 3"
    assert table.loc["draw 2", "ε = 1"] == "—"
    with pytest.raises(ValueError, match="no learning curve"):
        collapses_per_draw(curves, [5.0])


def test_run_shape_lists_the_draws_by_number():
    frame = pd.concat([_frame({0.0: [1.0]}, data=d, offset=i) for i, d in enumerate(["draw 10", "draw 2", "authors"])])
    assert list(run_shape(frame).index.get_level_values("data")) == ["authors", "draw 2", "draw 10"]


def test_shape_cells_give_one_row_per_setting_and_draw_and_one_column_per_threshold():
    from localmixup.paper.spirals.readings import shape_cells

    frame = pd.concat([_frame({0.0: [0.0, 0.5, 12.0, 30.0], 1.0: [2, 2, 2, 2]}, data="draw 10"),
                       _frame({0.0: [1.0, 3.0]}, data="draw 2", offset=10)])
    table = shape_cells(frame, [0.0, 1.0, 10.0])
    assert list(table.columns) == ["ε = 0", "ε = 1"]  # no run at 10: no column
    assert list(table.index) == [("authors", "draw 2"), ("authors", "draw 10")]
    assert table.loc[("authors", "draw 10"), "ε = 0"] == "10.6 (6.2; 50; 50)"
    assert pd.isna(table.loc[("authors", "draw 2"), "ε = 1"])
    with pytest.raises(ValueError, match="no run at eps"):
        shape_cells(frame, [5.0])
