#!/usr/bin/env python3
"""hpcgate site agent: keeps one Slurm cluster's accounts in step with hpcgate and sends back its
accounting. Runs on the cluster's admin node (where sacctmgr and sacct work) from cron or a
systemd timer; Python 3.9+ and its standard library, nothing else.

Each run:

1. reports any export it applied earlier but could not report (network down...);
2. finishes an export it started and could not finish (sacctmgr failed half-way), then reports it;
3. fetches the cluster's pending changes (GET /api/v1/clusters/<cluster>/pending-changes/), runs
   each sacctmgr command of it, and reports it applied (POST /api/v1/exports/<id>/applied/);
4. runs sacct for the jobs since its last successful pull (less an overlap: re-importing a job
   never counts it twice), posts the output to /api/v1/usage/imports/ and waits for the import's
   result (201/200 with the result, or 202 with the run's URL to poll).

Only `sacctmgr -i add|modify|remove account|user|qos ...` lines are run, each as an argument list
without a shell. A lock file keeps two runs apart; the state file (JSON, in the state directory)
remembers what was applied, how far a stopped export got and when accounting was last pulled.

Configuration: an ini file (--config, default /etc/hpcgate-agent.ini when it exists) with a
[hpcgate] section, overridden by environment variables:

    url             HPCGATE_URL                     https://hpcgate.example.eu (required)
    token_file      HPCGATE_SITE_TOKEN_FILE         file holding the site token, or
    token           HPCGATE_SITE_TOKEN              the site token itself (required, one of two)
    cluster         HPCGATE_CLUSTER                 the cluster's name in hpcgate (required)
    state_dir       HPCGATE_AGENT_STATE_DIR         /var/lib/hpcgate-agent
    sacctmgr        HPCGATE_SACCTMGR                sacctmgr
    sacct           HPCGATE_SACCT                   sacct
    overlap_minutes HPCGATE_AGENT_OVERLAP_MINUTES   60: each pull starts this long before the
                                                    last one ended
    first_pull_days HPCGATE_AGENT_FIRST_PULL_DAYS   1: how far back the very first pull goes
    import_timeout  HPCGATE_AGENT_IMPORT_TIMEOUT    900 seconds to wait for an import's result
    http_timeout    HPCGATE_AGENT_HTTP_TIMEOUT      60 seconds per request
    ca_file         HPCGATE_CA_FILE                 CA bundle for the server's certificate

Exit status: 0 all done (or another run holds the lock), 1 something failed (said on stderr;
the next run retries), 2 configuration error.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shlex
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VERSION = "1"
DEFAULT_CONFIG = "/etc/hpcgate-agent.ini"
STATE_VERSION = 1
APPLIED_KEPT = 100
SACCT_FIELDS = (
    "JobIDRaw,JobID,Account,User,Partition,State,Submit,Start,End,ElapsedRaw,AllocTRES,"
    "NNodes,ConsumedEnergyRaw,JobName"
)
# What a pending-changes script may contain besides comments: nothing but these sacctmgr calls.
ALLOWED_VERBS = frozenset({"add", "modify", "remove"})
ALLOWED_ENTITIES = frozenset({"account", "user", "qos"})
# sacctmgr's words (and exit 1) when an add finds the thing there, or a remove finds it gone.
NOTHING_ADDED = "Nothing new added"
NOTHING_DELETED = "Nothing deleted"
# Import run states that are not final yet.
UNFINISHED_IMPORT_STATES = frozenset(
    {"queued", "pending", "received", "accepted", "started", "running", "processing"}
)
SUCCESSFUL_IMPORT_STATES = frozenset({"done", "finished", "succeeded", "success", "completed"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Seconds before the first look at an import that hpcgate runs in the background; then 1.5x.
FIRST_POLL_PAUSE = 1.0


class ConfigError(Exception):
    pass


class AgentError(Exception):
    """A step failed; the message says what and the next run retries."""


class HttpError(AgentError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    url: str
    token: str
    cluster: str
    state_dir: Path
    sacctmgr: str
    sacct: str
    overlap_minutes: int
    first_pull_days: int
    import_timeout: float
    http_timeout: float
    ca_file: str | None


_SETTINGS = {
    # key: (environment variable, default)
    "url": ("HPCGATE_URL", None),
    "token": ("HPCGATE_SITE_TOKEN", None),
    "token_file": ("HPCGATE_SITE_TOKEN_FILE", None),
    "cluster": ("HPCGATE_CLUSTER", None),
    "state_dir": ("HPCGATE_AGENT_STATE_DIR", "/var/lib/hpcgate-agent"),
    "sacctmgr": ("HPCGATE_SACCTMGR", "sacctmgr"),
    "sacct": ("HPCGATE_SACCT", "sacct"),
    "overlap_minutes": ("HPCGATE_AGENT_OVERLAP_MINUTES", "60"),
    "first_pull_days": ("HPCGATE_AGENT_FIRST_PULL_DAYS", "1"),
    "import_timeout": ("HPCGATE_AGENT_IMPORT_TIMEOUT", "900"),
    "http_timeout": ("HPCGATE_AGENT_HTTP_TIMEOUT", "60"),
    "ca_file": ("HPCGATE_CA_FILE", None),
}


def load_config(path: str | None, environ: dict[str, str]) -> Config:
    values: dict[str, str | None] = {key: default for key, (_, default) in _SETTINGS.items()}
    config_path = path or environ.get("HPCGATE_AGENT_CONFIG")
    if config_path is None and Path(DEFAULT_CONFIG).exists():
        config_path = DEFAULT_CONFIG
    if config_path is not None:
        parser = configparser.ConfigParser()
        try:
            with open(config_path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as error:
            raise ConfigError(f"cannot read {config_path}: {error}") from error
        if parser.has_section("hpcgate"):
            for key, value in parser.items("hpcgate"):
                if key not in _SETTINGS:
                    raise ConfigError(f"{config_path}: unknown setting {key!r}")
                values[key] = value
    for key, (variable, _) in _SETTINGS.items():
        if environ.get(variable):
            values[key] = environ[variable]

    token = values["token"]
    if values["token_file"] and not environ.get("HPCGATE_SITE_TOKEN"):
        try:
            token = Path(values["token_file"]).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"cannot read the token file: {error}") from error
    missing = [name for name in ("url", "cluster") if not values[name]]
    if not token:
        missing.append("token or token_file")
    if missing:
        raise ConfigError(f"missing setting(s): {', '.join(missing)}")
    url = values["url"].rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError(f"{url}: use https (plain http only to this machine)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url} is not an http(s) URL")
    try:
        numbers = {
            "overlap_minutes": int(values["overlap_minutes"]),
            "first_pull_days": int(values["first_pull_days"]),
            "import_timeout": float(values["import_timeout"]),
            "http_timeout": float(values["http_timeout"]),
        }
    except ValueError as error:
        raise ConfigError(f"not a number: {error}") from error
    if any(value < 0 for value in numbers.values()):
        raise ConfigError("numbers in the configuration cannot be negative")
    return Config(
        url=url,
        token=token,
        cluster=values["cluster"],
        state_dir=Path(values["state_dir"]),
        sacctmgr=values["sacctmgr"],
        sacct=values["sacct"],
        ca_file=values["ca_file"],
        **numbers,
    )


# --- state and lock ---------------------------------------------------------------------------


class State:
    """The agent's memory between runs, one JSON file written atomically.

    - ``unreported``: exports applied in full whose report has not reached hpcgate yet;
    - ``unfinished``: an export being applied: its content, the indices of the commands done,
      and the one running when the agent stopped (it may or may not have taken effect);
    - ``applied``: the ids of the last exports this agent applied, never to be applied again;
    - ``last_pull_end``: the end of the window of the last accounting pull hpcgate accepted.
    """

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path, cluster: str) -> State:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as error:
            raise AgentError(f"cannot read the state file {path}: {error}") from error
        if data and data.get("cluster") not in (None, cluster):
            raise AgentError(
                f"the state file {path} belongs to cluster {data['cluster']}, not {cluster}"
            )
        data.setdefault("version", STATE_VERSION)
        data["cluster"] = cluster
        data.setdefault("unreported", [])
        data.setdefault("unfinished", None)
        data.setdefault("applied", [])
        data.setdefault("last_pull_end", None)
        return cls(path, data)

    def save(self) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def run_lock(state_dir: Path):
    """Yields True when this run holds the lock, False when another run does."""
    with open(state_dir / "agent.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- talking to hpcgate -----------------------------------------------------------------------


class Server:
    def __init__(self, config: Config):
        self.config = config
        self.context = ssl.create_default_context(cafile=config.ca_file)

    def url(self, path: str) -> str:
        """``path`` (or a URL hpcgate gave) under the configured URL; never another server."""
        url = urllib.parse.urljoin(self.config.url + "/", path.lstrip("/"))
        base, target = urllib.parse.urlsplit(self.config.url), urllib.parse.urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise AgentError(f"hpcgate pointed to {url}, outside {self.config.url}")
        return url

    def request(
        self,
        method: str,
        url: str,
        *,
        body=None,
        content_type: str | None = None,
        length: int | None = None,
    ) -> tuple[int, dict[str, str], dict]:
        """(status, headers, JSON body) of one request; HttpError unless 2xx."""
        headers = {
            "Authorization": f"SiteToken {self.config.token}",
            "Accept": "application/json",
            "User-Agent": f"hpcgate-agent/{VERSION}",
        }
        if content_type:
            headers["Content-Type"] = content_type
        if length is not None:
            headers["Content-Length"] = str(length)
        # Every URL comes through url(): the configured http(s) server only.
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.config.http_timeout, context=self.context
            ) as response:
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as error:
            detail = _json(error.read())
            message = detail.get("detail") or detail or error.reason
            raise HttpError(f"{method} {url}: {error.code} {message}", error.code) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HttpError(f"{method} {url}: {reason}") from error

    def get(self, path_or_url: str) -> dict:
        return self.request("GET", self.url(path_or_url))[2]

    def post_json(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        return self.request("POST", self.url(path), body=body, content_type="application/json")[2]


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeError, ValueError):
        return {"detail": raw[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"detail": value}


# --- applying changes -------------------------------------------------------------------------


def parse_commands(content: str) -> list[list[str]]:
    """The sacctmgr argument lists of a pending-changes script; AgentError on anything else."""
    commands = []
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#") or text == "set -e":
            continue
        try:
            argv = shlex.split(text)
        except ValueError as error:
            raise AgentError(f"line {number} of the export: {error}") from error
        # hpcgate writes each command as shlex.join(argv): anything else did not come from it.
        if (
            len(argv) < 5
            or argv[:2] != ["sacctmgr", "-i"]
            or argv[2] not in ALLOWED_VERBS
            or argv[3] not in ALLOWED_ENTITIES
            or shlex.join(argv) != text
        ):
            raise AgentError(f"line {number} of the export is not a sacctmgr change: {text!r}")
        commands.append(argv)
    return commands


class Agent:
    def __init__(self, config: Config, state: State, *, dry_run: bool, out=None, err=None):
        self.config = config
        self.state = state
        self.dry_run = dry_run
        self.server = Server(config)
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def say(self, message: str) -> None:
        print(f"hpcgate-agent: {message}", file=self.out, flush=True)

    def warn(self, message: str) -> None:
        print(f"hpcgate-agent: {message}", file=self.err, flush=True)

    # changes

    def apply_changes(self) -> None:
        self.report_unreported()
        unfinished = self.state.data["unfinished"]
        if unfinished is not None:
            self.say(f"export {unfinished['id']} stopped half-way last time: finishing it")
            self.apply(unfinished)
        path = f"/api/v1/clusters/{urllib.parse.quote(self.config.cluster)}/pending-changes/"
        answer = self.server.get(path)
        export = answer.get("export")
        if not export:
            self.say(f"no pending changes for cluster {self.config.cluster}")
            return
        checksum = hashlib.sha256(export["content"].encode("utf-8")).hexdigest()
        if checksum != export["checksum"]:
            raise AgentError(f"export {export['id']} does not match its checksum; not applied")
        if export["id"] in self.state.data["applied"]:
            raise AgentError(
                f"export {export['id']} was applied by this agent already and hpcgate still "
                "hands it out: not applying it twice (see the export history)"
            )
        job = {
            "id": export["id"],
            "checksum": export["checksum"],
            "content": export["content"],
            "done": [],
            "running": None,
        }
        self.apply(job)

    def report_unreported(self) -> None:
        for entry in list(self.state.data["unreported"]):
            if self.dry_run:
                self.say(f"would report export {entry['id']} applied")
                continue
            self.report(entry)

    def report(self, entry: dict) -> None:
        try:
            answer = self.server.post_json(
                f"/api/v1/exports/{entry['id']}/applied/", {"checksum": entry["checksum"]}
            )
        except HttpError as error:
            if error.status in (400, 403, 404, 409):
                # hpcgate will not take this report, now or later: keep the run going.
                self.warn(f"hpcgate refused the report of export {entry['id']}: {error}")
            else:
                raise
        else:
            self.say(f"reported export {entry['id']} applied at {answer.get('applied_at')}")
        self.state.data["unreported"] = [
            other for other in self.state.data["unreported"] if other["id"] != entry["id"]
        ]
        self.state.save()

    def apply(self, job: dict) -> None:
        commands = parse_commands(job["content"])
        if self.dry_run:
            self.say(f"would apply export {job['id']} ({len(commands)} commands):")
            for index, argv in enumerate(commands):
                mark = "  (done)" if index in job["done"] else ""
                print(f"  {shlex.join(argv)}{mark}", file=self.out)
            self.say(f"would report export {job['id']} applied")
            return
        # Set only when the agent died in the middle of that command: it may have taken effect.
        interrupted = job["running"]
        self.state.data["unfinished"] = job
        self.state.save()
        for index, argv in enumerate(commands):
            if index in job["done"]:
                continue
            job["running"] = index
            self.state.save()
            try:
                self.run_sacctmgr(argv, may_be_done=index == interrupted)
            except AgentError:
                job["running"] = None
                self.state.save()
                raise
            job["done"].append(index)
            job["running"] = None
            self.state.save()
        self.say(f"applied export {job['id']} ({len(commands)} commands)")
        entry = {"id": job["id"], "checksum": job["checksum"]}
        self.state.data["unreported"].append(entry)
        self.state.data["applied"] = [*self.state.data["applied"], job["id"]][-APPLIED_KEPT:]
        self.state.data["unfinished"] = None
        self.state.save()
        self.report(entry)

    def run_sacctmgr(self, argv: list[str], *, may_be_done: bool) -> None:
        command = [self.config.sacctmgr, *argv[1:]]
        try:
            done = subprocess.run(  # noqa: S603 - a checked sacctmgr argument list, no shell
                command, capture_output=True, text=True, timeout=300, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise AgentError(f"{shlex.join(argv)}: {error}") from error
        if done.returncode == 0:
            return
        said = f"{done.stdout}\n{done.stderr}"
        verb, entity = argv[2], argv[3]
        # Already as wanted: a membership that exists, one that is gone, or the command this
        # agent was running when it stopped last time.
        if NOTHING_DELETED in said and verb == "remove":
            return
        if NOTHING_ADDED in said and (entity == "user" or may_be_done):
            return
        output = " ".join(said.split())
        raise AgentError(f"{shlex.join(argv)} exited {done.returncode}: {output}")

    # accounting

    def push_usage(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
        last = self.state.data["last_pull_end"]
        if last:
            start = dt.datetime.fromisoformat(last) - dt.timedelta(
                minutes=self.config.overlap_minutes
            )
        else:
            start = now - dt.timedelta(days=self.config.first_pull_days)
        command = [
            self.config.sacct,
            "--allusers",
            "--parsable2",
            "--allocations",
            "--duplicates",
            f"--starttime={start.isoformat()}",
            f"--endtime={now.isoformat()}",
            f"--format={SACCT_FIELDS}",
        ]
        target = self.server.url("/api/v1/usage/imports/?timezone=UTC")
        if self.dry_run:
            self.say(f"would run: TZ=UTC {shlex.join(command)}")
            self.say(f"would post its output to {target} and wait for the import")
            return
        with tempfile.TemporaryFile(dir=self.config.state_dir) as output:
            environment = {**os.environ, "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}
            try:
                done = subprocess.run(  # noqa: S603 - the configured sacct, fixed arguments
                    command,
                    stdout=output,
                    stderr=subprocess.PIPE,
                    env=environment,
                    timeout=1800,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise AgentError(f"sacct: {error}") from error
            if done.returncode != 0:
                raise AgentError(f"sacct exited {done.returncode}: {done.stderr.decode().strip()}")
            size = output.tell()
            output.seek(0)
            status, headers, body = self.server.request(
                "POST",
                target,
                body=output,
                content_type="text/plain; charset=utf-8",
                length=size,
            )
        result = self.import_result(status, headers, body)
        self.state.data["last_pull_end"] = now.isoformat()
        self.state.save()
        window = f"{start.isoformat()} to {now.isoformat()} UTC"
        self.say(f"accounting {window} imported: {_summary(result)}")

    def import_result(self, status: int, headers: dict[str, str], body: dict) -> dict:
        """The finished import run, whether hpcgate answered with it or with where to ask."""
        if status != 202:
            return _finished(body)
        location = (
            headers.get("Location")
            or headers.get("location")
            or next((body[key] for key in ("url", "run_url", "href") if body.get(key)), None)
        )
        if not location:
            raise AgentError("hpcgate accepted the accounting but gave no URL to follow")
        url = self.server.url(location)
        deadline = time.monotonic() + self.config.import_timeout
        pause = FIRST_POLL_PAUSE
        while _state_of(body) in UNFINISHED_IMPORT_STATES or status == 202:
            if time.monotonic() >= deadline:
                raise AgentError(
                    f"the import at {url} did not finish within {self.config.import_timeout:.0f} s;"
                    " the next run sends the same window again"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 10.0)
            status, _, body = self.server.request("GET", url)
        return _finished(body)


def _state_of(body: dict) -> str:
    return str(body.get("status") or body.get("state") or "").lower()


def _finished(body: dict) -> dict:
    state = _state_of(body)
    if state and state not in SUCCESSFUL_IMPORT_STATES:
        reason = body.get("error") or body.get("detail") or state
        raise AgentError(f"hpcgate's import failed: {reason}")
    return body


def _summary(body: dict) -> str:
    if body.get("summary"):
        return str(body["summary"])
    keys = ("imported", "updated", "unchanged", "steps_skipped", "unmatched", "rejected")
    return " ".join(f"{key}={body[key]}" for key in keys if key in body) or "done"


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hpcgate_agent.py",
        description="Apply hpcgate's pending Slurm changes and send back the accounting.",
    )
    parser.add_argument("--config", help=f"ini file (default {DEFAULT_CONFIG} when present)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be done; apply, report and push nothing",
    )
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--changes-only", action="store_true", help="skip the accounting")
    steps.add_argument("--usage-only", action="store_true", help="skip the Slurm changes")
    parser.add_argument(
        "--forget-unfinished",
        action="store_true",
        help="drop an export that stopped half-way instead of finishing it (after putting Slurm"
        " right by hand, e.g. with manage.py slurm_check --repair)",
    )
    options = parser.parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    try:
        config = load_config(options.config, environ)
        config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (ConfigError, OSError) as error:
        print(f"hpcgate-agent: configuration: {error}", file=sys.stderr)
        return 2

    with run_lock(config.state_dir) as locked:
        if not locked:
            print("hpcgate-agent: another run holds the lock; nothing done", file=sys.stderr)
            return 0
        try:
            state = State.load(config.state_dir / "state.json", config.cluster)
        except AgentError as error:
            print(f"hpcgate-agent: {error}", file=sys.stderr)
            return 1
        agent = Agent(config, state, dry_run=options.dry_run)
        if options.forget_unfinished and state.data["unfinished"]:
            agent.warn(f"forgetting export {state.data['unfinished']['id']}, stopped half-way")
            if not options.dry_run:
                state.data["unfinished"] = None
                state.save()
        failed = False
        steps = []
        if not options.usage_only:
            steps.append(("changes", agent.apply_changes))
        if not options.changes_only:
            steps.append(("accounting", agent.push_usage))
        for name, step in steps:
            try:
                step()
            except AgentError as error:
                agent.warn(f"{name}: {error}")
                failed = True
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
