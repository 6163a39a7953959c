"""Encryption of stored secrets with Fernet keys (HOOKLINE_ENCRYPTION_KEY): the first key encrypts, all decrypt.

Endpoint secrets and custom header values are sealed before they reach the database and opened
when read. A value that is not a Fernet token was stored in clear by an older version and reads
as is, until `hookline rekey` seals it.
"""

import base64
import binascii
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SETTING = "HOOKLINE_ENCRYPTION_KEY"
# Version byte 0x80 plus an 8-byte timestamp, a 16-byte IV, one AES block and a 32-byte HMAC.
_MIN_TOKEN_BYTES = 1 + 8 + 16 + 16 + 32


class EncryptionKeyError(ValueError):
    """HOOKLINE_ENCRYPTION_KEY is missing, malformed, or lacks the key a stored value needs."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(value: str) -> list[str]:
    """The comma-separated keys, each checked; the message names the setting, never a key."""
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys:
        raise EncryptionKeyError(f"{SETTING} is empty; make a key with `hookline generate-key`")
    for n, key in enumerate(keys, 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise EncryptionKeyError(
                f"{SETTING}: key {n} of {len(keys)} is not 32 bytes in url-safe base64 "
                "(as `hookline generate-key` or Fernet.generate_key() make them)"
            )
    return keys


def is_token(value: str) -> bool:
    """Whether a stored value is a Fernet token, rather than a clear value from an older version."""
    if not value.startswith("gAAAAA"):  # the version byte 0x80 in url-safe base64
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return len(raw) >= _MIN_TOKEN_BYTES and raw[0] == 0x80


class Keyring:
    """The keys of HOOKLINE_ENCRYPTION_KEY in order."""

    def __init__(self, value: str) -> None:
        self.keys = parse_keys(value)
        self._fernet = MultiFernet([Fernet(k) for k in self.keys])
        # A delivery attempt reads its endpoint's sealed values each time; a token is immutable
        # (a random IV each), so its clear text can be remembered and retries decrypt nothing.
        self._unseal = lru_cache(maxsize=4096)(self._unseal_uncached)

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def unseal(self, value: str) -> str:
        """The clear value of a token; a value that is not a token is returned as is."""
        return self._unseal(value) if is_token(value) else value

    def _unseal_uncached(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise EncryptionKeyError(f"a stored value was encrypted with a key that is not in {SETTING}") from None


_installed: Keyring | None = None


def install(keyring: Keyring | None) -> None:
    """Make `keyring` the process's; processes started by the CLI install theirs at start-up."""
    global _installed
    _installed = keyring


def active() -> Keyring:
    """The installed keyring, else the one of the process's settings."""
    global _installed
    if _installed is None:
        from hookline.core.config import get_settings  # here: the settings validate keys with this module

        key = get_settings().encryption_key
        if key is None:
            raise EncryptionKeyError(f"{SETTING} is not set: endpoint secrets cannot be stored or read")
        _installed = Keyring(key.get_secret_value())
    return _installed


def seal(value: str) -> str:
    return active().seal(value)


def unseal(value: str) -> str:
    """Clear values (older versions) need no key; tokens need the key they were sealed with."""
    return active().unseal(value) if is_token(value) else value
