"""What keeps a confidential report confidential: encryption at rest and the reporter's case key.

Report texts are stored as Fernet tokens (AES-128-CBC with an HMAC, from the `cryptography`
package) under `REPORT_ENCRYPTION_KEY`; only the admin pages of governance officers and the
reporter's own case page decrypt them. The reporter's case key is random (160 bits), shown once
and stored only as a digest, so that it finds the case and nothing else can.
"""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

CASE_KEY_BYTES = 20  # 160 bits: 32 base-32 characters


CASE_KEY_GROUP = 4


class ChannelClosed(Exception):
    """No encryption key is set: the reporting channel cannot take or show reports."""


def channel_open() -> bool:
    return bool(_keys())


def _keys() -> list[str]:
    return [key.strip() for key in settings.REPORT_ENCRYPTION_KEY.split(",") if key.strip()]


def _cipher() -> MultiFernet:
    keys = _keys()
    if not keys:
        raise ChannelClosed("REPORT_ENCRYPTION_KEY is not set.")
    # The first key encrypts; every key listed decrypts, so a new key goes first on rotation.
    return MultiFernet([Fernet(key.encode()) for key in keys])


def seal(text: str) -> str:
    """The text encrypted for storage."""
    return _cipher().encrypt(text.encode("utf-8")).decode("ascii")


def unseal(token: str) -> str:
    """The stored text in clear; raises ChannelClosed or InvalidToken when no key opens it."""
    if not token:
        return ""
    return _cipher().decrypt(token.encode("ascii")).decode("utf-8")


def unseal_or_note(token: str) -> str:
    """For display: the text, or a note saying why it cannot be read."""
    try:
        return unseal(token)
    except ChannelClosed:
        return "[no encryption key is set: REPORT_ENCRYPTION_KEY]"
    except InvalidToken:
        return "[none of the keys in REPORT_ENCRYPTION_KEY opens this text]"


def case_key_new() -> str:
    """A new case key, e.g. 'K7QF-2M4X-...' (8 groups of 4 characters)."""
    raw = base64.b32encode(secrets.token_bytes(CASE_KEY_BYTES)).decode("ascii")
    return "-".join(raw[i : i + CASE_KEY_GROUP] for i in range(0, len(raw), CASE_KEY_GROUP))


def case_key_digest(key: str) -> str:
    """What is stored to find a case by its key. Spaces, dashes and case do not count, so a key
    typed out by hand works; the key's 160 random bits make a plain digest enough."""
    normal = "".join(ch for ch in key.upper() if ch.isalnum())
    return hashlib.sha256(f"hpcgate case key:{normal}".encode()).hexdigest()


def submission_digest(token: str) -> str:
    """What is stored of the random token a report form carries, so that sending the same form
    twice (a reload) does not open a second case."""
    return hashlib.sha256(f"hpcgate report form:{token}".encode()).hexdigest()
