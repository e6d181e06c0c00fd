"""Countries seeded into the eligibility table; the table, not this list, is what the rules read."""

EU_MEMBERS = {
    "AT": "Austria",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "HR": "Croatia",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DK": "Denmark",
    "EE": "Estonia",
    "FI": "Finland",
    "FR": "France",
    "DE": "Germany",
    "GR": "Greece",
    "HU": "Hungary",
    "IE": "Ireland",
    "IT": "Italy",
    "LV": "Latvia",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "MT": "Malta",
    "NL": "Netherlands",
    "PL": "Poland",
    "PT": "Portugal",
    "RO": "Romania",
    "SK": "Slovakia",
    "SI": "Slovenia",
    "ES": "Spain",
    "SE": "Sweden",
}
EEA = {"IS": "Iceland", "LI": "Liechtenstein", "NO": "Norway"}
# Horizon Europe association agreements in force (European Commission list, 2025).
ASSOCIATED = {
    "AL": "Albania",
    "AM": "Armenia",
    "BA": "Bosnia and Herzegovina",
    "CA": "Canada",
    "CH": "Switzerland",
    "FO": "Faroe Islands",
    "GB": "United Kingdom",
    "GE": "Georgia",
    "IL": "Israel",
    "KR": "South Korea",
    "MD": "Moldova",
    "ME": "Montenegro",
    "MK": "North Macedonia",
    "NZ": "New Zealand",
    "RS": "Serbia",
    "TN": "Tunisia",
    "TR": "Türkiye",
    "UA": "Ukraine",
    "XK": "Kosovo",
}
OTHER = {
    "AE": "United Arab Emirates",
    "AU": "Australia",
    "BR": "Brazil",
    "CN": "China",
    "EG": "Egypt",
    "IN": "India",
    "JP": "Japan",
    "MA": "Morocco",
    "RU": "Russia",
    "SG": "Singapore",
    "US": "United States",
}


def country_rows() -> list[tuple[str, str, str]]:
    rows = []
    for status, table in (
        ("eu", EU_MEMBERS),
        ("eea", EEA),
        ("associated", ASSOCIATED),
        ("other", OTHER),
    ):
        rows.extend((code, name, status) for code, name in table.items())
    return rows


def countries_ensure(country_model=None) -> int:
    """Load the table (idempotent); the migration passes its historical model."""
    if country_model is None:
        from organisations.models import Country as country_model
    for code, name, status in country_rows():
        country_model.objects.update_or_create(code=code, defaults={"name": name, "status": status})
    return len(country_rows())
