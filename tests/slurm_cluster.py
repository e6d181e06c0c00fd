"""Drive the Slurm test cluster of docker/slurm-test/up.sh through Slurm's own commands.

Plain Python (no Django, no pytest) so that tests, scripts and a shell session can share it:

    cluster = SlurmCluster.from_environment()      # None when no cluster is configured
    if cluster and cluster.answers():
        job = cluster.sbatch("--gres=gpu:2", "-A", "acme_llm", "--wrap", "sleep 3", user="alice")
        cluster.wait_for_state(job, {"COMPLETED"})
        print(cluster.sacct("-j", job, "-o", "JobID,AllocTRES"))
        reset_accounting(cluster)

Job submitters must be Unix users that exist before their Slurm user is added (slurmctld maps
names to uids when it learns of an association); ensure_unix_user() creates them.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_DIR = "/var/tmp/hpcgate-slurm"
# Job states after which nothing more happens to a job (sacct's spelling, first word only).
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
# What reset_accounting() never deletes: Slurm's own root account and user and its default QOS.
KEEP_ACCOUNTS = frozenset({"root"})
KEEP_USERS = frozenset({"root"})
KEEP_QOS = frozenset({"normal"})


class SlurmError(RuntimeError):
    """A Slurm command failed; the message carries the command and what it printed."""


class SlurmCluster:
    def __init__(self, slurm_conf: str | os.PathLike, cluster: str = "lumi"):
        self.slurm_conf = str(slurm_conf)
        self.name = cluster

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> SlurmCluster | None:
        """The cluster named by SLURM_CONF, else by the env.sh in HPCGATE_SLURM_DIR (or the
        default state directory); None when neither exists."""
        environ = os.environ if environ is None else environ
        cluster = environ.get("HPCGATE_SLURM_CLUSTER", "lumi")
        if environ.get("SLURM_CONF"):
            return cls(environ["SLURM_CONF"], cluster)
        conf = Path(environ.get("HPCGATE_SLURM_DIR", DEFAULT_DIR)) / "etc" / "slurm.conf"
        return cls(conf, cluster) if conf.is_file() else None

    # --- running commands ---------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": self.slurm_conf}

    def run(
        self,
        *argv: str,
        user: str | None = None,
        check: bool = True,
        timeout: float = 60,
        cwd: str = "/tmp",
    ) -> subprocess.CompletedProcess[str]:
        """Runs argv (a Slurm command and its arguments), as `user` when given (via runuser,
        which needs root). With check, a non-zero exit raises SlurmError."""
        command = list(argv)
        if user is not None and user != pwd.getpwuid(os.geteuid()).pw_name:
            conf = f"SLURM_CONF={self.slurm_conf}"
            command = ["runuser", "-u", user, "--", "env", conf, *command]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=self.env(),
                timeout=timeout,
                cwd=cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SlurmError(f"{' '.join(command)}: no answer within {timeout}s") from exc
        if check and done.returncode != 0:
            raise SlurmError(
                f"{' '.join(command)} exited {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done

    def answers(self, timeout: float = 5) -> bool:
        """True when slurmctld answers sinfo within `timeout` seconds."""
        try:
            return self.run("sinfo", "-h", "-o", "%P", check=False, timeout=timeout).returncode == 0
        except (SlurmError, OSError):
            return False

    def sbatch(self, *args: str, user: str | None = None) -> str:
        """Submits a batch job and returns its id (the het or array job's leading id).
        Output goes to /dev/null unless the arguments say otherwise."""
        has_output = any(a.startswith(("-o", "--output")) for a in args)
        extra = [] if has_output else ["--output=/dev/null"]
        out = self.run("sbatch", "--parsable", *extra, *args, user=user).stdout.strip()
        return out.split(";")[0]

    def sacct(self, *args: str, user: str | None = None) -> str:
        return self.run("sacct", *args, user=user).stdout

    def sacctmgr(self, *args: str, user: str | None = None, check: bool = True) -> str:
        """sacctmgr without its confirmation prompt (-i)."""
        return self.run("sacctmgr", "-i", *args, user=user, check=check).stdout

    def scontrol(self, *args: str, user: str | None = None) -> str:
        return self.run("scontrol", *args, user=user).stdout

    # --- jobs ---------------------------------------------------------------------------------

    def job_states(self, job_id: str) -> dict[str, str]:
        """{JobID: state} for every allocation of the job (array tasks and het components
        each have their own line); the state is its first word ("CANCELLED by 0" -> CANCELLED)."""
        out = self.sacct("--allusers", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State")
        states = {}
        for line in out.splitlines():
            if "|" in line:
                jid, state = line.split("|", 1)
                states[jid] = state.split(" ")[0]
        return states

    def wait_for_state(
        self,
        job_id: str,
        states: Iterable[str] = FINAL_STATES,
        timeout: float = 60,
        poll: float = 0.5,
    ) -> dict[str, str]:
        """Waits until every allocation of the job is in one of `states` (default: finished)
        and returns job_states(); SlurmError after `timeout` seconds."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            current = self.job_states(job_id)
            if current and set(current.values()) <= wanted:
                return current
            if time.monotonic() >= deadline:
                raise SlurmError(
                    f"job {job_id} is {current or 'unknown'} after {timeout}s, "
                    f"not in {sorted(wanted)}"
                )
            time.sleep(poll)

    def queued_job_ids(self) -> list[str]:
        out = self.run("squeue", "-h", "-o", "%A").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    # --- accounting -------------------------------------------------------------------------

    def names(self, entity: str, field: str = "name") -> list[str]:
        """Every account, user or qos name sacctmgr knows (entity: account|user|qos)."""
        out = self.run("sacctmgr", "-n", "-P", "show", entity, f"format={field}").stdout
        return sorted({line.strip() for line in out.splitlines() if line.strip()})


def ensure_unix_user(name: str) -> int:
    """Creates the Unix user (no password, a home directory) when missing; returns its uid."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name).pw_uid


def reset_accounting(
    cluster: SlurmCluster,
    timeout: float = 30,
    keep_accounts: Sequence[str] = (),
    keep_users: Sequence[str] = (),
    keep_qos: Sequence[str] = (),
) -> None:
    """Cancels every job, then deletes every account, user and QOS except Slurm's own
    (root, root, normal) and the ones named. Job records stay in sacct."""
    jobs = cluster.queued_job_ids()
    if jobs:
        cluster.run("scancel", *jobs, check=False)
        deadline = time.monotonic() + timeout
        while cluster.queued_job_ids():
            if time.monotonic() >= deadline:
                raise SlurmError(f"jobs still queued {timeout}s after scancel")
            time.sleep(0.5)
    users = sorted(set(cluster.names("user", "user")) - KEEP_USERS - set(keep_users))
    if users:
        cluster.sacctmgr("delete", "user", "name=" + ",".join(users))
    accounts = sorted(set(cluster.names("account", "account")) - KEEP_ACCOUNTS - set(keep_accounts))
    if accounts:
        cluster.sacctmgr("delete", "account", "name=" + ",".join(accounts))
    qos = sorted(set(cluster.names("qos")) - KEEP_QOS - set(keep_qos))
    if qos:
        cluster.sacctmgr("delete", "qos", "name=" + ",".join(qos))
