from django.db import migrations


def job_key_in_byte_order(apps, schema_editor):
    # The import looks a job's runs up as a range of keys ('<JobIDRaw>@' up to '<JobIDRaw>A'),
    # which only a byte-ordered index answers; a locale's collation (en_US, the default of
    # many servers) sorts '@' among letters. SQLite compares text bytewise already.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'ALTER TABLE usage_usagerecord ALTER COLUMN job_key TYPE varchar(120) COLLATE "C"'
        )


def job_key_in_database_order(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE usage_usagerecord ALTER COLUMN job_key TYPE varchar(120)"
            ' COLLATE "default"'
        )


class Migration(migrations.Migration):

    dependencies = [
        ("usage", "0003_slices_windows_and_counts"),
    ]

    operations = [
        migrations.RunPython(job_key_in_byte_order, job_key_in_database_order),
    ]
