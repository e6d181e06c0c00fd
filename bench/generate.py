"""Realistic `sacct --allusers --parsable2 --allocations`-style output, deterministic per seed.

Every job allocation line is followed by the step lines sacct prints without `--allocations`
(`.batch`, `.extern`, `.0`, sometimes `.1`), since sites dump both and the importer must skip
them. The mix: plain jobs, array tasks (`123_4`, each task its own JobIDRaw), heterogeneous
jobs (`123+0`, `123+1`), GPU counts from 0 to 32 with typed `gres/gpu:a100=N` entries next to
the total on half the lines, COMPLETED / FAILED / TIMEOUT / `CANCELLED by <uid>` /
OUT_OF_MEMORY finished jobs, RUNNING and PENDING ones, measured energy on some.

    python -m bench.generate --jobs 1000 > sample.txt
"""

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

HEADER = (
    "JobID|JobIDRaw|User|Account|Partition|State|Submit|Start|End|ElapsedRaw|AllocTRES|"
    "NNodes|ConsumedEnergyRaw|JobName"
)
ACCOUNTS = [f"proj_{n:03d}" for n in range(200)]
USERS = [f"user{n:03d}" for n in range(500)]
NAMES = ["train", "pretrain-7b", "finetune", "eval", "bash", "python", "sft-run", "data-prep"]
GPU_CHOICES = (0, 1, 2, 4, 4, 4, 8, 8, 16, 32)
FINISHED = (
    ["COMPLETED"] * 70
    + ["FAILED"] * 10
    + ["TIMEOUT"] * 5
    + ["CANCELLED by {uid}"] * 8
    + ["OUT_OF_MEMORY"] * 2
)
EPOCH = datetime(2026, 1, 1)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def sacct_lines(jobs: int, *, seed: int = 6) -> Iterator[str]:
    """The header, then `jobs` allocation lines, each followed by its step lines."""
    rng = random.Random(seed)
    yield HEADER
    job_number = 4_000_000
    written = 0
    while written < jobs:
        kind = rng.random()
        if kind < 0.08:  # an array of 2-10 tasks, each with its own JobIDRaw
            base = job_number
            ids = [(f"{base}_{task}", str(base + task)) for task in range(rng.randint(2, 10))]
        elif kind < 0.11:  # a heterogeneous job of two components
            ids = [(f"{job_number}+0", str(job_number)), (f"{job_number}+1", str(job_number + 1))]
        else:
            ids = [(str(job_number), str(job_number))]
        job_number += len(ids) + 1
        account = rng.choice(ACCOUNTS)
        user = rng.choice(USERS)
        name = rng.choice(NAMES)
        submit = EPOCH + timedelta(seconds=rng.randint(0, 30 * 86400))
        for job_id, raw in ids[: jobs - written]:
            written += 1
            yield from _job(rng, job_id, raw, account, user, name, submit)


def _job(rng, job_id, raw, account, user, name, submit) -> Iterator[str]:
    gpus = rng.choice(GPU_CHOICES)
    nodes = max(1, gpus // 4)
    tres = f"billing={gpus * 8 or 4},cpu={gpus * 8 or 4},"
    if gpus:
        tres += (
            f"gres/gpu:a100={gpus},gres/gpu={gpus}," if rng.random() < 0.5 else f"gres/gpu={gpus},"
        )
    tres += f"mem={nodes * 256}G,node={nodes}"
    partition = "boost_usr_prod" if gpus or rng.random() < 0.3 else "lrd_all_serial"
    fate = rng.random()
    start = submit + timedelta(seconds=rng.randint(0, 6 * 3600))
    elapsed = rng.randint(30, 48 * 3600)
    energy = ""
    if fate < 0.02:
        state, start_text, end_text, elapsed = "PENDING", "Unknown", "Unknown", 0
    elif fate < 0.05:
        state, start_text, end_text = "RUNNING", _stamp(start), "Unknown"
    else:
        state = rng.choice(FINISHED).format(uid=rng.randint(1000, 99999))
        start_text, end_text = _stamp(start), _stamp(start + timedelta(seconds=elapsed))
        if rng.random() < 0.3:
            energy = str(elapsed * max(gpus, 1) * rng.randint(250, 420))
    head = f"{job_id}|{raw}|{user}|{account}|{partition}|{state}|{_stamp(submit)}|"
    yield f"{head}{start_text}|{end_text}|{elapsed}|{tres}|{nodes}|{energy}|{name}"
    if state == "PENDING":
        return
    step_state = state.split(" ")[0]
    steps = [".batch", ".extern"]
    if rng.random() < 0.6:
        steps.append(".0")
        if rng.random() < 0.3:
            steps.append(".1")
    for step in steps:
        yield (
            f"{job_id}{step}|{raw}{step}||{account}||{step_state}|{_stamp(submit)}|"
            f"{start_text}|{end_text}|{elapsed}|{tres}|{nodes}||{step[1:]}"
        )


def write(path: str, jobs: int, *, seed: int = 6) -> int:
    """Write the sample to `path` ("-" for stdout); returns the number of lines, header included."""
    count = 0
    buffer: list[str] = []
    with open(
        sys.stdout.fileno() if path == "-" else path, "w", encoding="utf-8", closefd=path != "-"
    ) as stream:
        for line in sacct_lines(jobs, seed=seed):
            buffer.append(line)
            if len(buffer) >= 10_000:
                stream.write("\n".join(buffer) + "\n")
                count += len(buffer)
                buffer.clear()
        if buffer:
            stream.write("\n".join(buffer) + "\n")
            count += len(buffer)
    return count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="allocation lines to write")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
    options = parser.parse_args(argv)
    write(options.output or "-", options.jobs, seed=options.seed)


if __name__ == "__main__":
    main()
