"""The theory's verdicts (localmixup.theory.verdicts): each statement's verdict in each direction the
data allow (exactly linear outputs make every minimiser the line: the printed statements hold), and
the numbers each evidence sentence gives."""

import numpy as np
import pytest

from localmixup.paper.theory import THEORY_PROFILES, chapter_verdicts
from localmixup.theory.verdicts import (figure_2, lemma_3_1, theorem_3_2, theorem_4_1, theorem_4_2, theorem_4_3,
                                        theory_verdicts, verdict_table)

X = np.array([0.0, 0.1, 0.35, 0.4, 0.8, 1.0])
NOISY = np.array([0.3, -1.0, 0.5, 2.0, -0.4, 0.1])


def test_on_exactly_linear_outputs_lemma_3_1_and_theorems_3_2_and_4_3_hold():
    line = 2 * X - 1
    assert lemma_3_1(X, line).verdict == "holds"
    assert theorem_3_2(X, line).verdict == "holds"
    assert theorem_4_3(X, line).verdict == "holds"


def test_on_noisy_outputs_they_hold_only_with_their_corrections():
    lemma = lemma_3_1(X, NOISY)
    assert lemma.verdict == "holds with a correction" and "coincides with it for K = 1 (gap 0e+00)" in lemma.evidence
    gap = float(lemma.evidence.split("misses the Mixup minimiser by up to ")[1].split()[0])
    assert gap > 0.01
    smooth = theorem_3_2(X, NOISY)
    assert smooth.verdict == "holds with a correction" and "for λ uniform only" in smooth.evidence
    linear = theorem_4_3(X, NOISY, n_grid=(30, 100, 300))
    assert linear.verdict == "holds with a correction"
    rate = float(linear.evidence.split("vanishes like n^")[1].split()[0])
    assert -1.1 < rate < -0.85  # a boundary effect of K rows: 1/n


def test_figure_2_and_theorem_4_1_hold_with_their_numbers():
    f2 = figure_2((1, 2, 8))
    assert f2.verdict == "holds" and "1.00 at K = 1, 0.75 at K = 2" in f2.evidence  # H_2/2 = 0.75
    t41 = theorem_4_1(n=8, draws=2, seed=1)
    assert t41.verdict == "holds" and "never increases from K = 1 to K = 4n = 32 on 2 output draws (n = 8)" in t41.evidence


def test_theorem_4_2_names_where_the_printed_lower_bound_fails():
    t = theorem_4_2(k_max=64)
    assert t.verdict == "holds with a correction"
    assert t.evidence.endswith("the lower bound 16σ²/K² fails for K = 1..10 and holds from K = 11")
    assert theorem_4_2(k_max=10).evidence.endswith("fails for K = 1..10")  # no K beyond to hold at


def test_the_chapter_verdicts_follow_the_profile_sizes_and_refuse_bad_input():
    quick = chapter_verdicts("quick")
    assert [v.statement for v in quick] == ["Figure 2", "Lemma 3.1", "Theorem 3.2", "Theorem 4.1", "Theorem 4.2", "Theorem 4.3"]
    assert f"(n = {THEORY_PROFILES['quick']['n_periodic']})" in quick[3].evidence
    assert "(n = 16)" in chapter_verdicts("quick", n_periodic=16)[3].evidence
    assert list(verdict_table(quick).columns) == ["claim", "verdict", "evidence"]
    with pytest.raises(ValueError, match="profile"):
        chapter_verdicts("cpu")
    with pytest.raises(ValueError, match="n_random"):
        theory_verdicts(n_random=2)
