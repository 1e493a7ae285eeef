"""Personal data at rest (等保三级, 004 Art.28): the hosted libraries keep the values of protected items (ID
numbers, names, addresses, phone numbers — `domain.protection`) encrypted by this service, never in clear.

- A record's protected values travel together in one AES-256-GCM box per row, under the key `"~"` of its
  JSON (`"<kid>.<nonce+ciphertext>"`, the resource code as associated data): one encryption per row, so a
  100,000-row batch pays 100,000 small seals, not one per value.
- A protected record key or subject identifier is stored as a token: AES-GCM with a synthetic nonce (an HMAC
  of the value), so the same value always gives the same token under one key — the keyed blind index that
  equality lookups (query by ID number, single-source checks, the record key itself) need — and the token
  opens back to the value for the answer. Lookups ask for the value's token under every key still in the
  keyring, and for the value itself (rows written before sealing), so nothing is missed while keys rotate.
- Keys live in the keyring, not the database: `<keyring>/exchange-records/<kid>.key` (64 random bytes,
  base64: the AES key and the HMAC key) and `current` naming the key that seals. `rotate_key` adds a key and
  makes it current; the `exchange-reseal` job moves every row onto it, after which older keys may be removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange_svc.domain.protection import protected_items
from exchange_svc.domain.resources import HostedResource

FOLDER = "exchange-records"
SEALED = "~"  # the key, in a record's JSON, of its sealed values; and the first character of a token
_TOKEN_AAD = b"govshare-exchange-token:v1"


class SealingError(RuntimeError):
    """A sealed value cannot be opened: its key is not in the keyring, or it was changed."""


# URL-safe base64 by binascii and one translate (base64.urlsafe_* is three Python calls deep: a tenth of a row's
# sealing cost, two to three times per row).
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _unb64(text: str) -> bytes:
    return binascii.a2b_base64((text + "=" * (-len(text) % 4)).encode("ascii").translate(_FROM_URLSAFE))


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: AESGCM
    mac: bytes
    # HMAC-SHA256 with its padded key absorbed once: a copy per value instead of hmac.new (a third of the cost).
    _inner: Any = field(init=False, repr=False, compare=False)
    _outer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        padded = (hashlib.sha256(self.mac).digest() if len(self.mac) > 64 else self.mac).ljust(64, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in padded)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in padded)))

    def hmac(self, plain: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(plain)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return bytes(outer.digest())


def rotate_key(keyring: Path) -> str:
    """A new sealing key, made current; returns its id. Rows move onto it with the next reseal runs."""
    folder = Path(keyring) / FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = f"k{secrets.token_hex(4)}"
    fd = os.open(folder / f"{kid}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(os.urandom(64)).decode() + "\n")
    tmp = folder / f".current.{os.getpid()}"
    tmp.write_text(kid + "\n")
    os.replace(tmp, folder / "current")
    return kid


class Sealer:
    """The keyring as this process sees it (`reload` picks up a rotation)."""

    def __init__(self, keyring: Path) -> None:
        self.folder = Path(keyring) / FOLDER
        self.reload()

    def reload(self) -> None:
        if not (self.folder / "current").exists():
            rotate_key(self.folder.parent)
        keys: dict[str, _Key] = {}
        for path in sorted(self.folder.glob("*.key")):
            raw = base64.b64decode(path.read_text().strip())
            keys[path.stem] = _Key(path.stem, AESGCM(raw[:32]), raw[32:])
        current = (self.folder / "current").read_text().strip()
        if current not in keys:
            raise SealingError(f"{self.folder / 'current'} names key {current!r}, which is not in the keyring")
        self._keys = keys
        self.current = keys[current]

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def _key(self, kid: str) -> _Key:
        try:
            return self._keys[kid]
        except KeyError:
            raise SealingError(f"sealing key {kid!r} is not in the keyring {self.folder}") from None

    # --- tokens: record keys and subject identifiers -------------------------------------------------------
    def token(self, value: str, key: _Key | None = None) -> str:
        key = key or self.current
        plain = value.encode()
        nonce = key.hmac(plain)[:12]
        return f"{SEALED}{key.kid}.{_b64(nonce + key.aead.encrypt(nonce, plain, _TOKEN_AAD))}"

    def tokens(self, values: Iterable[str]) -> dict[str, str]:
        """value -> its token under the current key, each distinct value sealed once."""
        return {v: self.token(v) for v in set(values)}

    def lookups(self, values: Iterable[str], current: dict[str, str] | None = None) -> list[str]:
        """What a stored key or subject equal to one of `values` may look like: its token under each key, or
        the value itself (written before sealing). `current`: tokens under the current key already made."""
        out: list[str] = []
        known = current or {}
        for value in values:
            out.append(value)
            for key in self._keys.values():
                made = known.get(value) if key is self.current else None
                out.append(made or self.token(value, key))
        return out

    def open_token(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(SEALED):
            return stored
        kid, _, box = stored[1:].partition(".")
        raw = _unb64(box)
        try:
            return self._key(kid).aead.decrypt(raw[:12], raw[12:], _TOKEN_AAD).decode()
        except InvalidTag:
            raise SealingError("a sealed record key was changed") from None

    def is_current(self, stored: str | None) -> bool:
        return stored is None or stored.startswith(f"{SEALED}{self.current.kid}.")

    # --- boxes: the protected values of one row ------------------------------------------------------------
    def seal_box(self, values: Any, context: str) -> str:
        return self.seal_boxes([values], context)[0]

    def seal_boxes(self, many: list[Any], context: str) -> list[str]:
        """One box per element, the nonces drawn in one read of the system's random source."""
        key = self.current
        encrypt, aad, prefix = key.aead.encrypt, context.encode(), f"{key.kid}."
        nonces = os.urandom(12 * len(many))
        out = []
        for i, values in enumerate(many):
            nonce = nonces[12 * i : 12 * i + 12]
            out.append(prefix + _b64(nonce + encrypt(nonce, dumps(values), aad)))
        return out

    def open_box(self, sealed: str, context: str) -> Any:
        kid, _, box = sealed.partition(".")
        raw = _unb64(box)
        try:
            return orjson.loads(self._key(kid).aead.decrypt(raw[:12], raw[12:], context.encode()))
        except InvalidTag:
            raise SealingError(f"sealed values of {context} were changed or moved") from None

    def open_value(self, code: str, item: str, stored: Any) -> Any:
        """A value `ResourceSeal.seal_value` kept (or one stored in clear before sealing)."""
        if isinstance(stored, dict) and set(stored) == {SEALED}:
            return self.open_box(stored[SEALED], f"{code}#{item}")
        return stored

    def for_resource(self, resource: HostedResource) -> ResourceSeal:
        return ResourceSeal(self, resource.code, protected_items(resource), resource)


