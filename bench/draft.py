"""Benchmark saving the application draft, and the password check of a log-in.

    python -m bench.draft [--saves N] [--runs R] [--profile] [--keep]

Creates the PostgreSQL database `hpcgate_draft_bench` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/), migrates it, seeds the reference systems and the demo
call, and starts a complete draft as an applicant would. Then, logged in as that applicant, it
posts the whole application form N times (every partition of the mode requested, a changed title
and changed GPU-hours each time, as a person typing between saves) and prints the median,
smallest and largest server time of one save (from Django's request_started to its
request_finished signal: every middleware, the view and its redirect, as Django's test client
runs them in this process) and of the form page the redirect
shows, each with its query count, R runs in a row, and the mean CPU time a save costs this
process and the PostgreSQL backend together (on a busy machine the clock also counts the wait
for a core). Last comes the time the configured password
hasher takes to check one password, which is what a log-in costs beyond a page.
`--profile` prints where one run of saves spends its time (cProfile, cumulative). The database
is dropped at the end unless `--keep` is given.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.ingest import _fail, _recreate, _setup_django

NAME = "hpcgate_draft_bench"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
GOAL_MS = 50.0


def _urls(name: str = NAME) -> tuple[str, str]:
    """The maintenance database's URL and the URL of the database `name` beside it."""
    url = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        _fail(f"DATABASE_URL must point at PostgreSQL (got {parts.scheme or url!r}).")
    server = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    return server, urlunsplit(("postgres", parts.netloc, f"/{name}", parts.query, ""))


def _seed():
    """The demo call and a complete Large Scale draft by a fresh applicant."""
    from django.contrib.auth import get_user_model

    from demo.builders import application_for
    from demo.reference import demo_call_seed
    from systems.models import AccessMode
    from systems.reference import reference_data_seed

    reference_data_seed()
    call = demo_call_seed()
    user = get_user_model().objects.create_user(
        username="bench-applicant", email="aino@aurora-ai.example", first_name="Aino"
    )
    return user, application_for(user, call, kind=AccessMode.Kind.LARGE_SCALE)


def _form_data(application, n: int) -> dict:
    """The whole form as the browser posts it, every partition of the mode requested."""
    from systems.models import Partition

    data = {
        "access_mode": application.access_mode_id,
        "title": f"Finnish legal language model, draft {n}",
        "abstract": application.abstract,
        "domain": application.domain,
        "civilian_use_confirmed": "on",
        "results_openness": application.results_openness,
        "weights_openness": application.weights_openness,
        "eu_market": "yes",
        "model_name": application.model_name,
        "modality": application.modality,
        "training_kind": application.training_kind,
        "parameters": "7 billion",
        "training_tokens": "2e11",
        "base_model": "",
        "base_model_flop": "",
        "synthetic_data_flop": "",
        "start_date": application.start_date.isoformat(),
        "duration_months": "6",
        "expected_utilisation": "40 %",
        "pi_name": application.pi_name,
        "pi_email": application.pi_email,
        "pi_contract_end": application.pi_contract_end.isoformat(),
        "team_size": "6",
        "hpc_experience": application.hpc_experience,
        "commitments": ["code_of_practice"],
    }
    partitions = Partition.objects.filter(accessmodepartition__access_mode=application.access_mode)
    for number, partition in enumerate(partitions):
        data[f"resources_{partition.pk}"] = f"{100_000 + 1_000 * number + n:,}"
    for key, answer in application.ethics.items():
        data[f"ethics_{key}_answer"] = "yes" if answer["answer"] else "no"
        data[f"ethics_{key}_explanation"] = answer["explanation"]
    return data


