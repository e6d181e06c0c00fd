"""PBS Professional and TORQUE accounting logs: one record per run of a job."""

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, tzinfo

from usage.accounting.common import (
    _NODE_CEILING,
    ELAPSED_LIMIT_SECONDS,
    GPU_CEILING,
    LINE_LENGTH_LIMIT,
    _is_number,
    _LineError,
    _shown,
    _too_long,
    _whole,
    account_problem,
    parse_elapsed,
)
from usage.accounting.records import (
    JobRecord,
    Rejected,
    StepSkipped,
    _new_record,
    _rejected,
)

# PBS Pro puts every job without `qsub -P` in this project: it names no one.
_PBS_DEFAULT_PROJECT = "_pbs_project_default"
# Record types that close one run of a job: E (the job ended) and R (it was rerun: the run that
# was cut short ends here, and the job goes back to the queue for another).
_PBS_RUN_ENDS = frozenset({"E", "R"})
_RERUN_STATE = "REQUEUED"  # Slurm's name for a run that ended because the job was requeued


def parse_pbs(
    lines: Iterable[str], *, tz: tzinfo, max_line_length: int = LINE_LENGTH_LIMIT
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """Read PBS Pro / TORQUE accounting logs (`MM/DD/YYYY HH:MM:SS;E;<jobid>;key=value ...`).

    Usage is on the records that end a run: `E` (job end) and `R` (rerun: PBS Pro's
    `qrerun` or a node failure, TORQUE's rerun attempt). An R record that carries the run
    (`start=`) becomes a record of its own with state REQUEUED, so the cut-short run counts
    once, beside the E of the run that finished the job; one without a start (TORQUE may
    log no more than the requestor) is skipped, as is every other record type (Q, S, D, A,
    ...). The record's own timestamp is local time in `tz` and serves as the end when the
    record has no `end=`.

    - account: `account=` (TORQUE `qsub -A`, unquoted when written `account="abc"`), else
      `project=` (PBS Pro `qsub -P`, except its placeholder `_pbs_project_default`), else the
      job's Unix `group=`: sites without accounts tell projects apart by group, and four of
      the nine records in the real sample have nothing else. A group that is no allocation's
      account ends up unmatched, not lost. Case is kept (`SCSG0001`).
    - GPUs, from the first that names any: `Resource_List.ngpus` (PBS Pro, the job's total);
      the sum over `Resource_List.select` chunks (`2:ncpus=64:ngpus=4+1:ngpus=2` is 10);
      the vnodes of `exec_vnode` (`(node1:ngpus=4)+(node2:ngpus=4)` is 8); the `gpus=` of a
      TORQUE nodes spec (`Resource_List.nodes=2:ppn=8:gpus=4` is 8). A record with none of
      these resources gets 0 GPUs and `no_gpu_field`.
    - elapsed: `resources_used.walltime`, else end - start.
    - state: `Exit_status` 0 (or absent) is COMPLETED, anything else FAILED; R is REQUEUED.
    - job_id is the sequence number (`6` of `6.edge.ccr.buffalo.edu`), job_key is
      `<job_id>@<start epoch>` (`/R` behind it for a rerun record): the server suffix is not
      needed to tell runs apart once the start is part of the key, and logs write the same
      job with and without it.
    """
    for line_no, text in enumerate(lines, start=1):
        if len(text) > max_line_length:
            yield _rejected(
                line_no,
                f"The line is {len(text):,} characters long, over the limit of"
                f" {max_line_length:,}.",
                text,
            )
            continue
        line = text.rstrip("\r\n")
        if not line or line.isspace():
            continue
        head = line.split(";", 3)
        if len(head) != 4 or not head[1]:
            yield _rejected(
                line_no,
                "The line is not a PBS accounting record ('MM/DD/YYYY HH:MM:SS;type;job id;...').",
                line,
            )
            continue
        stamp, kind, job_id_raw, message = head
        if kind not in _PBS_RUN_ENDS:
            yield StepSkipped(line_no)
            continue
        if "\x00" in line:
            yield _rejected(line_no, "The line holds NUL bytes: the file is damaged here.", line)
            continue
        try:
            record = _pbs_run_record(line_no, stamp, kind, job_id_raw, message, tz)
        except _LineError as error:
            yield _rejected(line_no, str(error), line)
            continue
        yield StepSkipped(line_no) if record is None else record


def _pbs_attributes(message: str) -> dict[str, str]:
    """`key=value` pairs separated by spaces; a value may hold spaces inside double quotes,
    and a word without `=` continues the value before it.

    Continued values are gathered in lists and joined once: adding to a string that a dict
    holds copies it each time, quadratic in a long quoted value."""
    attributes: dict[str, str] = {}
    continued: dict[str, list[str]] = {}
    last = None
    if '"' not in message:  # nearly every record: no quotes to follow or strip
        for word in message.split(" "):
            if not word:
                continue
            key, sep, value = word.partition("=")
            if sep or last is None:
                attributes[key] = value
                if continued:
                    continued.pop(key, None)
                last = key
            else:
                _continue_value(attributes, continued, last, word)
        for key, words in continued.items():
            attributes[key] = " ".join(words)
        return attributes
    quoted = False
    for word in message.split(" "):
        if not word:
            continue
        if quoted:
            _continue_value(attributes, continued, last, word)
            quoted = not word.endswith('"')
            continue
        key, sep, value = word.partition("=")
        if not sep and last is not None:
            _continue_value(attributes, continued, last, word)
            continue
        attributes[key] = value
        if continued:
            continued.pop(key, None)
        last = key
        quoted = value.startswith('"') and not (len(value) > 1 and value.endswith('"'))
    for key, words in continued.items():
        attributes[key] = " ".join(words)
    return {key: value.strip('"') for key, value in attributes.items()}


def _continue_value(
    attributes: dict[str, str], continued: dict[str, list[str]], key: str, word: str
) -> None:
    words = continued.get(key)
    if words is None:
        words = continued[key] = [attributes[key]]
    words.append(word)


def _pbs_run_record(
    line_no: int, stamp: str, kind: str, job_id_raw: str, message: str, tz: tzinfo
) -> JobRecord | None:
    attributes = _pbs_attributes(message)
    get = attributes.get
    rerun = kind == "R"
    if rerun and not get("start"):
        return None  # a rerun before the job ran, or a TORQUE note without the run in it
    logged = _pbs_stamp(stamp, tz)
    job_id = job_id_raw.split(".", 1)[0]
    if not job_id:
        raise _LineError("The record has no job id.")

    account = get("account") or ""
    if not account:
        project = get("project") or ""
        account = project if project != _PBS_DEFAULT_PROJECT else ""
    account = account or get("group") or ""
    if not account:
        raise _LineError(f"Job {job_id} has no account, project or group.")
    if not account.isprintable() or " " in account:
        raise _LineError(f"Job {job_id} {account_problem(account)}")

    submit = _pbs_epoch("qtime", get("qtime")) or _pbs_epoch("ctime", get("ctime"))
    start = _pbs_epoch("start", get("start"))
    end = _pbs_epoch("end", get("end")) or logged

    walltime = get("resources_used.walltime")
    if start is None:
        elapsed = 0
    elif walltime:
        try:
            elapsed = parse_elapsed(walltime)
        except ValueError:
            raise _LineError(
                f"resources_used.walltime {_shown(walltime)} is not a duration (HH:MM:SS)."
            ) from None
        if elapsed > ELAPSED_LIMIT_SECONDS:
            raise _too_long(job_id, "resources_used.walltime", walltime)
    else:
        elapsed = int((end - start).total_seconds())
        if elapsed < 0:
            raise _LineError(f"Job {job_id} ends before it starts.")

    spec_name = "Resource_List.nodes"
    spec = get(spec_name) or ""
    nodect = get("Resource_List.nodect") or ""
    if nodect and not _is_number(nodect):
        # some TORQUE builds write a whole nodes spec (`1:ppn=24:gpu=4`) into nodect
        if not spec:
            spec_name, spec = "Resource_List.nodect", nodect
        nodect = ""
    spec_nodes, spec_gpus = _torque_nodes(spec, spec_name)
    if not nodect:
        nodes = spec_nodes
    elif len(nodect) < 7:  # digits, checked above
        nodes = int(nodect)
    else:
        nodes = _whole(nodect, "Resource_List.nodect", _NODE_CEILING)
    ngpus = get("Resource_List.ngpus")
    if ngpus is not None and ngpus.isdecimal() and len(ngpus) < 4:
        gpus, no_gpu_field = int(ngpus), False
    else:
        gpus, no_gpu_field = _pbs_gpus(get, spec, spec_gpus)
        if gpus > GPU_CEILING:
            raise _LineError(
                f"Job {job_id} has {gpus:,} GPUs, more than the {GPU_CEILING:,} any job can hold."
            )

    exit_status = get("Exit_status")
    if rerun:
        state = _RERUN_STATE
    elif exit_status is None:
        state = "COMPLETED"
    else:
        if not _is_number(exit_status.removeprefix("-")) or len(exit_status) > 12:
            raise _LineError(f"Exit_status {_shown(exit_status)} is not a number.")
        state = "COMPLETED" if int(exit_status) == 0 else "FAILED"

    start_key = get("start") if start is not None else None
    job_key = f"{job_id}@{start_key}" if start_key else job_id
    if rerun:
        job_key += "/R"
    return _new_record(
        JobRecord,
        (
            line_no,
            job_key,
            job_id_raw,
            job_id,
            account,
            get("user") or "",
            get("queue") or "",
            state,
            submit,
            start,
            end,
            elapsed,
            gpus,
            nodes,
            None,
            get("jobname") or "",
            False,
            (),
            no_gpu_field,
        ),
    )


def _pbs_gpus(get: Callable[[str], str | None], spec: str, spec_gpus: int) -> tuple[int, bool]:
    """(GPUs, no_gpu_field) of a PBS record, from the first resource that names GPUs."""
    ngpus = get("Resource_List.ngpus")
    if ngpus is not None:
        return _whole(ngpus, "Resource_List.ngpus", GPU_CEILING), False
    select = get("Resource_List.select") or ""
    if "ngpus=" in select:
        return _chunk_gpus(select, "Resource_List.select", counted=True), False
    exec_vnode = get("exec_vnode") or ""
    if "ngpus=" in exec_vnode:
        vnodes = exec_vnode.replace("(", "").replace(")", "")
        return _chunk_gpus(vnodes, "exec_vnode", counted=False), False
    return spec_gpus, not (select or exec_vnode or spec)


def _chunk_gpus(text: str, name: str, *, counted: bool) -> int:
    """GPUs of `+`-joined chunks `[N:]res=value:...`: a select statement's chunks start with
    how many of them are wanted (1 when left out); exec_vnode's start with the vnode's name."""
    gpus = 0
    for chunk in text.split("+"):
        first, *resources = chunk.split(":")
        count = 1
        if counted:
            if _is_number(first):
                count = _whole(first, f"{name} chunk count", _NODE_CEILING)
            else:
                resources.append(first)
        for resource in resources:
            key, _, value = resource.partition("=")
            if key == "ngpus":
                gpus += count * _whole(value, f"{name} ngpus", GPU_CEILING)
                if gpus > GPU_CEILING:
                    return gpus  # the caller rejects it; no need to add up the rest
    return gpus


def _pbs_stamp(stamp: str, tz: tzinfo) -> datetime:
    try:
        date, time = stamp.split(" ")
        month, day, year = date.split("/")
        hour, minute, second = time.split(":")
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        raise _LineError(f"Record time {_shown(stamp)} is not 'MM/DD/YYYY HH:MM:SS'.") from None
    return local.astimezone(UTC)


def _pbs_epoch(name: str, text: str | None) -> datetime | None:
    if not text or text == "0":
        return None
    if len(text) <= 12 and text.isascii() and text.isdigit():  # 12 digits reach year 9999
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise _LineError(f"{name} {_shown(text)} is not a time in seconds since 1970.")


def _torque_nodes(spec: str, name: str) -> tuple[int, int]:
    """(nodes, GPUs) of a TORQUE nodes spec: `N[:ppn=P][:gpus=G][:feature]` joined by `+`;
    a host name instead of N is one node, and gpus= is per node."""
    if not spec:
        return (0, 0)
    nodes = gpus = 0
    for chunk in spec.split("+"):
        count_text, *properties = chunk.split(":")
        if not _is_number(count_text):
            count = 1
        elif len(count_text) < 7:
            count = int(count_text)
        else:
            count = _whole(count_text, name, _NODE_CEILING)
        nodes += count
        for item in properties:
            key, _, value = item.partition("=")
            if key in ("gpus", "gpu") and value:
                if not _is_number(value):
                    raise _LineError(f"{name} {_shown(spec)}: {item} is not a whole number.")
                gpus += count * _whole(value, name, GPU_CEILING)
        if nodes > _NODE_CEILING:
            raise _LineError(
                f"{name} {_shown(spec)} is out of range (more than {_NODE_CEILING:,} nodes)."
            )
    return (nodes, gpus)
