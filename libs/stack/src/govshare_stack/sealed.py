"""The encrypted container a backup is written in: a passphrase stretched with scrypt into an AES-256-GCM key,
the file sealed in 1 MiB chunks, each chunk's number and whether it is the last bound into its tag, so a
chunk cannot be changed, dropped, reordered or the file cut short without the opening failing.

    magic(16) salt(16) nonce_prefix(8) | length(4) chunk ... (the last chunk flagged, possibly empty)
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"GOVSHARE-BACKUP\x01"
CHUNK = 1 << 20
MIN_PASSPHRASE = 16
PASSPHRASE_ENV = "GOVSHARE_BACKUP_PASSPHRASE"


class SealError(ValueError):
    """The container cannot be opened: wrong passphrase, or the file was changed or cut short."""


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise SealError(f"the backup passphrase must be at least {MIN_PASSPHRASE} characters long")


def _key(passphrase: str, salt: bytes) -> AESGCM:
    return AESGCM(Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode()))


def _aad(header: bytes, number: int, last: bool) -> bytes:
    return header + struct.pack(">I?", number, last)


def seal(plain: Path, sealed: Path, passphrase: str) -> None:
    check_passphrase(passphrase)
    salt, prefix = os.urandom(16), os.urandom(8)
    header = MAGIC + salt + prefix
    aead = _key(passphrase, salt)
    fd = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(plain, "rb") as src, os.fdopen(fd, "wb") as out:
        out.write(header)
        number = 0
        chunk = src.read(CHUNK)
        while True:
            following = src.read(CHUNK)
            last = not following
            nonce = prefix + struct.pack(">I", number)
            box = aead.encrypt(nonce, chunk, _aad(header, number, last))
            out.write(struct.pack(">I", len(box)) + box)
            if last:
                return
            chunk, number = following, number + 1


def unseal(sealed: Path, plain: Path, passphrase: str) -> None:
    with open(sealed, "rb") as src, open(plain, "wb") as out:
        header = src.read(len(MAGIC) + 24)
        if len(header) != len(MAGIC) + 24 or not header.startswith(MAGIC):
            raise SealError(f"{sealed} is not a govshare backup")
        salt, prefix = header[len(MAGIC) : len(MAGIC) + 16], header[len(MAGIC) + 16 :]
        aead = _key(passphrase, salt)
        number = 0
        while True:
            box = _read_box(src)
            if box is None:
                raise SealError(f"{sealed} is cut short (no last chunk)")
            nonce = prefix + struct.pack(">I", number)
            for last in (False, True):
                try:
                    out.write(aead.decrypt(nonce, box, _aad(header, number, last)))
                except InvalidTag:
                    continue
                break
            else:
                raise SealError("wrong backup passphrase, or the backup file was changed")
            if last:
                if src.read(1):
                    raise SealError(f"{sealed} has data after its last chunk")
                return
            number += 1


def _read_box(src: BinaryIO) -> bytes | None:
    size = src.read(4)
    if len(size) < 4:
        return None
    (length,) = struct.unpack(">I", size)
    box = src.read(length)
    return box if len(box) == length else None
