"""Study: the usage table partitioned by cluster against the plain table, and the threshold
check's cost as the table grows.

    python -m bench.partitioning [--records 5000000] [--allocations 10000] [--large 20000000]
                                 [--runs 3] [--keep]

Creates the PostgreSQL database `hpcgate_part_study` on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/), migrates it and fills it as `bench.scale` does: the
reference systems (six clusters, a partition each), N allocations and M usage records generated
set-based in `usage_usagerecord`, the plain table with its real indexes. It then builds
`study_part`, a copy of it declaratively partitioned by cluster (LIST on `cluster_id`, one
partition per cluster) with the same indexes, each unique one carrying the partition key, and
times on both, R runs alternating between the two tables (min, median, max):

1. the per-allocation GROUP BY of the threshold check (narrow: allocation, partition and
   GPU-seconds, then the partition's peak joined to the few thousand groups);
2. the per-day series of the largest allocation (200,000 records), as its usage page draws it,
   with and without the allocation's cluster in the WHERE clause (which lets PostgreSQL skip
   the other clusters' partitions);
3. a COPY of 200,000 new records of one cluster, as an import writes them, and two such COPYs
   for two clusters at once on two connections, as two Celery workers importing different
   clusters write (the rows are deleted again, untimed, after each run);
4. the admin list's first page, ORDER BY start DESC, job_key LIMIT 100, over every record and
   over one cluster's.

Last it times the GROUP BY on plain tables of a tenth of M and of `--large` records (the M
records repeated, so the same allocations hold more; 0 skips it) and extrapolates linearly to
100,000,000 records. The database is dropped at the end unless `--keep` is given.
"""

import argparse
import io
import re
import statistics
import time

from bench.draft import _urls
from bench.ingest import _recreate, _setup_django

NAME = "hpcgate_part_study"
FEDERATION = 100_000_000
COPY_ROWS = 200_000
PLAIN = "usage_usagerecord"
PARTITIONED = "study_part"
INDEX_DEFINITION = re.compile(r"CREATE (UNIQUE )?INDEX \S+ ON \S+ USING (\w+) \((.*?)\)(.*)$")

# The threshold check's aggregation: GPU-seconds per allocation and partition over the records
# (the narrow part that reads the big table), then each group's partition peak joined in.
GROUP_BY = """
SELECT u.allocation_id, SUM(u.gpu_seconds), SUM(u.gpu_seconds * p.peak_tflops::float8)
FROM (SELECT allocation_id, partition_id, SUM(gpu_seconds) AS gpu_seconds
      FROM {table} WHERE allocation_id IS NOT NULL
      GROUP BY allocation_id, partition_id) u
LEFT JOIN systems_partition p ON p.id = u.partition_id
GROUP BY u.allocation_id
"""
SERIES = """
SELECT (COALESCE("end", start) AT TIME ZONE 'UTC')::date AS day, SUM(gpu_seconds)
FROM {table} WHERE allocation_id = %(allocation)s AND start IS NOT NULL {cluster}
GROUP BY day ORDER BY day
"""
ADMIN_PAGE = """
SELECT * FROM {table} {where} ORDER BY start DESC, job_key LIMIT 100
"""


def _cursor():
    from django.db import connection

    return connection.cursor()


def _execute(sql: str, params=None) -> list:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _size(table: str) -> str:
    (size,) = _execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [table])[0]
    return size


def _partitioned_copy() -> float:
    """`study_part`: usage_usagerecord's columns, LIST-partitioned on cluster_id, one partition
    per cluster, its rows, then its indexes (the primary key and every unique index with
    cluster_id added where they lack it: PostgreSQL enforces uniqueness per partition only
    through the partition key). Returns the seconds it took."""
    started = time.perf_counter()
    _execute(
        f"CREATE TABLE {PARTITIONED} (LIKE {PLAIN} INCLUDING DEFAULTS INCLUDING STORAGE) "
        "PARTITION BY LIST (cluster_id)"
    )
    # The copy takes its ids from the plain table; no identity or sequence of its own.
    _execute(f"ALTER TABLE {PARTITIONED} ALTER COLUMN id DROP DEFAULT")
    for (cluster,) in _execute("SELECT id FROM systems_cluster ORDER BY id"):
        _execute(
            f"CREATE TABLE {PARTITIONED}_c{cluster} PARTITION OF {PARTITIONED} "
            f"FOR VALUES IN ({cluster})"
        )
    _execute(f"INSERT INTO {PARTITIONED} SELECT * FROM {PLAIN}")
    indexes = _execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
        [PLAIN],
    )
    for number, (_, definition) in enumerate(indexes):
        match = INDEX_DEFINITION.match(definition)
        if not match:
            raise RuntimeError(f"cannot read the index {definition!r}")
        unique, method, columns, rest = match.groups()
        if unique and "cluster_id" not in columns:
            columns += ", cluster_id"
        _execute(
            f"CREATE {unique or ''}INDEX {PARTITIONED}_{number} ON {PARTITIONED} "
            f"USING {method} ({columns}){rest}"
        )
    _execute(f"ANALYZE {PARTITIONED}")
    return time.perf_counter() - started