@dataclass(frozen=True)
class ResourceSeal:
    """Sealing as one resource needs it: which of its items are protected, its key and subject tokens."""

    sealer: Sealer
    code: str
    protected: frozenset[str]
    resource: HostedResource

    @property
    def key_protected(self) -> bool:
        return any(k in self.protected for k in self.resource.key_items)

    @property
    def subject_protected(self) -> bool:
        item = self.resource.subject_item
        return item is not None and item.name in self.protected

    def key(self, plain: str) -> str:
        return self.sealer.token(plain) if self.key_protected else plain

    def subject(self, plain: str | None) -> str | None:
        return self.sealer.token(plain) if plain is not None and self.subject_protected else plain

    def key_lookups(self, plain: Iterable[str], current: dict[str, str] | None = None) -> list[str]:
        return self.sealer.lookups(plain, current) if self.key_protected else list(plain)

    def key_tokens(self, plain: Iterable[str]) -> dict[str, str]:
        """plain key -> as stored under the current key (itself when keys are not protected)."""
        return self.sealer.tokens(plain) if self.key_protected else {k: k for k in plain}

    def subject_tokens(self, plain: Iterable[str], known: dict[str, str]) -> dict[str, str]:
        """subject -> as stored, each distinct one sealed once; `known`: key_tokens already made (a token
        depends only on the value and the key, so an ID number that is both key and subject is sealed once)."""
        if not self.subject_protected:
            return {s: s for s in plain}
        reuse = known if self.key_protected else {}
        return {s: reuse.get(s) or self.sealer.token(s) for s in set(plain)}

    def subject_lookups(self, plain: Iterable[str]) -> list[str]:
        return self.sealer.lookups(plain) if self.subject_protected else list(plain)

    def open_key(self, stored: str) -> str:
        return self.sealer.open_token(stored) or ""

    def open_subject(self, stored: str | None) -> str | None:
        return self.sealer.open_token(stored)

    def seal(self, data: dict[str, Any]) -> dict[str, Any]:
        """A record's JSON as stored: its protected values in one box."""
        return self.seal_many([data])[0]

    def seal_many(self, datas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        protected = self.protected
        shown_all: list[dict[str, Any]] = []
        hidden_all: list[dict[str, Any]] = []
        for data in datas:
            shown: dict[str, Any] = {}
            hidden: dict[str, Any] = {}
            for k, v in data.items():
                (hidden if k in protected else shown)[k] = v
            shown_all.append(shown)
            hidden_all.append(hidden)
        boxed = [i for i, hidden in enumerate(hidden_all) if hidden]
        for i, box in zip(boxed, self.sealer.seal_boxes([hidden_all[i] for i in boxed], self.code), strict=True):
            shown_all[i][SEALED] = box
        return shown_all

    def open(self, stored: Any) -> dict[str, Any]:
        data = orjson.loads(stored) if isinstance(stored, str) else dict(stored or {})
        sealed = data.pop(SEALED, None)
        if sealed is not None:
            data.update(self.sealer.open_box(sealed, self.code))
        return data

    def seal_value(self, item: str, value: Any) -> Any:
        """One item's value kept apart from its record (a conflict's candidate, a dispute's correction)."""
        if item not in self.protected or value is None:
            return value
        return {SEALED: self.sealer.seal_box(value, f"{self.code}#{item}")}

    def open_value(self, item: str, stored: Any) -> Any:
        return self.sealer.open_value(self.code, item, stored)
