import json

import pytest

from systems.estimates import (
    ComputeEstimate,
    PartitionFigures,
    PolicyFigures,
    architecture_flop,
    classify,
    co2e_kg,
    estimate,
    facility_energy_kwh,
    gpu_hours_for,
    hardware_flop,
    it_energy_kwh,
    modification_threshold,
    relative_gap,
    significant,
)

POLICY = PolicyFigures()
H100 = PartitionFigures(peak_flops=989e12, power_watts=700, pue=1.08, grid_kg_per_kwh=0.2)
A100 = PartitionFigures(peak_flops=312e12, power_watts=400)
LUMI_G_GCD = PartitionFigures(peak_flops=191.5e12, power_watts=280)

ESTIMATE_KEYS = {
    "utilisation",
    "flop_hardware",
    "flop_architecture",
    "flop_upper_bound",
    "flop_best",
    "relative_gap",
    "gap_exceeds_tolerance",
    "classification",
    "is_modification",
    "modification_threshold",
    "modification_makes_provider",
    "energy_kwh",
    "facility_energy_kwh",
    "co2e_kg",
}


def run(**overrides) -> ComputeEstimate:
    arguments = {
        "partition": H100,
        "gpu_hours": None,
        "parameters": None,
        "tokens": None,
        "utilisation": None,
        "policy": POLICY,
    }
    arguments.update(overrides)
    return estimate(**arguments)


# Worked examples from the guidelines and DOMAIN.md


def test_guidelines_a100_example_is_1_1e23():
    flop = hardware_flop(gpu_hours=200_000, peak_flops=300e12, utilisation=0.5)
    assert flop == pytest.approx(1.08e23, rel=0.01)
    assert significant(flop) == pytest.approx(1.1e23, rel=0.01)


def test_guidelines_h100_example_is_6_6e23():
    flop = hardware_flop(gpu_hours=370_000, peak_flops=989e12, utilisation=0.5)
    assert flop == pytest.approx(6.6e23, rel=0.01)


def test_architecture_example_3_8b_parameters_3_3t_tokens_is_7_5e22():
    assert architecture_flop(parameters=3.8e9, tokens=3.3e12) == pytest.approx(7.5e22, rel=0.01)


def test_llama_3_1_405b_architecture_estimate_is_3_8e25():
    flop = architecture_flop(parameters=405e9, tokens=15.6e12)
    assert flop == pytest.approx(3.8e25, rel=0.01)
    assert classify(flop, POLICY) == "systemic_risk"


def test_architecture_estimate_of_integer_inputs_is_a_float():
    assert isinstance(architecture_flop(parameters=405_000_000_000, tokens=10), float)


@pytest.mark.parametrize(
    ("partition", "flop", "expected_gpu_hours"),
    [
        (H100, 1e23, 70_000),
        (A100, 1e23, 223_000),
        (LUMI_G_GCD, 1e23, 363_000),
        (H100, 1e25, 7_000_000),
    ],
    ids=["gpai-h100", "gpai-a100", "gpai-lumi-g-gcd", "systemic-risk-h100"],
)
def test_gpu_hours_reaching_the_thresholds_match_the_domain_hints(
    partition, flop, expected_gpu_hours
):
    hours = gpu_hours_for(flop=flop, peak_flops=partition.peak_flops, utilisation=0.4)
    assert hours == pytest.approx(expected_gpu_hours, rel=0.01)


def test_gpu_hours_for_is_the_inverse_of_hardware_flop():
    hours = gpu_hours_for(flop=3.3e23, peak_flops=312e12, utilisation=0.35)
    assert hardware_flop(gpu_hours=hours, peak_flops=312e12, utilisation=0.35) == pytest.approx(
        3.3e23, rel=1e-9
    )


def test_llama_3_1_energy_is_27_5_gwh_of_it_energy():
    kwh = it_energy_kwh(gpu_hours=39.3e6, power_watts=700)
    assert kwh / 1e6 == pytest.approx(27.5, rel=0.01)


