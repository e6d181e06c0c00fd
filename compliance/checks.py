from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

_KEY_HINT = (
    'Set it to a Fernet key, e.g. the output of python -c "from cryptography.fernet import '
    'Fernet; print(Fernet.generate_key().decode())".'
)


@register(Tags.security)
def report_encryption_keys_check(app_configs, **kwargs):
    """Every key in REPORT_ENCRYPTION_KEY must be a Fernet key, or no report can be read."""
    errors = []
    for n, key in enumerate(k.strip() for k in settings.REPORT_ENCRYPTION_KEY.split(",")):
        if not key:
            continue
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(
                    f"Key {n + 1} in REPORT_ENCRYPTION_KEY is not a Fernet key "
                    "(32 bytes, URL-safe base64).",
                    hint=_KEY_HINT,
                    id="compliance.E001",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def report_encryption_key_check(app_configs, **kwargs):
    """`check --deploy`: without an encryption key the confidential reporting channel is closed."""
    if settings.REPORT_ENCRYPTION_KEY.strip():
        return []
    return [
        Warning(
            "REPORT_ENCRYPTION_KEY is not set: /report/ cannot take confidential reports.",
            hint=_KEY_HINT,
            id="compliance.W001",
        )
    ]
