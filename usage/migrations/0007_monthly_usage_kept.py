from django.db import migrations

# Each statement that writes usage records changes the monthly sums by what it inserted minus
# what it deleted; an update is both. Keys are taken in order, so two statements that touch the
# same months lock them in the same order.
_CHANGES = """
    INSERT INTO usage_monthlyusage AS kept (
        allocation_id, partition_id, month,
        records, gpu_seconds, energy_joules, unmetered_gpu_seconds
    )
    SELECT allocation_id, partition_id, month,
           sum(sign), sum(sign * gpu_seconds), sum(sign * coalesce(energy_joules, 0)),
           coalesce(sum(sign * gpu_seconds) FILTER (WHERE energy_joules IS NULL), 0)
    FROM ({rows}) changed
    GROUP BY allocation_id, partition_id, month
    HAVING sum(sign) <> 0 OR sum(sign * gpu_seconds) <> 0
        OR sum(sign * coalesce(energy_joules, 0)) <> 0
        OR sum(sign * gpu_seconds) FILTER (WHERE energy_joules IS NULL) <> 0
    ORDER BY allocation_id, partition_id, month
    ON CONFLICT (allocation_id, COALESCE(partition_id, 0), month) DO UPDATE SET
        records = kept.records + excluded.records,
        gpu_seconds = kept.gpu_seconds + excluded.gpu_seconds,
        energy_joules = kept.energy_joules + excluded.energy_joules,
        unmetered_gpu_seconds = kept.unmetered_gpu_seconds + excluded.unmetered_gpu_seconds;
"""


def _changes(*sources: tuple[str, int]) -> str:
    rows = " UNION ALL ".join(
        f"""SELECT allocation_id, partition_id,
                   date_trunc('month', start AT TIME ZONE 'UTC')::date AS month,
                   gpu_seconds, energy_joules, {sign} AS sign
            FROM {table} WHERE allocation_id IS NOT NULL AND start IS NOT NULL"""
        for table, sign in sources
    )
    return _CHANGES.format(rows=rows)


_KEPT = f"""
CREATE FUNCTION usage_monthly_usage_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_changes(("new_records", 1))}
    ELSIF TG_OP = 'UPDATE' THEN
        {_changes(("new_records", 1), ("old_records", -1))}
    ELSE
        {_changes(("old_records", -1))}
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM usage_monthlyusage WHERE records = 0;
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
CREATE TRIGGER usage_monthly_usage_inserted AFTER INSERT ON usage_usagerecord
    REFERENCING NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_kept();
CREATE TRIGGER usage_monthly_usage_updated AFTER UPDATE ON usage_usagerecord
    REFERENCING OLD TABLE AS old_records NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_kept();
CREATE TRIGGER usage_monthly_usage_deleted AFTER DELETE ON usage_usagerecord
    REFERENCING OLD TABLE AS old_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_kept();
CREATE TRIGGER usage_monthly_usage_truncated AFTER TRUNCATE ON usage_usagerecord
    FOR EACH STATEMENT EXECUTE FUNCTION usage_monthly_usage_emptied();
"""

_NOT_KEPT = """
DROP TRIGGER usage_monthly_usage_truncated ON usage_usagerecord;
DROP TRIGGER usage_monthly_usage_deleted ON usage_usagerecord;
DROP TRIGGER usage_monthly_usage_updated ON usage_usagerecord;
DROP TRIGGER usage_monthly_usage_inserted ON usage_usagerecord;
DROP FUNCTION usage_monthly_usage_emptied();
DROP FUNCTION usage_monthly_usage_kept();
"""


def keep_monthly_usage(apps, schema_editor):
    # The triggers come first: the usage table is then locked against writes until the
    # migration commits, so no record is missed between the sums of what is stored and them.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_KEPT)
        schema_editor.execute(_changes(("usage_usagerecord", 1)))


def stop_keeping_monthly_usage(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_NOT_KEPT)


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0006_monthly_usage"),
    ]

    operations = [
        migrations.RunPython(keep_monthly_usage, stop_keeping_monthly_usage),
    ]
