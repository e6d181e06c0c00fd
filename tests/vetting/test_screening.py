"""Screening rules as pure functions, and the screening of a submitted application."""

from datetime import date
from decimal import Decimal

import pytest

from allocations.services import allocation_create
from organisations.models import Country, Membership
from systems.models import Partition
from tests.factories import make_application, make_organisation
from vetting import rules, screening
from vetting.models import Application
from vetting.selectors.review import screening_input
from vetting.services import review as workflow

MODE = rules.ModeLimits(
    name="Fast Lane",
    min_gpu_hours=1,
    max_gpu_hours=50_000,
    durations_months=(1, 2, 3),
    partition_ids=frozenset({1, 2}),
)


def data(**overrides) -> screening.ScreeningInput:
    values = {
        "country_code": "FI",
        "country_status": "eu",
        "country_name": "Finland",
        "staff_headcount": 12,
        "annual_turnover_eur": Decimal(800_000),
        "balance_sheet_eur": Decimal(1_200_000),
        "civilian_use_confirmed": True,
        "ethics": {"civilian_purpose": {"answer": True}},
        "pi_contract_end": date(2027, 1, 1),
        "start_date": date(2026, 1, 1),
        "duration_months": 3,
        "mode": MODE,
        "resources": {1: 20_000},
        "flop_hardware": 1.0e22,
        "flop_architecture": 1.2e22,
        "flop_best": 1.2e22,
        "classification": "below_gpai",
        "required_commitments": (),
        "commitments": (),
    }
    values.update(overrides)
    return screening.ScreeningInput(**values)


def codes(flags):
    return {(f.code, f.severity) for f in flags}


def test_a_clean_application_has_no_flags():
    assert screening.screen(data()) == []


@pytest.mark.parametrize(
    ("staff", "turnover", "balance", "expected"),
    [
        (249, 50_000_000, 99_000_000, True),
        (250, 1, 1, False),
        (10, 50_000_001, 43_000_000, True),
        (10, 50_000_001, 43_000_001, False),
        (10, None, 43_000_000, True),
        (None, 1, 1, None),
        (10, None, None, None),
    ],
)
def test_sme_test_follows_recommendation_2003_361(staff, turnover, balance, expected):
    to_decimal = lambda v: None if v is None else Decimal(v)  # noqa: E731
    result = screening.is_sme(
        staff=staff, turnover=to_decimal(turnover), balance_sheet=to_decimal(balance)
    )
    assert result is expected


def test_large_company_is_blocked_and_missing_figures_only_warn():
    assert ("not_sme", "blocking") in codes(screening.screen(data(staff_headcount=400)))
    assert ("sme_unknown", "warning") in codes(screening.screen(data(staff_headcount=None)))


def test_country_outside_eu_and_associated_countries_is_blocked():
    flags = screening.screen(data(country_status="other", country_name="United States"))
    assert ("country_not_eligible", "blocking") in codes(flags)
    assert "United States" in flags[0].message
    assert ("country_unknown", "blocking") in codes(screening.screen(data(country_status=None)))


def test_military_use_is_blocked_and_dual_use_warns():
    assert ("not_civilian", "blocking") in codes(
        screening.screen(data(civilian_use_confirmed=False))
    )
    answered_no = data(ethics={"civilian_purpose": {"answer": False}})
    assert ("not_civilian", "blocking") in codes(screening.screen(answered_no))
    dual = data(
        ethics={
            "civilian_purpose": {"answer": True},
            "dual_use": {"answer": True, "explanation": "Drone navigation"},
        }
    )
    flags = screening.screen(dual)
    assert codes(flags) == {("ethics_dual_use", "warning")}
    assert "Drone navigation" in flags[0].message


def test_pi_contract_must_run_three_months_past_the_allocation_end():
    # 1 Jan + 3 months = 1 Apr; + 3 months = 1 Jul.
    assert screening.screen(data(pi_contract_end=date(2026, 7, 1))) == []
    flags = screening.screen(data(pi_contract_end=date(2026, 6, 30)))
    assert codes(flags) == {("pi_contract_short", "blocking")}
    assert "01 July 2026" in flags[0].message


def test_request_outside_the_mode_is_blocked():
    assert ("request_outside_limits", "blocking") in codes(
        screening.screen(data(resources={1: 60_000}))
    )
    assert ("partition_not_in_mode", "blocking") in codes(
        screening.screen(data(resources={1: 100, 9: 100}))
    )
    assert ("duration_not_offered", "blocking") in codes(screening.screen(data(duration_months=6)))


