from datetime import date

import pytest

from core import numbers
from demo.builders import minimal_pdf
from systems.estimates import PartitionFigures, PolicyFigures, estimate
from vetting import rules

TODAY = date(2026, 1, 10)
FAST_LANE = rules.ModeLimits(
    name="Fast Lane",
    min_gpu_hours=0,
    max_gpu_hours=50_000,
    durations_months=(1, 2, 3),
    partition_ids=frozenset({1, 2}),
)
LARGE = rules.ModeLimits(
    name="Large Scale",
    min_gpu_hours=50_001,
    max_gpu_hours=None,
    durations_months=(3, 6, 12),
    partition_ids=frozenset({1}),
)


def complete(**overrides):
    data = {
        "title": "Legal LLM",
        "abstract": "A model.",
        "domain": "language",
        "civilian_use_confirmed": True,
        "results_openness": "open",
        "weights_openness": "open",
        "eu_market": False,
        "model_name": "m-7b",
        "modality": "text",
        "training_kind": "from_scratch",
        "parameters": 7e9,
        "training_tokens": 2e11,
        "base_model": "",
        "base_model_flop": None,
        "synthetic_data_flop": None,
        "resources": {1: 10_000},
        "start_date": date(2026, 2, 1),
        "duration_months": 3,
        "expected_utilisation": None,
        "pi_name": "Aino",
        "pi_email": "a@example.com",
        "pi_contract_end": date(2027, 1, 1),
        "team_size": 4,
        "hpc_experience": "Some.",
        "ethics": {
            key: {"answer": key == "civilian_purpose", "explanation": ""}
            for key in rules.ETHICS_KEYS
        },
        "commitments": [],
        "has_annex": True,
        "unparsed": {},
        "call_is_open": True,
    }
    data.update(overrides)
    return data


def errors_of(data, *, mode=FAST_LANE, required=(), classification="below_gpai"):
    return rules.validate_for_submit(
        data, mode=mode, required=required, classification=classification, today=TODAY
    )


def test_a_complete_application_has_no_errors():
    assert errors_of(complete()) == {}


@pytest.mark.parametrize("name", sorted(rules.REQUIRED_TEXT))
def test_each_required_answer_is_asked_for_in_plain_words(name):
    errors = errors_of(
        complete(
            **{
                name: ""
                if name not in ("start_date", "duration_months", "pi_contract_end")
                else None
            }
        )
    )
    assert errors[name] == [rules.REQUIRED_TEXT[name]]


def test_civilian_use_must_be_confirmed():
    assert (
        "civilian purposes"
        in errors_of(complete(civilian_use_confirmed=False))["civilian_use_confirmed"][0]
    )


def test_eu_market_must_be_answered_either_way():
    assert "eu_market" in errors_of(complete(eu_market=None))
    assert "eu_market" not in errors_of(complete(eu_market=False))


@pytest.mark.parametrize("name", ["parameters", "training_tokens"])
@pytest.mark.parametrize("value, words", [(None, "Give the number"), (0, "greater than 0")])
def test_model_size_is_required_and_positive(name, value, words):
    assert words in errors_of(complete(**{name: value}))[name][0]


@pytest.mark.parametrize("kind", ["fine_tuning", "continued_pretraining"])
def test_modification_names_its_base_model(kind):
    assert (
        "Name the model you start from" in errors_of(complete(training_kind=kind))["base_model"][0]
    )
    assert "base_model" not in errors_of(complete(training_kind=kind, base_model="Llama"))


def test_base_model_compute_must_be_positive_when_given():
    data = complete(training_kind="fine_tuning", base_model="Llama", base_model_flop=0)
    assert "greater than 0" in errors_of(data)["base_model_flop"][0]


def test_synthetic_compute_cannot_be_negative():
    assert "synthetic_data_flop" in errors_of(complete(synthetic_data_flop=-1))


def test_at_least_one_partition_is_requested():
    assert errors_of(complete(resources={}))["resources"] == [
        "Request GPU-hours on at least one system."
    ]


def test_total_above_the_mode_maximum_names_both_numbers():
    message = errors_of(complete(resources={1: 30_000, 2: 30_000}))["resources"][0]
    assert "up to 50,000 GPU-hours in total; you asked for 60,000" in message


