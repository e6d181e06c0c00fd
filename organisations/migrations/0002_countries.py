from django.db import migrations


def load(apps, schema_editor):
    from organisations.countries import countries_ensure

    countries_ensure(apps.get_model("organisations", "Country"))


class Migration(migrations.Migration):
    dependencies = [("organisations", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
