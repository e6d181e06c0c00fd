"""The usage import: scheduler accounting in, one usage record per job run, every line counted once.

`usage_import` streams parsed lines (see `usage.accounting`) in batches, one transaction per batch,
so memory stays flat whatever the input size and a long import shows progress in the admin.
Every non-step line lands in exactly one of the counters of `UsageImport`:

- imported   a run not seen before, that counts against an allocation of the cluster;
- updated    a run seen before, and this line supersedes what is stored;
- unchanged  a run seen before, and this line says nothing newer (a re-import, an overlapping
             window, a stale pull of a job that has since finished);
- unmatched  the account has no allocation on the cluster: the record is kept (inserted or
             updated by the same rules) and attributed once the allocation exists;
- rejected   the line cannot be stored: malformed (see usage.accounting), a MIG slice of a
             profile its partition does not declare, more GPUs than its partition has, a
             value the database refuses (that line alone: `_write_batch`), or a run stored
             already with its times shifted by a UTC offset (`time_shifted`); its number and
             reason are kept on the import run;
- outside_window  the account has an allocation, but the run started outside its usage window
             (allocations.models.usage_window): kept, never counted against a grant.

Informational counts say more about lines already in a bucket: `no_gpu_field`, runs on a GPU
partition whose line named no GPU at all.

Attribution (which allocation, if any, a run counts against), GPU-seconds with MIG slices at
their partition's share, and the partition's size check are decided per line in Python
(`_row`), the same for both write paths.

"Newer" (`supersedes`): a finished run beats a running one; of two running versions the one
with more elapsed time wins (a pending one that has since started beats it too); two finished
versions that differ take the later import, which is how a site's correction reaches us.

Two write paths count identically: on PostgreSQL each batch is COPied into a temporary table and
merged with one statement (insert the new runs, update the superseded ones); elsewhere (SQLite)
the batch's existing records are fetched in bulk and written with bulk_create / bulk_update.
On PostgreSQL a file is parsed in a forked child process while the parent writes, so parsing
and the database work overlap; a seekable sacct file is read there in columns by pyarrow
(usage/sacct_arrow.py: pieces of a few megabytes, `_arrow_rows` doing `_row`'s work per column),
and a piece with any line the columns do not read plainly goes through `parse_sacct` and `_row`
line by line, so both read every line alike.

The modules, in the order they depend on each other:

- `errors`   how an import tells its caller it cannot go on;
- `rows`     what a parsed line becomes, and the rules that compare two versions of a run;
- `batches`  the input read into batches of rows, here or in the forked parsing process;
- `writers`  a batch written and counted, on PostgreSQL (`_PostgresWriter`) or elsewhere;
- `run`      one import run from start to end: `usage_import`.

What other code uses is imported from here.
"""

from usage.importer.batches import INPUT_FORMATS, time_zone_for
from usage.importer.errors import UsageImportBusy, UsageImportError, UsageImportInterrupted
from usage.importer.rows import DATA_FIELDS, supersedes, time_shifted
from usage.importer.run import logger, usage_import, usage_input_check

__all__ = [
    "DATA_FIELDS",
    "INPUT_FORMATS",
    "UsageImportBusy",
    "UsageImportError",
    "UsageImportInterrupted",
    "logger",
    "supersedes",
    "time_shifted",
    "time_zone_for",
    "usage_import",
    "usage_input_check",
]