def test_total_below_the_mode_minimum():
    message = errors_of(complete(resources={1: 10_000}, duration_months=6), mode=LARGE)[
        "resources"
    ][0]
    assert "starts at 50,001 GPU-hours" in message


def test_partition_outside_the_mode_is_refused():
    assert "cannot grant time" in errors_of(complete(resources={9: 100}))["resources.9"][0]


def test_negative_hours_are_refused():
    assert "negative" in errors_of(complete(resources={1: 100, 2: -5}))["resources.2"][0]


def test_start_date_in_the_past():
    assert "in the past" in errors_of(complete(start_date=date(2026, 1, 9)))["start_date"][0]


def test_duration_must_be_one_the_mode_allows():
    assert errors_of(complete(duration_months=6))["duration_months"] == [
        "Fast Lane allocations last 1, 2 or 3 months."
    ]


@pytest.mark.parametrize("share", [0, 1.5, -0.2])
def test_utilisation_is_a_share(share):
    assert "expected_utilisation" in errors_of(complete(expected_utilisation=share))


def test_team_has_at_least_one_person():
    assert "team_size" in errors_of(complete(team_size=0))
    assert "team_size" in errors_of(complete(team_size=None))


def test_pi_contract_runs_three_months_past_the_allocation():
    # Start 1 Feb, 3 months: ends 1 May; plus 3 months: 1 August.
    message = errors_of(complete(pi_contract_end=date(2026, 7, 31)))["pi_contract_end"][0]
    assert "until 01 August 2026 or later" in message
    assert "pi_contract_end" not in errors_of(complete(pi_contract_end=date(2026, 8, 1)))


def test_every_ethics_question_needs_an_answer():
    errors = errors_of(complete(ethics={}))
    assert {f"ethics.{key}.answer" for key in rules.ETHICS_KEYS} <= set(errors)


def test_yes_needs_an_explanation():
    ethics = complete()["ethics"]
    ethics["personal_data"] = {"answer": True, "explanation": "  "}
    assert (
        "You answered yes"
        in errors_of(complete(ethics=ethics))["ethics.personal_data.explanation"][0]
    )
    ethics["personal_data"]["explanation"] = "Pseudonymised court records."
    assert errors_of(complete(ethics=ethics)) == {}


def test_no_to_civilian_purpose_needs_an_explanation():
    ethics = complete()["ethics"]
    ethics["civilian_purpose"] = {"answer": False, "explanation": ""}
    assert (
        "You answered no"
        in errors_of(complete(ethics=ethics))["ethics.civilian_purpose.explanation"][0]
    )


def test_required_commitments_are_listed_by_name():
    required = rules.GPAI_COMMITMENTS
    errors = errors_of(complete(commitments=["annex_xi"]), required=required, classification="gpai")
    message = errors["commitments"][0]
    assert "a general-purpose AI model" in message
    assert "Annex XII" in message and "Annex XI technical" not in message


def test_annex_is_required():
    assert "technical_annex" in errors_of(complete(has_annex=False))


def test_unreadable_input_blocks_submit():
    assert "7 bilion" in errors_of(complete(unparsed={"parameters": "7 bilion"}))["parameters"][0]


def test_closed_call_blocks_submit():
    assert "closed" in errors_of(complete(call_is_open=False))["__all__"][0]


# Commitments follow the compute class.


def test_below_gpai_requires_no_commitment():
    assert (
        rules.required_commitments(
            classification="below_gpai", is_modification=False, modification_makes_provider=None
        )
        == ()
    )


def test_gpai_requires_the_article_53_obligations():
    assert set(
        rules.required_commitments(
            classification="gpai", is_modification=False, modification_makes_provider=None
        )
    ) == {"annex_xi", "annex_xii", "copyright_policy", "training_summary"}


def test_systemic_risk_adds_the_article_55_obligations():
    required = rules.required_commitments(
        classification="systemic_risk", is_modification=False, modification_makes_provider=None
    )
    assert {"art52_notification", "evaluations", "incident_reporting", "cybersecurity"} < set(
        required
    )
    assert "code_of_practice" not in required


