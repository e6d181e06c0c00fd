from django.apps import AppConfig


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = "Organisations"

    def ready(self) -> None:
        from core import formats
        from organisations.countries import country_rows

        # Country codes read as names wherever core.formats shows them.
        formats.COUNTRY_NAMES.update({code: name for code, name, _ in country_rows()})