def test_facility_energy_multiplies_it_energy_by_pue():
    assert facility_energy_kwh(it_kwh=1000, pue=1.08) == pytest.approx(1080, rel=0.01)


def test_emissions_multiply_facility_energy_by_grid_intensity():
    assert co2e_kg(facility_kwh=1000, grid_kg_per_kwh=0.25) == pytest.approx(250, rel=0.01)


def test_hydropower_site_reports_zero_emissions():
    assert co2e_kg(facility_kwh=1000, grid_kg_per_kwh=0.0) == 0.0


# Significant figures


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (1.08e23, 2, 1.1e23),
        (6.5866e23, 2, 6.6e23),
        (3.7908e25, 2, 3.8e25),
        (7.524e22, 2, 7.5e22),
        (0.012345, 2, 0.012),
        (-2.345, 2, -2.3),
        (987654.0, 3, 988000.0),
        (0.0, 2, 0.0),
    ],
)
def test_significant_keeps_the_requested_number_of_figures(value, digits, expected):
    assert significant(value, digits) == expected


def test_significant_rejects_zero_figures():
    with pytest.raises(ValueError, match="at least one significant figure"):
        significant(1.0, 0)


def test_significant_rejects_infinity():
    with pytest.raises(ValueError, match="finite"):
        significant(float("inf"))


# Classification boundaries


@pytest.mark.parametrize(
    ("flop", "expected"),
    [
        (0.0, "below_gpai"),
        (0.99e23, "below_gpai"),
        (1e23, "gpai"),
        (1.01e23, "gpai"),
        (0.99e25, "gpai"),
        (1e25, "systemic_risk"),
        (1.01e25, "systemic_risk"),
    ],
)
def test_classification_counts_a_threshold_as_met_from_its_value_up(flop, expected):
    assert classify(flop, POLICY) == expected


def test_classification_follows_a_changed_policy():
    lowered = PolicyFigures(gpai_flop=1e22, systemic_risk_flop=1e24)
    assert classify(5e22, lowered) == "gpai"
    assert classify(5e24, lowered) == "systemic_risk"


# Relative gap between the two estimates


def test_relative_gap_is_measured_against_the_smaller_estimate():
    assert relative_gap(1.0e23, 1.5e23) == pytest.approx(0.5, rel=0.01)
    assert relative_gap(1.5e23, 1.0e23) == pytest.approx(0.5, rel=0.01)


def test_relative_gap_of_equal_estimates_is_zero():
    assert relative_gap(2e23, 2e23) == 0.0


def test_relative_gap_is_none_when_an_estimate_is_missing():
    assert relative_gap(None, 1e23) is None
    assert relative_gap(1e23, None) is None


@pytest.mark.parametrize(("a", "b"), [(0.0, 1e23), (1e23, -1.0)])
def test_relative_gap_rejects_estimates_that_are_not_positive(a, b):
    with pytest.raises(ValueError, match="greater than 0"):
        relative_gap(a, b)


def architecture_inputs_for(flop: float) -> dict[str, float]:
    tokens = 1e12
    return {"parameters": flop / (6 * tokens), "tokens": tokens}


def test_gap_of_29_percent_is_within_tolerance():
    hardware = hardware_flop(gpu_hours=100_000, peak_flops=989e12, utilisation=0.4)
    result = run(gpu_hours=100_000, **architecture_inputs_for(hardware * 1.29))
    assert result.relative_gap == pytest.approx(0.29, rel=0.01)
    assert result.gap_exceeds_tolerance is False


def test_gap_of_31_percent_is_flagged():
    hardware = hardware_flop(gpu_hours=100_000, peak_flops=989e12, utilisation=0.4)
    result = run(gpu_hours=100_000, **architecture_inputs_for(hardware / 1.31))
    assert result.relative_gap == pytest.approx(0.31, rel=0.01)
    assert result.gap_exceeds_tolerance is True


