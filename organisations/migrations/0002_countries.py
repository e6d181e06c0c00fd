from django.db import migrations


def load(apps, schema_editor):
    from organisations.countries import country_rows

    Country = apps.get_model("organisations", "Country")
    for code, name, status in country_rows():
        Country.objects.update_or_create(code=code, defaults={"name": name, "status": status})


class Migration(migrations.Migration):
    dependencies = [("organisations", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
