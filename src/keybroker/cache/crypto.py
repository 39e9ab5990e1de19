"""AES-GCM sealing of cache entries, and the data key that lives apart from the cache.

The data key sits in the user data dir (0600), not in the cache dir, so a copied or
backed-up cache dir alone reveals nothing. Each entry's header (entry id, key id and
metadata) is bound as associated data: an entry moved to another name, edited, or sealed
under another key fails to open and is treated as a miss.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

from keybroker._hash import hexdigest, hmac_sha256
from keybroker.cache.files import (
    cache_error,
    check_private_dir,
    ensure_private_dir,
    read_bytes,
    read_checked,
    remove,
)

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

MAGIC = b"KBC2"  # KBC1 had a JSON header
KEY_FILE = "cache.key"
KEY_MAGIC = b"KBK1"
_KEY_LEN = 32


_AESGCM: Any = None


def aesgcm() -> Any:
    """cryptography's AES-GCM class, loaded the cheap way.

    ``cryptography.hazmat.primitives.ciphers.aead.AESGCM`` *is* the Rust binding's class; the
    public module path also imports the ``ciphers`` package's Python scaffolding (typing, enum,
    modes …), ~13 ms of a ~28 ms floor, on every helper run. Take the class from the binding
    when it is there (cryptography ≥ 42), else from the public module.
    """
    global _AESGCM  # noqa: PLW0603 - a process-wide memo of an import
    if _AESGCM is None:
        try:
            from cryptography.hazmat.bindings._rust import openssl  # noqa: PLC0415

            _AESGCM = openssl.aead.AESGCM
        except (ImportError, AttributeError):  # pragma: no cover - older cryptography
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

            _AESGCM = AESGCM
    return _AESGCM


class DataKey:
    """The 256-bit cache key; its id (a hash) is stored with entries, the key never is."""

    __slots__ = ("id_key", "key", "kid")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.kid = hexdigest(b"keybroker-kid\0" + key)[:16]
        #: a separate key for naming entries (identity fingerprints), derived, never stored
        self.id_key = bytes.fromhex(hexdigest(b"keybroker-ids\0" + key))

    def fingerprint(self, data: bytes) -> str:
        """A keyed, non-reversible name for ``data`` (entry ids, credential fingerprints)."""
        return hmac_sha256(self.id_key, data)

    def __repr__(self) -> str:
        return f"DataKey(kid={self.kid!r})"


class CorruptEntry(Exception):
    """The bytes on disk are not an entry this key sealed for this id."""


#: Where the data key may live: a file in the user data dir (default) or the OS keychain.
KEY_STORES = ("file", "keychain")
KEYCHAIN_SERVICE = "keybroker"
KEYCHAIN_ACCOUNT = "cache-data-key"


def key_store(env: Mapping[str, str]) -> str:
    """``KEYBROKER_DATA_KEY_STORE``: ``file`` (default) or ``keychain``."""
    store = env.get("KEYBROKER_DATA_KEY_STORE", "").strip().lower() or "file"
    if store not in KEY_STORES:
        raise cache_error(
            f"KEYBROKER_DATA_KEY_STORE={store!r} is not one of {', '.join(KEY_STORES)}"
        )
    return store


def load_data_key(data_dir: Path | str, create: bool = True, store: str = "file") -> DataKey | None:
    """Read the data key, creating it (atomically, once) if it does not exist yet."""
    if store == "keychain":
        return _keychain_key(create)
    path = os.path.join(data_dir, KEY_FILE)
    try:
        dir_stat = os.lstat(data_dir)
    except FileNotFoundError:
        dir_stat = None
    except OSError as exc:
        raise cache_error(f"cannot inspect the data directory {data_dir}: {exc.strerror}") from None
    if dir_stat is not None:
        # the key is only as private as its directory: another user able to write there
        # could swap in a key of their choosing and read what we seal with it
        check_private_dir(data_dir, dir_stat, "data directory")
    raw = _read_key_file(path) if dir_stat is not None else None
    if raw is None:
        if not create:
            return None
        ensure_private_dir(data_dir, "data directory")
        raw = _create_key_file(path)
    if len(raw) != len(KEY_MAGIC) + _KEY_LEN or not raw.startswith(KEY_MAGIC):
        raise cache_error(
            f"the cache data key {path} is damaged",
            f"delete it (cached keys will be fetched again): rm {path}",
        )
    return DataKey(raw[len(KEY_MAGIC) :])


def _keychain_key(create: bool) -> DataKey | None:
    """The data key kept in the OS keychain instead of a file.

    Costs a keyring import (~140 ms) on every call, hits included: for machines where a key
    file next to the user's other files is not acceptable. Two processes creating it at once
    converge on whichever write landed last (entries sealed with the other are misses).
    """
    from keybroker.keyrings import backend, load_keyring  # noqa: PLC0415
    from keybroker.redact import sensitive  # noqa: PLC0415

    where = f"the cache data key in the keychain ({KEYCHAIN_SERVICE}/{KEYCHAIN_ACCOUNT})"
    try:
        active = backend(load_keyring())
        text = active.get_password(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT)
        if text is None:
            if not create:
                return None
            active.set_password(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT, os.urandom(_KEY_LEN).hex())
            text = active.get_password(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT)
    except Exception as exc:
        from keybroker.errors import KeybrokerError  # noqa: PLC0415

        if isinstance(exc, KeybrokerError) and exc.exit_code in (2, 7):
            raise
        raise cache_error(
            f"cannot use {where} ({type(exc).__name__})",
            "unlock the keychain, or unset KEYBROKER_DATA_KEY_STORE to keep the key in a file",
        ) from None
    sensitive(text)
    try:
        raw = bytes.fromhex(text or "")
    except ValueError:
        raw = b""
    if len(raw) != _KEY_LEN:
        raise cache_error(
            f"{where} is damaged",
            f"delete it (cached keys will be fetched again): "
            f"keybroker keychain delete {KEYCHAIN_SERVICE} {KEYCHAIN_ACCOUNT}",
        )
    return DataKey(raw)


def _read_key_file(path: str) -> bytes | None:
    """The key file's bytes (None when there is none yet); anything amiss is exit 7."""

    def check(st: os.stat_result) -> None:
        if sys.platform != "win32" and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            raise cache_error(
                f"the cache data key {path} is readable by others or not yours "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it",
                f"delete it and clear the cache: rm {path}; keybroker cache clear",
            )

    return read_checked(
        path,
        256,
        not_regular=lambda _: cache_error(
            f"the cache data key {path} is not a regular file; refusing to use it",
            f"remove it (cached keys will be fetched again): rm {path}",
        ),
        unreadable=lambda exc: cache_error(
            f"cannot read the cache data key {path}: {exc.strerror}"
        ),
        check=check,
    )