def test_estimates_further_apart_than_30_percent_warn():
    assert screening.screen(data(flop_hardware=1.0e22, flop_architecture=1.3e22)) == []
    flags = screening.screen(data(flop_hardware=1.0e22, flop_architecture=1.31e22))
    assert codes(flags) == {("estimate_gap", "warning")}
    assert "31 %" in flags[0].message


def test_missing_ai_act_commitments_for_the_compute_class_warn():
    flags = screening.screen(
        data(
            classification="gpai",
            required_commitments=rules.GPAI_COMMITMENTS,
            commitments=["annex_xi"],
        )
    )
    assert codes(flags) == {("commitments_missing", "warning")}
    assert flags[0].details["missing"] == ["annex_xii", "copyright_policy", "training_summary"]


def test_related_organisations_holding_allocations_are_flagged_with_combined_compute():
    holding = screening.RelatedHolding("Sister Oy", "FI999", "shares members", 1, 150_000, 9e22)
    flags = screening.screen(data(related=[holding], flop_best=2e22))
    assert codes(flags) == {("related_allocations", "warning")}
    assert flags[0].details["combined_flop"] == pytest.approx(1.1e23)
    assert flags[0].details["combined_classification"] == "gpai"
    assert "cross a threshold" in flags[0].message


def test_blocking_flags_come_first_and_decide_eligibility():
    flags = screening.screen(data(staff_headcount=None, civilian_use_confirmed=False))
    assert flags[0].is_blocking
    assert not screening.is_eligible(flags)
    assert screening.is_eligible(screening.screen(data(staff_headcount=None)))


# With the database


def test_eligible_application_goes_to_review_with_its_warnings(applicant, open_call):
    organisation = make_organisation(owner=applicant, staff_headcount=None)
    application = make_application(
        applicant=applicant, call=open_call, state="submitted", organisation=organisation
    )
    workflow.application_screen(application_id=application.pk)
    application.refresh_from_db()
    assert application.state == Application.State.IN_REVIEW
    assert list(application.screening_flags.values_list("code", "severity")) == [
        ("sme_unknown", "warning")
    ]
    states = list(application.events.values_list("from_state", "to_state"))
    assert states[-2:] == [("submitted", "screening"), ("screening", "in_review")]


def test_ineligible_country_makes_the_application_ineligible(applicant, open_call):
    Country.objects.update_or_create(
        code="US", defaults={"name": "United States", "status": "other"}
    )
    organisation = make_organisation(owner=applicant)
    application = make_application(
        applicant=applicant, call=open_call, state="submitted", organisation=organisation
    )
    # The country changes after submission (e.g. a corrected registration).
    type(organisation).objects.filter(pk=organisation.pk).update(country="US")
    workflow.application_screen(application_id=application.pk)
    application.refresh_from_db()
    assert application.state == Application.State.INELIGIBLE
    event = application.events.last()
    assert event.reason == "country_not_eligible"
    assert "United States" in event.public_note


def test_screening_twice_does_nothing_the_second_time(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    workflow.application_screen(application_id=application.pk)
    assert workflow.application_screen(application_id=application.pk) is None
    assert application.events.filter(to_state="in_review").count() == 1


def test_related_organisation_with_shared_member_and_allocations_is_flagged(
    applicant, other_applicant, open_call
):
    sister = make_organisation(
        owner=other_applicant, legal_name="Sister Oy", registration_id="FI999"
    )
    Membership.objects.create(organisation=sister, user=applicant)
    partition = Partition.objects.get(cluster__name="leonardo")
    allocation_create(
        organisation=sister,
        project="Earlier run",
        partition=partition,
        account="sister_1",
        gpu_hours=100_000,
        start=date.today(),
        end=date(2099, 1, 1),
    )
    application = make_application(applicant=applicant, call=open_call, state="submitted")
    data_ = screening_input(application)
    assert [(h.organisation, h.relation, h.gpu_hours) for h in data_.related] == [
        ("Sister Oy", "shares members", 100_000)
    ]
    flags = screening.screen(data_)
    related = next(f for f in flags if f.code == "related_allocations")
    assert related.details["held_flop"] == pytest.approx(100_000 * 3600 * 312e12 * 0.4)