def test_gap_is_none_and_unflagged_with_only_one_estimate():
    result = run(gpu_hours=100_000)
    assert result.relative_gap is None
    assert result.gap_exceeds_tolerance is False


def test_gap_is_none_when_no_gpu_hours_are_used_yet():
    result = run(gpu_hours=0, parameters=7e9, tokens=2e12)
    assert result.relative_gap is None
    assert result.flop_best == pytest.approx(8.4e22, rel=0.01)


# Modification rule


def test_modification_threshold_is_a_third_of_known_base_compute():
    threshold = modification_threshold(
        base_model_flop=3.8e25, base_is_systemic_risk=True, policy=POLICY
    )
    assert threshold == pytest.approx(3.8e25 / 3, rel=0.01)


def test_modification_threshold_falls_back_to_a_third_of_the_gpai_threshold():
    threshold = modification_threshold(
        base_model_flop=None, base_is_systemic_risk=False, policy=POLICY
    )
    assert threshold == pytest.approx(1e23 / 3, rel=0.01)


def test_modification_threshold_falls_back_to_a_third_of_the_systemic_risk_threshold():
    threshold = modification_threshold(
        base_model_flop=None, base_is_systemic_risk=True, policy=POLICY
    )
    assert threshold == pytest.approx(1e25 / 3, rel=0.01)


def test_modification_threshold_follows_the_policy_share():
    policy = PolicyFigures(modification_share=0.25)
    threshold = modification_threshold(
        base_model_flop=8e23, base_is_systemic_risk=False, policy=policy
    )
    assert threshold == pytest.approx(2e23, rel=0.01)


def test_fine_tune_above_a_third_of_known_base_compute_makes_a_provider():
    base = 3e23
    result = run(base_model="open-base-7b", base_model_flop=base, **architecture_inputs_for(1.1e23))
    assert result.is_modification is True
    assert result.modification_threshold == pytest.approx(1e23, rel=0.01)
    assert result.modification_makes_provider is True
    assert result.classification == "gpai"


def test_fine_tune_below_a_third_of_known_base_compute_does_not_make_a_provider():
    result = run(base_model="open-base-7b", base_model_flop=3e23, **architecture_inputs_for(0.9e23))
    assert result.modification_makes_provider is False


def test_fine_tune_of_unknown_gpai_base_is_judged_against_a_third_of_1e23():
    above = run(base_model="closed-base", **architecture_inputs_for(3.4e22))
    below = run(base_model="closed-base", **architecture_inputs_for(3.2e22))
    assert above.modification_threshold == pytest.approx(1e23 / 3, rel=0.01)
    assert above.modification_makes_provider is True
    assert below.modification_makes_provider is False


def test_fine_tune_of_unknown_systemic_risk_base_is_judged_against_a_third_of_1e25():
    result = run(
        base_model="frontier-base",
        base_is_systemic_risk=True,
        **architecture_inputs_for(1e24),
    )
    assert result.modification_threshold == pytest.approx(1e25 / 3, rel=0.01)
    assert result.modification_makes_provider is False
    assert result.classification == "systemic_risk"


def test_modification_is_classified_on_cumulative_compute():
    result = run(base_model="open-base", base_model_flop=9e22, **architecture_inputs_for(2e22))
    assert result.flop_best == pytest.approx(2e22, rel=0.01)
    assert result.classification == "gpai"


def test_training_from_scratch_has_no_modification_figures():
    result = run(gpu_hours=1000)
    assert result.is_modification is False
    assert result.modification_threshold is None
    assert result.modification_makes_provider is None


def test_base_model_compute_without_a_base_model_is_refused():
    with pytest.raises(ValueError, match="name the base model"):
        run(gpu_hours=1000, base_model_flop=1e24)


def test_systemic_risk_base_without_a_base_model_is_refused():
    with pytest.raises(ValueError, match="name the base model"):
        run(gpu_hours=1000, base_is_systemic_risk=True)


# The whole estimate