def _timed(sql: str, params=None) -> float:
    started = time.perf_counter()
    _execute(sql, params)
    return time.perf_counter() - started


def _copy_text(cluster: int, first_id: int) -> bytes:
    """COPY text of COPY_ROWS new records of `cluster`: existing ones with new ids and keys."""
    from django.db import connection

    connection.ensure_connection()
    buffer = io.BytesIO()
    with connection.connection.cursor() as cursor:
        query = (
            f"COPY (SELECT {first_id} + row_number() OVER (ORDER BY id), "
            f"       r.* FROM {PLAIN} r WHERE cluster_id = {int(cluster)} LIMIT {COPY_ROWS}) "
            "TO STDOUT"
        )
        with cursor.copy(query) as copy:
            for block in copy:
                buffer.write(block)
    # The first column is the new id, the record follows: the new id goes in place of its
    # own, and into its job key so that the key stays unique on the cluster.
    names = _columns()
    id_at, key_at = names.index("id"), names.index("job_key")
    rows = []
    for line in buffer.getvalue().split(b"\n"):
        if not line:
            continue
        fields = line.split(b"\t")
        new_id, record = fields[0], fields[1:]
        record[id_at] = new_id
        record[key_at] = record[key_at] + b"#" + new_id
        rows.append(b"\t".join(record))
    return b"\n".join(rows) + b"\n"


def _columns() -> list[str]:
    """The usage table's columns in their order."""
    names = _execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [PLAIN],
    )
    return [name for (name,) in names]


def _timed_copy(table: str, text: bytes, columns: str, first_id: int) -> float:
    from django.db import connection

    connection.ensure_connection()
    started = time.perf_counter()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        copy.write(text)
    connection.connection.commit()
    seconds = time.perf_counter() - started
    _execute(f"DELETE FROM {table} WHERE id > %s", [first_id])
    connection.connection.commit()
    _execute(f"VACUUM {table}")
    return seconds