def _backend_cpu(pid: int) -> float:
    """CPU seconds the PostgreSQL backend serving this connection has used (0 when it runs on
    another machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime, the 14th and 15th fields of stat(5), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _ServerClock:
    """Clock and CPU time between Django's request_started and request_finished signals: the
    server's part of a test-client request, without the client building the request."""

    def __init__(self) -> None:
        from django.core.signals import request_finished, request_started
        from django.db import connection

        connection.ensure_connection()
        self.pid = connection.connection.info.backend_pid
        self.marks: list[tuple[float, float]] = []
        request_started.connect(self._mark, dispatch_uid="bench-draft-started")
        request_finished.connect(self._mark, dispatch_uid="bench-draft-finished")

    def _mark(self, **kwargs) -> None:
        self.marks.append((time.perf_counter(), time.process_time() + _backend_cpu(self.pid)))

    def __call__(self, request) -> tuple[float, float, int, object]:
        """Server time in ms, CPU time in ms (this process and the database backend), query
        count and response of `request`."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.marks.clear()
        with CaptureQueriesContext(connection) as captured:
            response = request()
        (started, started_cpu), (ended, ended_cpu) = self.marks[0], self.marks[-1]
        return (ended - started) * 1000, (ended_cpu - started_cpu) * 1000, len(captured), response


def _run(
    client, application, saves: int, first: int, profile: cProfile.Profile | None = None
) -> tuple[list, list, list, int, int]:
    from django.urls import reverse

    clock = _ServerClock()
    url = reverse("vetting:edit", args=[application.pk])
    save_ms, page_ms, cpu_ms = [], [], []
    save_queries = page_queries = 0
    for n in range(first, first + saves):
        data = _form_data(application, n)
        if profile:
            profile.enable()
        ms, cpu, save_queries, response = clock(lambda data=data: client.post(url, data))
        if profile:
            profile.disable()
        if response.status_code != 302:
            _fail(f"saving the draft answered {response.status_code}, not a redirect")
        save_ms.append(ms)
        cpu_ms.append(cpu)
        location = response["Location"]
        ms, _, page_queries, response = clock(lambda location=location: client.get(location))
        if response.status_code != 200:
            _fail(f"the form page answered {response.status_code}")
        page_ms.append(ms)
    return save_ms, page_ms, cpu_ms, save_queries, page_queries


def _spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.1f} ms  "
        f"min {min(values):6.1f} ms  max {max(values):6.1f} ms"
    )


def _password_check() -> tuple[str, float]:
    """The configured hasher and the median time of checking one password with it, in ms."""
    from django.contrib.auth.hashers import check_password, get_hasher, make_password

    hasher = get_hasher()
    encoded = make_password("correct horse battery staple")
    times = []
    for _ in range(5):
        started = time.perf_counter()
        if not check_password("correct horse battery staple", encoded):
            _fail("the password check failed")
        times.append((time.perf_counter() - started) * 1000)
    label = hasher.algorithm
    iterations = getattr(hasher, "iterations", None)
    if iterations:
        label += f", {iterations:,} iterations"
    return label, statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=50, help="saves per run (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile one run of saves")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    server, url = _urls()
    _recreate(server, NAME)
    try:
        _setup_django(url)
        from django.test import Client

        user, application = _seed()
        client = Client()
        client.force_login(user)
        partitions = application.access_mode.accessmodepartition_set.count()
        # Warm-up: the first requests load templates and modules.
        _run(client, application, 3, first=0)
        print(f"Saving the application draft ({partitions} partitions requested), server time:")
        for run in range(1, args.runs + 1):
            save_ms, page_ms, cpu_ms, save_queries, page_queries = _run(
                client, application, args.saves, first=run * 1000
            )
            print(
                f"  run {run}: save  {_spread(save_ms)}  {save_queries:3d} queries"
                f"  goal <= {GOAL_MS:.0f} ms"
            )
            print(
                f"  run {run}:       CPU of Django and PostgreSQL, mean "
                f"{statistics.mean(cpu_ms):5.1f} ms"
            )
            print(f"  run {run}: form  {_spread(page_ms)}  {page_queries:3d} queries")
        if args.profile:
            profile = cProfile.Profile()
            _run(client, application, args.saves, first=9000, profile=profile)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(60)
            print(out.getvalue())
        label, ms = _password_check()
        print(f"Log-in: checking one password ({label}): {ms:.0f} ms")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _recreate(server, NAME, drop_only=True)


if __name__ == "__main__":
    main()