def test_estimate_uses_the_policy_default_utilisation_when_none_is_given():
    result = run(gpu_hours=70_000)
    assert result.utilisation == 0.4
    assert result.flop_hardware == pytest.approx(1e23, rel=0.01)


def test_estimate_uses_the_given_utilisation():
    result = run(gpu_hours=370_000, utilisation=0.5)
    assert result.utilisation == 0.5
    assert result.flop_hardware == pytest.approx(6.6e23, rel=0.01)


def test_upper_bound_is_hardware_compute_at_full_utilisation():
    result = run(gpu_hours=100_000, utilisation=0.4)
    assert result.flop_upper_bound == pytest.approx(result.flop_hardware / 0.4, rel=0.01)


def test_upper_bound_is_the_architecture_estimate_without_gpu_hours():
    result = run(parameters=3.8e9, tokens=3.3e12)
    assert result.flop_hardware is None
    assert result.flop_upper_bound == pytest.approx(7.5e22, rel=0.01)


def test_upper_bound_is_never_below_the_best_estimate():
    result = run(gpu_hours=1000, parameters=405e9, tokens=15.6e12)
    assert result.flop_upper_bound == pytest.approx(3.8e25, rel=0.01)
    assert result.flop_upper_bound >= result.flop_best


def test_best_estimate_is_the_larger_estimate():
    result = run(gpu_hours=71_000, parameters=3.8e9, tokens=3.3e12)
    assert result.flop_best == result.flop_hardware
    assert result.flop_best == pytest.approx(1.01e23, rel=0.01)
    assert result.classification == "gpai"


def test_synthetic_data_compute_counts_towards_the_best_estimate_and_upper_bound():
    result = run(parameters=3.8e9, tokens=3.3e12, synthetic_data_flop=3e22)
    assert result.flop_best == pytest.approx(1.05e23, rel=0.01)
    assert result.flop_upper_bound == pytest.approx(1.05e23, rel=0.01)
    assert result.classification == "gpai"


def test_nothing_known_gives_zero_compute_below_gpai():
    result = run()
    assert result.flop_best == 0.0
    assert result.flop_hardware is None
    assert result.flop_architecture is None
    assert result.flop_upper_bound is None
    assert result.classification == "below_gpai"
    assert result.energy_kwh is None


def test_gpu_hours_without_a_partition_give_no_hardware_figures():
    result = run(partition=None, gpu_hours=100_000)
    assert result.flop_hardware is None
    assert result.flop_upper_bound is None
    assert result.energy_kwh is None
    assert result.facility_energy_kwh is None
    assert result.co2e_kg is None


def test_parameters_without_tokens_give_no_architecture_estimate():
    result = run(parameters=7e9)
    assert result.flop_architecture is None


def test_estimate_carries_energy_facility_energy_and_emissions_of_the_partition():
    result = run(gpu_hours=10_000)
    assert result.energy_kwh == pytest.approx(7_000, rel=0.01)
    assert result.facility_energy_kwh == pytest.approx(7_560, rel=0.01)
    assert result.co2e_kg == pytest.approx(1_512, rel=0.01)


def test_to_dict_has_exactly_the_estimate_fields_and_is_json_safe():
    result = run(
        gpu_hours=100_000,
        parameters=7e9,
        tokens=2e12,
        base_model="open-base",
        base_model_flop=1e23,
    )
    as_dict = result.to_dict()
    assert set(as_dict) == ESTIMATE_KEYS
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict


def test_to_dict_of_an_empty_estimate_is_json_safe():
    as_dict = run(partition=None).to_dict()
    assert set(as_dict) == ESTIMATE_KEYS
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict


def test_estimate_is_immutable():
    result = run(gpu_hours=1000)
    with pytest.raises(AttributeError):
        result.flop_best = 0.0


# Validation


@pytest.mark.parametrize("utilisation", [0.0, -0.1, 1.01, float("nan")])
def test_utilisation_outside_zero_to_one_is_refused(utilisation):
    with pytest.raises(ValueError, match="Utilisation must be greater than 0 and at most 1"):
        run(gpu_hours=1000, utilisation=utilisation)