def _timed_parallel_copy(table: str, texts: list[bytes], columns: str, first_id: int) -> float:
    """Seconds for COPYs of `texts` (each one cluster's records) at once, each on a connection
    of its own, as Celery workers importing different clusters run them."""
    import threading

    import psycopg
    from django.db import connection

    connection.ensure_connection()
    dsn = connection.connection.info.dsn

    def copy_one(text: bytes) -> None:
        with (
            psycopg.connect(dsn) as conn,
            conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write(text)

    threads = [threading.Thread(target=copy_one, args=(text,)) for text in texts]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    _execute(f"DELETE FROM {table} WHERE id > %s", [first_id])
    _execute(f"VACUUM {table}")
    return seconds


def _spread(values: list[float]) -> str:
    return (
        f"min {min(values):7.3f} s  median {statistics.median(values):7.3f} s  "
        f"max {max(values):7.3f} s"
    )


def _compare(runs: int) -> None:
    """Each operation on both tables, alternating, `runs` times."""
    from django.db import connection

    big, cluster = _execute(
        f"SELECT allocation_id, MIN(cluster_id) FROM {PLAIN} WHERE allocation_id IS NOT NULL "
        "GROUP BY allocation_id ORDER BY COUNT(*) DESC LIMIT 1"
    )[0]
    (top,) = _execute(f"SELECT MAX(id) FROM {PLAIN}")[0]
    first_id = top + 1_000_000
    text = _copy_text(cluster, first_id)
    (other,) = _execute("SELECT MIN(id) FROM systems_cluster WHERE id <> %s", [cluster])[0]
    both = [text, _copy_text(other, first_id + 10 * COPY_ROWS)]
    columns = ", ".join(f'"{name}"' for name in _columns())
    one_cluster = {"allocation": big, "cluster": cluster}
    operations = [
        ("threshold check GROUP BY, every allocation", lambda t: _timed(GROUP_BY.format(table=t))),
        (
            "per-day series of the largest allocation",
            lambda t: _timed(SERIES.format(table=t, cluster=""), one_cluster),
        ),
        (
            "  the same with its cluster in the WHERE clause",
            lambda t: _timed(
                SERIES.format(table=t, cluster="AND cluster_id = %(cluster)s"), one_cluster
            ),
        ),
        (
            f"COPY of {COPY_ROWS:,} records of one cluster",
            lambda t: _timed_copy(t, text, columns, first_id),
        ),
        (
            f"two COPYs of {COPY_ROWS:,} records at once, two clusters, two connections",
            lambda t: _timed_parallel_copy(t, both, columns, first_id),
        ),
        (
            "admin list, first 100 of every record",
            lambda t: _timed(ADMIN_PAGE.format(table=t, where="")),
        ),
        (
            "admin list, first 100 of one cluster",
            lambda t: _timed(
                ADMIN_PAGE.format(table=t, where="WHERE cluster_id = %(cluster)s"), one_cluster
            ),
        ),
    ]
    connection.set_autocommit(True)
    # As autovacuum leaves a table that has been written: visibility map and hint bits set.
    for table in (PLAIN, PARTITIONED):
        _execute(f"VACUUM ANALYZE {table}")
    for name, operation in operations:
        seconds = {PLAIN: [], PARTITIONED: []}
        operation(PLAIN)  # warm the cache alike for both
        operation(PARTITIONED)
        for _ in range(runs):
            for table in (PLAIN, PARTITIONED):
                seconds[table].append(operation(table))
        print(f"  {name}")
        for table, label in ((PLAIN, "plain"), (PARTITIONED, "partitioned by cluster")):
            print(f"    {label:<24} {_spread(seconds[table])}")


def _growth(records: int, large: int, runs: int) -> None:
    """The GROUP BY on plain tables of records / 10, records and `large` records; a straight
    line through them to FEDERATION records."""
    sizes = [(records // 10, "study_tenth"), (records, PLAIN)]
    _execute(f"CREATE TABLE study_tenth AS SELECT * FROM {PLAIN} ORDER BY id LIMIT {records // 10}")
    if large > records:
        repeats = -(-large // records)
        _execute(f"CREATE TABLE study_large (LIKE {PLAIN})")
        for repeat in range(repeats):
            _execute(
                f"INSERT INTO study_large SELECT * FROM {PLAIN} ORDER BY id "
                f"LIMIT {min(records, large - repeat * records)}"
            )
        sizes.append((large, "study_large"))
    points = []
    for count, table in sizes:
        _execute(f"VACUUM ANALYZE {table}")
        _timed(GROUP_BY.format(table=table))
        seconds = [_timed(GROUP_BY.format(table=table)) for _ in range(runs)]
        points.append((count, statistics.median(seconds)))
        print(f"  {count:>12,} records ({_size(table):>8}): {_spread(seconds)}")
    n = [p[0] for p in points]
    t = [p[1] for p in points]
    slope, intercept = statistics.linear_regression(n, t)
    print(
        f"  straight line through them: {slope * 1e6:.3f} s per million records "
        f"{intercept:+.2f} s; at {FEDERATION:,} records: {intercept + slope * FEDERATION:.0f} s"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--allocations", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=20_000_000, help="0 skips it")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    server, url = _urls(NAME)
    _recreate(server, NAME)
    try:
        _setup_django(url)
        from bench.scale import _build

        _build(args.allocations, args.records)
        seconds = _partitioned_copy()
        print(
            f"  partitioned copy built in {seconds:.0f} s; sizes with indexes: "
            f"plain {_size(PLAIN)}, partitioned {_execute(_PARTITIONED_SIZE)[0][0]}"
        )
        print(f"{args.records:,} records, plain table against partitioned by cluster:")
        _compare(args.runs)
        print("Threshold check GROUP BY as the plain table grows:")
        _growth(args.records, args.large, args.runs)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _recreate(server, NAME, drop_only=True)


_PARTITIONED_SIZE = f"""
SELECT pg_size_pretty(SUM(pg_total_relation_size(inhrelid)))
FROM pg_inherits WHERE inhparent = '{PARTITIONED}'::regclass
"""


if __name__ == "__main__":
    main()
