"""Accelerator memory: reference figures per partition, one job's memory, a group's memory."""

from datetime import timedelta

import pytest

from compliance.models import Alert
from systems.models import Partition, ThresholdPolicy
from systems.reference import reference_data_seed
from tests.compliance.factories import allocation, job, midnight, organisation, raised


def test_seeded_partitions_carry_the_memory_of_one_scheduler_gpu(reference_data):
    memory = dict(Partition.objects.values_list("cluster__name", "memory_gb_per_gpu"))
    assert memory == {
        "lumi": 64,
        "leonardo": 64,
        "marenostrum5": 64,
        "jupiter": 96,
        "vega": 40,
        "meluxina": 40,
    }


def test_seeding_again_fills_a_missing_figure_and_keeps_a_site_figure(reference_data):
    Partition.objects.filter(cluster__name="vega").update(memory_gb_per_gpu=None)
    Partition.objects.filter(cluster__name="lumi").update(memory_gb_per_gpu=128)
    reference_data_seed()
    memory = dict(Partition.objects.values_list("cluster__name", "memory_gb_per_gpu"))
    assert (memory["vega"], memory["lumi"]) == (40, 128)


def test_one_job_above_the_memory_level_raises_job_memory(reference_data):
    big = allocation(organisation("DE-BIG-1"), "jupiter", "big_llm")
    day = midnight(4)
    record = job(big, 1100, day, day + timedelta(hours=2))  # 1,100 x 96 GB

    lines = raised()

    assert ("job_memory", "allocation", "big_llm", "105600", "65536") in lines
    alert = Alert.objects.get(level="job_memory")
    assert alert.allocation == big
    assert alert.evidence["jobs"][0]["job_id"] == record.job_id
    assert alert.evidence["jobs"][0]["gpus"] == 1100


def test_the_same_gpus_with_less_memory_stay_below_the_level(reference_data):
    small = allocation(organisation("SI-SMALL-1"), "vega", "small_llm")
    day = midnight(4)
    job(small, 1100, day, day + timedelta(hours=2))  # 1,100 x 40 GB = 44,000 GB

    assert not [line for line in raised() if line[0] == "job_memory"]


def test_jobs_on_a_partition_without_a_memory_figure_count_towards_no_memory_level(
    reference_data,
):
    Partition.objects.filter(cluster__name="jupiter").update(memory_gb_per_gpu=None)
    big = allocation(organisation("DE-BIG-1"), "jupiter", "big_llm")
    day = midnight(4)
    job(big, 1100, day, day + timedelta(hours=2))

    assert not [line for line in raised() if line[0] == "job_memory"]


def test_a_job_counts_the_memory_of_the_partition_it_ran_on(reference_data):
    big = allocation(organisation("DE-BIG-1"), "jupiter", "big_llm")
    other = Partition.objects.create(
        cluster=big.cluster,
        name="booster-small",
        accelerator="NVIDIA A100 40 GB",
        gpus_per_node=4,
        nodes=10,
        peak_tflops=312,
        power_watts=400,
        memory_gb_per_gpu=40,
    )
    day = midnight(4)
    job(big, 1100, day, day + timedelta(hours=2), partition=other)

    assert not [line for line in raised() if line[0] == "job_memory"]


def test_a_group_holding_memory_on_two_systems_raises_footprint_memory(reference_data):
    ThresholdPolicy.objects.update(footprint_gpus=None, footprint_memory_gb=10_000)
    parent = organisation("DE-PARENT-1")
    child = organisation("FI-CHILD-2", controlled_by="DE-PARENT-1")
    jup = allocation(parent, "jupiter", "parent_llm")
    vega = allocation(child, "vega", "kid_llm")
    day = midnight(6)
    job(jup, 100, day, day + timedelta(hours=30))  # 9,600 GB
    job(vega, 20, day, day + timedelta(hours=30))  # 800 GB

    lines = raised()

    assert ("footprint_memory", "organisation", "DE-PARENT-1", "10400", "10000") in lines
    assert not [line for line in lines if line[0] == "footprint_gpus"]


@pytest.mark.parametrize("field", ["plan_overrun_factor", "model_declaration_factor"])
def test_the_policy_refuses_a_factor_of_zero(reference_data, field):
    from django.core.exceptions import ValidationError

    policy = ThresholdPolicy.objects.get()
    setattr(policy, field, 0)
    with pytest.raises(ValidationError) as error:
        policy.full_clean()
    assert field in error.value.message_dict
