from django.db import migrations

# usage_monthly_usage_add(...) adds sums already grouped by allocation, partition and month,
# one row per key (negative ones take records away); a month left with no record loses its row.
# Keys are taken in order, so two transactions that touch the same months lock them in the same
# order.
#
# usage_monthly_usage_add_records(signs, ...) adds records (sign 1) and takes them away (-1): a
# record counts in the UTC month it started in, when it has an allocation and a start; its
# GPU-seconds count as unmetered when it has no measured energy.
#
# What inserts records adds them (usage.models.monthly_usage_added_sql: the importer, the
# model's save and bulk_create); a trigger on inserts would cost every imported row (a row
# trigger, even one whose condition is false, or a statement trigger's transition table).
# Statement triggers take away and add what updates and deletes change, whatever runs them;
# one that changed no row calls nothing.
_KEPT = """
CREATE FUNCTION usage_monthly_usage_add(
    allocations bigint[], partitions bigint[], months date[],
    records bigint[], gpu_seconds bigint[], energy_joules bigint[], unmetered bigint[]
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO usage_monthlyusage AS kept (
        allocation_id, partition_id, month,
        records, gpu_seconds, energy_joules, unmetered_gpu_seconds
    )
    SELECT * FROM unnest(
        allocations, partitions, months, records, gpu_seconds, energy_joules, unmetered
    ) ORDER BY 1, 2, 3
    ON CONFLICT (allocation_id, COALESCE(partition_id, 0), month) DO UPDATE SET
        records = kept.records + excluded.records,
        gpu_seconds = kept.gpu_seconds + excluded.gpu_seconds,
        energy_joules = kept.energy_joules + excluded.energy_joules,
        unmetered_gpu_seconds = kept.unmetered_gpu_seconds + excluded.unmetered_gpu_seconds;
    DELETE FROM usage_monthlyusage kept
    USING unnest(allocations, partitions, months, usage_monthly_usage_add.records)
        AS taken (allocation, partition, month, records)
    WHERE taken.records < 0 AND kept.records = 0
      AND kept.allocation_id = taken.allocation
      AND COALESCE(kept.partition_id, 0) = COALESCE(taken.partition, 0)
      AND kept.month = taken.month;
$$;

CREATE FUNCTION usage_monthly_usage_add_records(
    signs integer[], allocations bigint[], partitions bigint[], starts timestamptz[],
    gpu_seconds bigint[], energy_joules bigint[]
) RETURNS void LANGUAGE sql AS $$
    SELECT usage_monthly_usage_add(
        array_agg(allocation), array_agg(partition), array_agg(month), array_agg(records),
        array_agg(gpu_seconds), array_agg(energy_joules), array_agg(unmetered)
    )
    FROM (
        SELECT allocation, partition,
               date_trunc('month', start AT TIME ZONE 'UTC')::date AS month,
               sum(sign)::bigint AS records,
               sum(sign * gpu)::bigint AS gpu_seconds,
               sum(sign * coalesce(energy, 0))::bigint AS energy_joules,
               coalesce(sum(sign * gpu) FILTER (WHERE energy IS NULL), 0)::bigint AS unmetered
        FROM unnest(signs, allocations, partitions, starts, gpu_seconds, energy_joules)
            AS changed (sign, allocation, partition, start, gpu, energy)
        WHERE allocation IS NOT NULL AND start IS NOT NULL
        GROUP BY 1, 2, 3
    ) grouped
    WHERE records <> 0 OR gpu_seconds <> 0 OR energy_joules <> 0 OR unmetered <> 0;
$$;

CREATE FUNCTION usage_monthly_usage_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM usage_monthly_usage_add_records(
            array_agg(sign), array_agg(allocation_id), array_agg(partition_id),
            array_agg(start), array_agg(gpu_seconds), array_agg(energy_joules)
        ) FROM (
            SELECT 1 AS sign, allocation_id, partition_id, start, gpu_seconds, energy_joules
            FROM new_records
            UNION ALL
            SELECT -1, allocation_id, partition_id, start, gpu_seconds, energy_joules
            FROM old_records
        ) changed HAVING count(*) > 0;
    ELSE
        PERFORM usage_monthly_usage_add_records(
            array_agg(-1), array_agg(allocation_id), array_agg(partition_id),
            array_agg(start), array_agg(gpu_seconds), array_agg(energy_joules)
        ) FROM old_records HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION usage_monthly_usage_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_monthlyusage;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_monthly_usage_updated AFTER UPDATE ON usage_usagerecord
    REFERENCING OLD TABLE AS old_records NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_changed();
CREATE TRIGGER usage_monthly_usage_deleted AFTER DELETE ON usage_usagerecord
    REFERENCING OLD TABLE AS old_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_changed();
CREATE TRIGGER usage_monthly_usage_truncated AFTER TRUNCATE ON usage_usagerecord
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_emptied();

SELECT usage_monthly_usage_add_records(
    array_agg(1), array_agg(allocation_id), array_agg(partition_id), array_agg(start),
    array_agg(gpu_seconds), array_agg(energy_joules)
) FROM usage_usagerecord WHERE allocation_id IS NOT NULL AND start IS NOT NULL;
"""

_NOT_KEPT = """
DROP TRIGGER usage_monthly_usage_truncated ON usage_usagerecord;
DROP TRIGGER usage_monthly_usage_deleted ON usage_usagerecord;
DROP TRIGGER usage_monthly_usage_updated ON usage_usagerecord;
DROP FUNCTION usage_monthly_usage_emptied();
DROP FUNCTION usage_monthly_usage_changed();
DROP FUNCTION usage_monthly_usage_add_records(
    integer[], bigint[], bigint[], timestamptz[], bigint[], bigint[]
);
DROP FUNCTION usage_monthly_usage_add(
    bigint[], bigint[], date[], bigint[], bigint[], bigint[], bigint[]
);
"""


def keep_monthly_usage(apps, schema_editor):
    # The triggers come before the records are summed: the usage table is then locked against
    # writes until the migration commits, so none is missed or counted twice.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_KEPT)


def stop_keeping_monthly_usage(apps, schema_editor):
    # Sums nothing keeps are wrong as soon as a record changes: none are left.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_NOT_KEPT)
        schema_editor.execute("DELETE FROM usage_monthlyusage")


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0006_monthly_usage"),
    ]

    operations = [
        migrations.RunPython(keep_monthly_usage, stop_keeping_monthly_usage),
    ]
