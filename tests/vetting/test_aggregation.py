"""Rubric aggregation and ranking as pure functions."""

import pytest

from vetting.aggregation import Candidate, Criterion, rank, summarise, weighted_score

RUBRIC = [
    Criterion("technical", 25),
    Criterion("innovation", 25),
    Criterion("resources", 20),
    Criterion("ethics", 20, minimum=3),
    Criterion("ai_act", 10, minimum=3),
]


def scores(technical=4, innovation=4, resources=4, ethics=4, ai_act=4):
    return locals()


def test_weighted_score_stays_on_the_rubric_scale():
    assert weighted_score(scores(), RUBRIC) == 4.0
    assert weighted_score(scores(technical=0, innovation=0), RUBRIC) == pytest.approx(2.0)
    assert weighted_score(scores(ai_act=0), RUBRIC) == pytest.approx(3.6)


def test_weighted_score_needs_every_criterion():
    with pytest.raises(ValueError, match="missing for: ethics"):
        weighted_score({"technical": 1, "innovation": 1, "resources": 1, "ai_act": 1}, RUBRIC)


def test_mean_spread_and_disagreement_above_one_and_a_half_points():
    close = summarise([scores(), scores(technical=2)], RUBRIC)
    assert close.mean == pytest.approx(3.75) and close.spread == pytest.approx(0.5)
    assert not close.disagreement
    apart = summarise([scores(5, 5, 5, 5, 5), scores(1, 1, 3, 3, 3)], RUBRIC)
    assert apart.spread == pytest.approx(3.0) and apart.disagreement
    exactly = summarise([scores(), scores(2, 2, 4, 4, 1)], RUBRIC, disagreement_points=1.3)
    assert exactly.spread == pytest.approx(1.3) and not exactly.disagreement


def test_minimum_fails_on_the_reviewers_mean():
    one_low = summarise([scores(ethics=2), scores(ethics=4)], RUBRIC)
    assert one_low.failed_minimums == () and one_low.passes
    both_low = summarise([scores(ethics=2), scores(ethics=3, ai_act=1)], RUBRIC)
    assert both_low.failed_minimums == ("ethics", "ai_act")
    assert not both_low.passes


def test_no_reviews_no_score():
    empty = summarise([], RUBRIC)
    assert (empty.mean, empty.spread, empty.passes) == (None, None, False)


def test_ranking_fills_capacity_in_rank_order_and_skips_failures():
    candidates = [
        Candidate(1, 3.0, True, {10: 30_000}),
        Candidate(2, 4.5, True, {10: 40_000, 11: 5_000}),
        Candidate(3, 4.9, False, {10: 1_000}),
        Candidate(4, 3.0, True, {10: 30_000}, tie_breaker=-1),
    ]
    proposals, left = rank(candidates, {10: 80_000, 11: 2_000})
    assert [(p.application_id, p.rank) for p in proposals] == [(2, 1), (4, 2), (1, 3), (3, None)]
    assert proposals[0].proposed == {10: 40_000, 11: 2_000}
    assert proposals[1].proposed == {10: 30_000}
    assert proposals[2].proposed == {10: 10_000} and proposals[2].total == 10_000
    assert proposals[3].proposed == {}
    assert left == {10: 0, 11: 0}
