"""Platform-to-platform messages signed as RFC 9421 HTTP message signatures (the subset govshare speaks).

Both sides of a peer call use this module, so they agree on every byte of the signature base:

- a request covers `@method`, `@target-uri`, `content-digest` (RFC 9530, sha-256 of the body, empty for a GET)
  and `idempotency-key`, with the parameters `created`, `keyid` (the signer's division code), `nonce` and
  `alg="ed25519"`; the receiver refuses a `created` outside the replay window and keeps each nonce for that
  window so the same message is refused a second time;
- a response covers `@status` and `content-digest`, with the request's nonce as its own, so an answer cannot
  be replayed to another request.

Pure: no web framework; callers pass the method, the URI as the signer addressed it, the headers and the body.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

LABEL = "govshare"
ALGORITHM = "ed25519"
REQUEST_COMPONENTS = ("@method", "@target-uri", "content-digest", "idempotency-key")
RESPONSE_COMPONENTS = ("@status", "content-digest")
# How far a message's `created` may be from the receiver's clock; nonces are kept at least this long.
REPLAY_WINDOW_SECONDS = 300

_INPUT = re.compile(
    r'^(?P<label>[a-z][a-z0-9_-]*)=\((?P<components>[^()]*)\)(?P<params>(;[a-z]+=("[^"\\]*"|[0-9]+))*)$'
)
_PARAM = re.compile(r';([a-z]+)=("([^"\\]*)"|([0-9]+))')
_SIGNATURE = re.compile(r"^(?P<label>[a-z][a-z0-9_-]*)=:(?P<value>[A-Za-z0-9+/=]+):$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~:-]{1,200}$")


class SignatureRefused(Exception):
    """A message this platform will not accept; `code` names why (also the access record's reason)."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.zh = zh
        self.en = en


@dataclass(frozen=True)
class MessageSignature:
    """What a message's Signature-Input and Signature headers say."""

    components: tuple[str, ...]
    params: str  # the serialised parameters, exactly as signed
    created: int
    keyid: str
    nonce: str
    alg: str
    signature: bytes


def content_digest(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


def _params(created: int, keyid: str, nonce: str) -> str:
    return f';created={created};keyid="{keyid}";nonce="{nonce}";alg="{ALGORITHM}"'


def _base(components: tuple[str, ...], values: Mapping[str, str], params: str) -> bytes:
    lines = [f'"{c}": {values[c]}' for c in components]
    listed = " ".join(f'"{c}"' for c in components)
    lines.append(f'"@signature-params": ({listed}){params}')
    return "\n".join(lines).encode()


def _signed_headers(
    components: tuple[str, ...],
    values: Mapping[str, str],
    *,
    key: Ed25519PrivateKey,
    keyid: str,
    created: int,
    nonce: str,
) -> dict[str, str]:
    params = _params(created, keyid, nonce)
    signature = key.sign(_base(components, values, params))
    listed = " ".join(f'"{c}"' for c in components)
    return {
        "Signature-Input": f"{LABEL}=({listed}){params}",
        "Signature": f"{LABEL}=:{base64.b64encode(signature).decode()}:",
    }


def sign_request(
    *,
    method: str,
    target_uri: str,
    body: bytes,
    key: Ed25519PrivateKey,
    keyid: str,
    created: int,
    idempotency_key: str,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that make this request a signed peer call."""
    values = {
        "@method": method.upper(),
        "@target-uri": target_uri,
        "content-digest": content_digest(body),
        "idempotency-key": idempotency_key,
    }
    signed = _signed_headers(
        REQUEST_COMPONENTS, values, key=key, keyid=keyid, created=created, nonce=nonce or new_nonce()
    )
    return {"Content-Digest": values["content-digest"], "Idempotency-Key": idempotency_key, **signed}


def sign_response(
    *, status: int, body: bytes, key: Ed25519PrivateKey, keyid: str, created: int, nonce: str
) -> dict[str, str]:
    values = {"@status": str(status), "content-digest": content_digest(body)}
    signed = _signed_headers(RESPONSE_COMPONENTS, values, key=key, keyid=keyid, created=created, nonce=nonce)
    return {"Content-Digest": values["content-digest"], **signed}


def read_signature(headers: Mapping[str, str]) -> MessageSignature:
    """The message's signature as declared; refused when it is missing or not in the form govshare signs."""
    declared, given = _header(headers, "signature-input"), _header(headers, "signature")
    if not declared or not given:
        raise SignatureRefused(
            "signature_missing",
            "平台间调用须带 RFC 9421 消息签名（Signature-Input 与 Signature）。",
            "A peer call must carry an RFC 9421 message signature (Signature-Input and Signature).",
        )
    found, sig = _INPUT.match(declared.strip()), _SIGNATURE.match(given.strip())
    if found is None or sig is None or found["label"] != sig["label"]:
        raise _malformed()
    params: dict[str, str] = {}
    for m in _PARAM.finditer(found["params"]):
        params[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(4)
    components = tuple(c.strip('"') for c in found["components"].split())
    if not {"created", "keyid", "nonce"} <= params.keys() or not params["created"].isdigit():
        raise _malformed()
    if not _TOKEN.match(params["nonce"]) or not _TOKEN.match(params["keyid"]):
        raise _malformed()
    try:
        signature = base64.b64decode(sig["value"], validate=True)
    except ValueError:
        raise _malformed() from None
    return MessageSignature(
        components=components,
        params=found["params"],
        created=int(params["created"]),
        keyid=params["keyid"],
        nonce=params["nonce"],
        alg=params.get("alg", ALGORITHM),
        signature=signature,
    )


def _malformed() -> SignatureRefused:
    return SignatureRefused(
        "signature_malformed",
        "消息签名格式不正确。",
        "The message signature is not in the form this platform accepts (RFC 9421, label govshare, ed25519).",
    )


def _check(
    sig: MessageSignature,
    required: tuple[str, ...],
    values: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_key: Ed25519PublicKey,
    now: float,
    window: float,
) -> None:
    if sig.components != required or sig.alg != ALGORITHM:
        raise SignatureRefused(
            "signature_incomplete",
            "消息签名未覆盖平台要求的全部组件。",
            f"The signature must cover exactly {', '.join(required)} with alg ed25519.",
        )
    if abs(now - sig.created) > window:
        raise SignatureRefused(
            "signature_expired",
            "消息签名的创建时间超出允许的时间窗口（可能是重放或时钟偏差）。",
            f"The signature's created time is more than {int(window)} s from this platform's clock.",
        )
    if _header(headers, "content-digest") != content_digest(body):
        raise SignatureRefused(
            "content_digest_mismatch",
            "Content-Digest 与消息体不符。",
            "The Content-Digest header does not match the body.",
        )
    base = _base(required, {**values, "content-digest": content_digest(body)}, sig.params)
    try:
        public_key.verify(sig.signature, base)
    except InvalidSignature:
        raise SignatureRefused(
            "signature_invalid",
            "消息签名验证失败：签名与登记的对端平台公钥不符。",
            "The message signature does not verify against the peer's registered public key.",
        ) from None


def verify_request(
    sig: MessageSignature,
    *,
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    body: bytes,
    public_key: Ed25519PublicKey,
    now: float,
    window: float = REPLAY_WINDOW_SECONDS,
) -> str:
    """Check a signed request against the signer's public key; returns its idempotency key. The nonce is the
    caller's to remember (it is refused the second time within the window)."""
    idempotency_key = _header(headers, "idempotency-key")
    if not idempotency_key or not _TOKEN.match(idempotency_key):
        raise SignatureRefused(
            "idempotency_key_missing",
            "平台间调用须带 Idempotency-Key。",
            "A peer call must carry an Idempotency-Key header.",
        )
    values = {"@method": method.upper(), "@target-uri": target_uri, "idempotency-key": idempotency_key}
    _check(sig, REQUEST_COMPONENTS, values, headers, body, public_key=public_key, now=now, window=window)
    return idempotency_key


def verify_response(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    public_key: Ed25519PublicKey,
    keyid: str,
    nonce: str,
    now: float,
    window: float = REPLAY_WINDOW_SECONDS,
) -> None:
    """Check that the peer itself answered this very request (its key, the request's nonce)."""
    sig = read_signature(headers)
    if sig.keyid != keyid or sig.nonce != nonce:
        raise SignatureRefused(
            "response_not_for_request",
            "应答的签名不属于本次请求或不是对端平台所签。",
            "The answer is not signed by the peer for this request (keyid or nonce differ).",
        )
    _check(
        sig, RESPONSE_COMPONENTS, {"@status": str(status)}, headers, body, public_key=public_key, now=now, window=window
    )
