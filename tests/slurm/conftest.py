"""The real Slurm test cluster of docker/slurm-test, for tests marked `slurm`.

Without a cluster that answers `sinfo` they skip, saying why; with HPCGATE_REQUIRE_SLURM=1 (as
in CI) they fail instead. Each test starts and ends with Slurm's accounts, users and QOS wiped
(tests/slurm_cluster.py reset_accounting) and names its accounts with this run's suffix, so that
job records that sacct keeps from earlier runs never count for it.
"""

import os
from pathlib import Path

import pytest

from tests.slurm.helpers import UNIX_USERS
from tests.slurm_cluster import SlurmCluster, ensure_unix_user, reset_accounting

# The first line up.sh writes into its slurm.conf.
TEST_CLUSTER_MARK = "Written by hpcgate docker/slurm-test/up.sh"


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    cluster = SlurmCluster.from_environment()
    problem = None
    if cluster is None or not cluster.answers():
        problem = (
            "no Slurm test cluster answers sinfo (as root: bash docker/slurm-test/up.sh, then "
            "source /var/tmp/hpcgate-slurm/env.sh)"
        )
    elif TEST_CLUSTER_MARK not in Path(cluster.slurm_conf).read_text(errors="replace"):
        # These tests delete every account: never on a cluster that up.sh did not make.
        problem = f"{cluster.slurm_conf} is not the test cluster of docker/slurm-test/up.sh"
    elif os.geteuid() != 0:
        problem = "the Slurm tests submit jobs as other Unix users, which needs root"
    if problem:
        if os.environ.get("HPCGATE_REQUIRE_SLURM") == "1":
            pytest.fail(f"{problem}, and HPCGATE_REQUIRE_SLURM=1")
        pytest.skip(problem)
    for user in UNIX_USERS:
        ensure_unix_user(user)
    return cluster


@pytest.fixture
def slurm(slurm_cluster, monkeypatch) -> SlurmCluster:
    """The cluster, wiped before and after the test; SLURM_CONF set for code that runs sacctmgr."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.slurm_conf)
    reset_accounting(slurm_cluster)
    yield slurm_cluster
    reset_accounting(slurm_cluster)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Every test wipes the cluster's accounts: under xdist they all run on one worker, in turn.
    # First, so that xdist's grouping sees the marker whatever else reorders or deselects.
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group(name="slurm-cluster"))