def test_full_utilisation_is_accepted():
    assert run(gpu_hours=1000, utilisation=1.0).utilisation == 1.0


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("gpu_hours", "GPU-hours must be a number of 0 or more"),
        ("parameters", "number of parameters must be a number of 0 or more"),
        ("tokens", "number of training tokens must be a number of 0 or more"),
        ("synthetic_data_flop", "Synthetic-data compute must be a number of 0 or more"),
    ],
)
def test_negative_inputs_are_refused(field, message):
    arguments = {"gpu_hours": 10.0, "parameters": 1e9, "tokens": 1e12}
    arguments[field] = -1.0
    with pytest.raises(ValueError, match=message):
        run(**arguments)


def test_non_positive_base_model_compute_is_refused():
    with pytest.raises(ValueError, match="base model's compute must be a number greater than 0"):
        run(base_model="open-base", base_model_flop=0.0)


def test_infinite_gpu_hours_are_refused():
    with pytest.raises(ValueError, match="GPU-hours"):
        hardware_flop(gpu_hours=float("inf"), peak_flops=989e12, utilisation=0.4)


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"peak_flops": 0.0, "power_watts": 700}, "Peak FLOP/s"),
        ({"peak_flops": 989e12, "power_watts": -1}, "GPU power"),
        ({"peak_flops": 989e12, "power_watts": 700, "pue": 0.9}, "PUE must be 1 or more"),
        (
            {"peak_flops": 989e12, "power_watts": 700, "grid_kg_per_kwh": -0.1},
            "Grid carbon intensity",
        ),
    ],
)
def test_impossible_partition_figures_are_refused(figures, message):
    with pytest.raises(ValueError, match=message):
        PartitionFigures(**figures)


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"gpai_flop": 0.0}, "GPAI threshold"),
        ({"gpai_flop": 1e25, "systemic_risk_flop": 1e25}, "above the GPAI threshold"),
        ({"modification_share": 0.0}, "modification share"),
        ({"warning_share": 1.5}, "warning share"),
        ({"default_utilisation": 0.0}, "default utilisation"),
    ],
)
def test_impossible_policy_figures_are_refused(figures, message):
    with pytest.raises(ValueError, match=message):
        PolicyFigures(**figures)


def test_gpu_hours_for_rejects_zero_peak():
    with pytest.raises(ValueError, match="Peak FLOP/s"):
        gpu_hours_for(flop=1e23, peak_flops=0.0, utilisation=0.4)


def test_facility_energy_rejects_pue_below_one():
    with pytest.raises(ValueError, match="PUE must be 1 or more"):
        facility_energy_kwh(it_kwh=100, pue=0.5)


def test_use_projection_carries_the_rate_so_far_to_the_end_date():
    from datetime import date

    from systems.estimates import use_projection

    today = date(2026, 3, 10)
    halfway = use_projection(
        used=1_000, granted=10_000, start=date(2026, 3, 1), end=date(2026, 3, 20), today=today
    )
    assert halfway.rate_per_day == 100  # ten days, today included
    assert halfway.at_end == 2_000 and halfway.runs_out_on is None
    assert halfway.used_share == 0.1 and halfway.at_end_share == 0.2
    fast = use_projection(
        used=8_000, granted=10_000, start=date(2026, 3, 1), end=date(2026, 3, 30), today=today
    )
    assert fast.runs_out_on == date(2026, 3, 13)
    unused = use_projection(
        used=0, granted=10_000, start=date(2026, 3, 1), end=date(2026, 3, 30), today=today
    )
    assert unused.rate_per_day is None and unused.at_end == 0 and unused.remaining == 10_000
    future = use_projection(
        used=0, granted=10, start=date(2026, 4, 1), end=date(2026, 4, 30), today=today
    )
    assert future.rate_per_day is None