def test_small_fine_tune_of_a_systemic_risk_model_leaves_obligations_with_the_original():
    assert (
        rules.required_commitments(
            classification="systemic_risk", is_modification=True, modification_makes_provider=False
        )
        == ()
    )
    assert "cybersecurity" in rules.required_commitments(
        classification="systemic_risk", is_modification=True, modification_makes_provider=True
    )


# Numbers as people type them.


@pytest.mark.parametrize(
    "text, value",
    [
        ("7000000000", 7e9),
        ("7e9", 7e9),
        ("7E+09", 7e9),
        ("7,000,000,000", 7e9),
        ("7 000 000 000", 7e9),
        ("7B", 7e9),
        ("7 billion", 7e9),
        ("2.5 trillion", 2.5e12),
        ("15.6T", 15.6e12),
        ("50k", 5e4),
        ("3.8 x10^25", 3.8e25),
        ("0.4", 0.4),
    ],
)
def test_parse_number(text, value):
    assert numbers.parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["seven", "7 bilion", "1.2.3", "", "e9"])
def test_parse_number_explains_what_it_could_not_read(text):
    with pytest.raises(ValueError, match="could not read"):
        numbers.parse_number(text)


def test_parse_share_reads_percentages():
    assert numbers.parse_share("40 %") == pytest.approx(0.4)
    assert numbers.parse_share("0.35") == pytest.approx(0.35)


# Several partitions combine into exactly the sum of their estimates.


def test_combined_partition_gives_the_sum_of_the_per_partition_estimates():
    policy = PolicyFigures()
    a100 = PartitionFigures(peak_flops=312e12, power_watts=400, pue=1.1, grid_kg_per_kwh=0.25)
    h100 = PartitionFigures(peak_flops=989e12, power_watts=700, pue=1.08, grid_kg_per_kwh=0.15)
    rows = [(a100, 200_000), (h100, 370_000)]
    parts = [
        estimate(
            partition=p, gpu_hours=h, parameters=None, tokens=None, utilisation=0.5, policy=policy
        )
        for p, h in rows
    ]
    combined = estimate(
        partition=rules.combined_partition(rows),
        gpu_hours=570_000,
        parameters=None,
        tokens=None,
        utilisation=0.5,
        policy=policy,
    )
    for key in (
        "flop_hardware",
        "flop_upper_bound",
        "energy_kwh",
        "facility_energy_kwh",
        "co2e_kg",
    ):
        assert getattr(combined, key) == pytest.approx(sum(getattr(p, key) for p in parts))
    assert parts[1].flop_hardware == pytest.approx(6.6e23, rel=0.01)


def test_combined_partition_without_hours_is_none():
    a100 = PartitionFigures(peak_flops=312e12, power_watts=400)
    assert rules.combined_partition([(a100, 0)]) is None


@pytest.mark.parametrize(
    "start, months, end",
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 6, 1), 12, date(2027, 6, 1)),
    ],
)
def test_add_months(start, months, end):
    assert rules.add_months(start, months) == end


# The technical annex is judged by its bytes.


def _problem(content: bytes):
    return rules.pdf_problem(content[:4096], content[-4096:], len(content))


def test_a_real_pdf_is_accepted():
    assert _problem(minimal_pdf()) is None


@pytest.mark.parametrize(
    "content",
    [
        b"PK\x03\x04 word document",
        b"\x89PNG\r\n\x1a\n image",
        b"<html>%PDF-1.4</html>",
        b"%PDX-1.4 nearly",
    ],
)
def test_other_files_named_pdf_are_refused(content):
    assert "not a PDF" in _problem(content)


def test_truncated_pdf_is_refused():
    assert "damaged" in _problem(minimal_pdf()[:-40])


def test_empty_file_is_refused():
    assert rules.pdf_problem(b"", b"", 0) == "The file is empty."


def test_annex_over_10_mb_is_refused():
    pdf = minimal_pdf()
    message = rules.pdf_problem(pdf[:4096], pdf[-4096:], 10 * 1024 * 1024 + 1)
    assert "at most 10 MB" in message
