"""Fuzz the running API against its own OpenAPI schema with Schemathesis, as each demo role.

Starts gunicorn on a free loopback port with the database of the environment (DATABASE_URL, or
a scratch SQLite file), after `migrate` and `seed_demo --allow-demo-users`; takes a token for
each of applicant, reviewer, manager and operator through POST /api/v1/auth/token/; runs
`schemathesis run` with every check, positive and negative data, once per token. Exits non-zero
on any server error or schema violation. Bounded by --max-examples and --max-time per role.

    .venv/bin/python .ci/fuzz_api.py [--max-examples N] [--max-time SECONDS]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROLES = ("applicant", "reviewer", "manager", "operator")
PASSWORD = "hpcgate-demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.5)
    raise SystemExit(f"fuzz: the app did not answer {url} within {seconds:.0f} s")


def server_header_check(base: str) -> None:
    """The production server names itself without a version."""
    with urllib.request.urlopen(f"{base}/livez", timeout=10) as response:  # noqa: S310
        server = response.headers.get("Server", "")
    if any(character.isdigit() for character in server):
        raise SystemExit(f"fuzz: the Server header gives a version away: {server!r}")
    print(f"fuzz: Server header {server!r}", flush=True)


def token_for(base: str, username: str) -> str:
    body = json.dumps({"username": username, "password": PASSWORD, "name": "schemathesis"})
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/api/v1/auth/token/",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)["token"]


def fuzz(
    base: str, tokens: dict[str, str], *, max_examples: int, max_time: int, report_dir: Path
) -> int:
    failed = 0
    for role, token in tokens.items():
        print(f"fuzz: schemathesis as {role}", flush=True)
        command = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(ROOT / ".ci" / "schemathesis.toml"),
            "run",
            f"{base}/api/schema/",
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            str(max_examples),
            "--max-time",
            str(max_time),
            "--header",
            f"Authorization: Token {token}",
            "--seed",
            "1",
            "--no-shrink",
            # one worker: Python 3.11's ast module is not safe across threads, and Hypothesis
            # parses its own sources while it describes strategies
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-junit-path",
            str(report_dir / f"{role}.xml"),
        ]
        result = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603
        if result.returncode != 0:
            print(f"fuzz: schemathesis as {role} failed (exit {result.returncode})", flush=True)
            failed += 1
    return failed


def serve_and_fuzz(
    *, max_examples: int, max_time: int, report_dir: Path, scratch_database: bool = False
) -> int:
    """Set up the app, serve it with gunicorn, fuzz it as each role; the number of roles with
    problems. `scratch_database`: a SQLite file of its own, whatever DATABASE_URL says."""
    work = Path(tempfile.mkdtemp(prefix="hpcgate-fuzz-"))
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "fuzz-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "HPCGATE_VAR_DIR": str(work),
        "HPCGATE_TESTING": "0",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/"),
        # the demo users log in many times over: the log-in limits are not what is tested here
        "LOGIN_FAILED_LIMITS": "1000/m/ip,1000/m/key",
        # refusals are the point of the run; the log keeps errors only
        "LOG_LEVEL": "ERROR",
    }
    env.pop("HPCGATE_FROM_CHECKOUT", None)
    if scratch_database:
        env.pop("DATABASE_URL", None)
        env["CELERY_BROKER_URL"] = "filesystem://localhost/"
    python = str(BIN / "python")
    for command in (["migrate", "--noinput"], ["seed_demo", "--allow-demo-users"]):
        subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True)  # noqa: S603
    collect = [python, "manage.py", "collectstatic", "--noinput", "-v", "0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True)  # noqa: S603
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603
        [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(f"{base}/livez")
        server_header_check(base)
        tokens = {role: token_for(base, role) for role in ROLES}
        report_dir.mkdir(parents=True, exist_ok=True)
        failed = fuzz(
            base, tokens, max_examples=max_examples, max_time=max_time, report_dir=report_dir
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz: {len(ROLES) - failed} of {len(ROLES)} roles clean", flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--max-time", type=int, default=60, help="seconds per role")
    parser.add_argument("--report-dir", default=str(ROOT / "var" / "schemathesis"))
    args = parser.parse_args()
    failed = serve_and_fuzz(
        max_examples=args.max_examples, max_time=args.max_time, report_dir=Path(args.report_dir)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