def _create_key_file(path: str) -> bytes:
    """Write a new key to a temp file, then link it into place: readers never see half a key."""
    data = KEY_MAGIC + os.urandom(_KEY_LEN)
    tmp = os.path.join(os.path.dirname(path), f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(28, "short write")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove(tmp)  # a full disk must not leave key material behind in temp files
        raise
    os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        data = read_bytes(path) or b""  # another process won the race: use its key
    except OSError:
        os.replace(tmp, path)  # filesystems without hard links
    finally:
        remove(tmp)
    return data


def seal(key: DataKey, entry_id: str, header: dict[str, Any], value: str | bytes) -> bytes:
    """Encrypt ``value``; ``header`` (with id and key id added) is stored in clear but bound.

    The header is marshalled (a builtin: no json import on the hit path) and is only ever
    unmarshalled after AES-GCM has authenticated it, so marshal never reads foreign bytes.
    """
    full = dict(header, id=entry_id, kid=key.kid)
    header_bytes = marshal.dumps(full)
    plain = value.encode() if isinstance(value, str) else value
    nonce = os.urandom(12)
    ciphertext: bytes = aesgcm()(key.key).encrypt(nonce, plain, MAGIC + header_bytes)
    return MAGIC + len(header_bytes).to_bytes(4, "big") + header_bytes + nonce + ciphertext


def _split(blob: bytes) -> tuple[bytes, bytes]:
    """(header bytes, nonce+ciphertext), or CorruptEntry for anything not shaped like an entry."""
    if len(blob) < 8 or not blob.startswith(MAGIC):
        raise CorruptEntry("bad magic")
    size = int.from_bytes(blob[4:8], "big")
    header_bytes = blob[8 : 8 + size]
    rest = blob[8 + size :]
    if len(header_bytes) != size or len(rest) < 12 + 16:
        raise CorruptEntry("truncated")
    return header_bytes, rest


def unseal_bytes(key: DataKey, entry_id: str, blob: bytes) -> tuple[dict[str, Any], bytes]:
    """Return (header, plaintext), or raise CorruptEntry for anything not sealed here for this id.

    Decrypt first (which authenticates the header bytes), parse the header after.
    """
    header_bytes, rest = _split(blob)
    cipher = aesgcm()(key.key)
    try:
        plain: bytes = cipher.decrypt(rest[:12], rest[12:], MAGIC + header_bytes)
        header = marshal.loads(header_bytes)  # noqa: S302 - bytes AES-GCM just authenticated
    except Exception:
        raise CorruptEntry("does not decrypt") from None
    if (
        not isinstance(header, dict)
        or header.get("id") != entry_id
        or (header.get("kid") != key.kid)
    ):
        raise CorruptEntry("foreign entry")
    return header, plain


def unseal(key: DataKey, entry_id: str, blob: bytes) -> tuple[dict[str, Any], str]:
    """Return (header, value) of an entry sealed here for ``entry_id``."""
    header, plain = unseal_bytes(key, entry_id, blob)
    try:
        return header, plain.decode()
    except UnicodeDecodeError:
        raise CorruptEntry("not text") from None
