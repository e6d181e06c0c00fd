import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from systems.models import ThresholdPolicy


def run(*args: str) -> dict:
    out = StringIO()
    call_command("estimate_compute", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(autouse=True)
def seeded(reference_data):
    pass


def test_guidelines_h100_example_within_one_percent():
    # 370,000 H100-hours at 989 TFLOP/s and 50 %: ~6.6e23 (guidelines C(2025) 5045).
    result = run(
        "--cluster",
        "marenostrum5",
        "--partition",
        "acc",
        "--gpu-hours",
        "370000",
        "--utilisation",
        "0.5",
    )
    assert result["flop_hardware"] == pytest.approx(6.6e23, rel=0.01)
    assert result["classification"] == "gpai"
    assert result["flop_architecture"] is None
    assert result["relative_gap"] is None


def test_guidelines_a100_example_within_one_percent():
    # 200,000 A100-hours at 300 TFLOP/s and 50 %: ~1.1e23. Leonardo's A100 peaks at 312, so the
    # figure is scaled to the 300 TFLOP/s the guidelines assume.
    result = run(
        "--cluster",
        "leonardo",
        "--partition",
        "boost_usr_prod",
        "--gpu-hours",
        "200000",
        "--utilisation",
        "0.5",
    )
    assert result["flop_hardware"] * 300 / 312 == pytest.approx(1.08e23, rel=0.01)


def test_architecture_example_and_gap():
    # 6 x 3.8e9 x 3.3e12 = 7.5e22
    result = run(
        "--cluster",
        "jupiter",
        "--partition",
        "booster",
        "--parameters",
        "3.8e9",
        "--tokens",
        "3.3e12",
        "--gpu-hours",
        "50000",
    )
    assert result["flop_architecture"] == pytest.approx(7.5e22, rel=0.01)
    hardware = 50_000 * 3600 * 989e12 * 0.4
    assert result["flop_hardware"] == pytest.approx(hardware)
    assert result["relative_gap"] == pytest.approx((7.524e22 - hardware) / hardware, rel=1e-3)


def test_utilisation_defaults_to_the_policy_in_force():
    result = run("--cluster", "lumi", "--partition", "standard-g", "--gpu-hours", "1000")
    assert result["utilisation"] == 0.4
    ThresholdPolicy.objects.update(default_utilisation=0.3)
    assert (
        run("--cluster", "lumi", "--partition", "standard-g", "--gpu-hours", "1")["utilisation"]
        == 0.3
    )


def test_energy_and_emissions_from_power_pue_and_grid():
    result = run("--cluster", "lumi", "--partition", "standard-g", "--gpu-hours", "1000")
    assert result["energy_kwh"] == pytest.approx(280.0)
    assert result["co2e_kg"] == pytest.approx(280.0 * 1.10 * 0.02)
    assert result["flop_upper_bound"] == pytest.approx(1000 * 3600 * 191.5e12)


def test_without_gpu_hours_energy_follows_the_hours_the_architecture_estimate_needs():
    result = run(
        "--cluster", "vega", "--partition", "gpu", "--parameters", "405e9", "--tokens", "15.6e12"
    )
    assert result["flop_hardware"] is None
    assert result["flop_architecture"] == pytest.approx(3.8e25, rel=0.01)
    assert result["classification"] == "systemic_risk"
    hours = result["flop_architecture"] / (3600 * 312e12 * 0.4)  # Vega A100, default utilisation
    assert result["energy_kwh"] == pytest.approx(hours * 400 / 1000, rel=1e-6)
    assert result["co2e_kg"] > 0


def test_nothing_to_estimate_is_refused():
    with pytest.raises(CommandError, match="Nothing to estimate"):
        call_command("estimate_compute", "--cluster", "vega", "--partition", "gpu")


def test_contract_keys_are_present():
    result = run("--cluster", "vega", "--partition", "gpu", "--gpu-hours", "10")
    for key in (
        "flop_hardware",
        "flop_architecture",
        "flop_upper_bound",
        "relative_gap",
        "classification",
        "energy_kwh",
        "co2e_kg",
    ):
        assert key in result


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cluster", "nowhere", "--partition", "gpu"], "Unknown partition nowhere/gpu"),
        (["--cluster", "lumi", "--partition", "gpu"], "Known partitions"),
        (
            ["--cluster", "lumi", "--partition", "standard-g", "--gpu-hours", "lots"],
            "could not read",
        ),
        (["--cluster", "lumi", "--partition", "standard-g", "--utilisation", "2"], "Utilisation"),
        (["--cluster", "lumi", "--partition", "standard-g", "--parameters", "7e9"], "both"),
    ],
)
def test_errors_are_explained(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("estimate_compute", *args, "--format", "json", stdout=StringIO())


def test_a_failing_run_exits_non_zero_with_the_error_on_stderr(capsys):
    from django.core.management import ManagementUtility

    argv = ["manage.py", "estimate_compute", "--cluster", "nowhere", "--partition", "x"]
    with pytest.raises(SystemExit) as exited:
        ManagementUtility([*argv, "--format", "json"]).execute()
    assert exited.value.code != 0
    captured = capsys.readouterr()
    assert "Unknown partition" in captured.err
    assert captured.out == ""
