"""Partitions' GPU slice profiles and calls' usage grace: what the admin may enter."""

import pytest
from django.core.exceptions import ValidationError

from systems.estimates import NVIDIA_MIG_SHARES
from systems.models import Partition

pytestmark = pytest.mark.django_db


def partition(accelerator: str, profiles=None) -> Partition:
    return Partition(
        name="p", accelerator=accelerator, gpus_per_node=4, nodes=1, peak_tflops=1, power_watts=1,
        gpu_slice_profiles=profiles,
    )  # fmt: skip


def test_an_nvidia_partition_that_declares_no_profiles_has_the_a100_h100_table():
    assert partition("NVIDIA H100 64 GB").slice_profiles() == NVIDIA_MIG_SHARES
    assert NVIDIA_MIG_SHARES["1g"] == pytest.approx(1 / 7)


def test_another_partition_has_no_slices_unless_it_declares_them():
    assert partition("AMD MI250X, counted per GCD").slice_profiles() == {}
    assert partition("NVIDIA A30", {"1g": 0.25}).slice_profiles() == {"1g": 0.25}
    assert partition("NVIDIA A100", {}).slice_profiles() == {}


@pytest.mark.parametrize("profiles", [[], {"1g": 0}, {"1g": 1.5}, {"1g": "1/7"}, {"": 0.5}])
def test_a_profile_share_must_be_a_share_of_one_gpu(profiles):
    with pytest.raises(ValidationError, match="share of one GPU"):
        partition("NVIDIA A30", profiles).clean()
