"""The RFC 9421 subset both sides of a peer call speak, and the platform identity it signs with."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from govshare_common.message_signatures import (
    SignatureRefused,
    read_signature,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from govshare_common.platform_identity import division_code_problem, identity, parse_public_key
from govshare_common.purpose_keys import PurposeKeys

URL = "https://city.example.gov.cn/api/v1/catalog/federation/changes?after=0"
NOW = 1_780_000_000
KEY = Ed25519PrivateKey.generate()


def _signed(**over: object) -> dict[str, str]:
    args: dict[str, object] = {
        "method": "GET",
        "target_uri": URL,
        "body": b"",
        "key": KEY,
        "keyid": "320400",
        "created": NOW,
        "idempotency_key": "k-1",
    }
    args.update(over)
    return sign_request(**args)  # type: ignore[arg-type]


def _verify(
    headers: dict[str, str], *, method: str = "GET", uri: str = URL, body: bytes = b"", now: float = NOW
) -> str:
    return verify_request(
        read_signature(headers),
        method=method,
        target_uri=uri,
        headers=headers,
        body=body,
        public_key=KEY.public_key(),
        now=now,
    )


def test_a_signed_request_verifies_and_names_its_signer_and_nonce() -> None:
    headers = _signed(method="POST", body=b'{"a":1}')
    assert _verify(headers, method="POST", body=b'{"a":1}') == "k-1"
    sig = read_signature(headers)
    assert sig.keyid == "320400" and len(sig.nonce) >= 16
    assert headers["Signature-Input"].startswith(
        'govshare=("@method" "@target-uri" "content-digest" "idempotency-key");created=1780000000;keyid="320400"'
    )
    assert headers["Content-Digest"].startswith("sha-256=:")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"method": "POST"}, "signature_invalid"),
        ({"uri": URL.replace("after=0", "after=9")}, "signature_invalid"),
        ({"body": b"tampered"}, "content_digest_mismatch"),
        ({"now": NOW + 301}, "signature_expired"),
        ({"now": NOW - 301}, "signature_expired"),
    ],
)
def test_a_request_changed_in_any_covered_part_or_too_old_is_refused(change: dict[str, object], code: str) -> None:
    with pytest.raises(SignatureRefused) as refused:
        _verify(_signed(), **change)  # type: ignore[arg-type]
    assert refused.value.code == code and refused.value.zh and refused.value.en


def test_another_key_a_swapped_idempotency_key_or_a_narrower_signature_is_refused() -> None:
    other = _signed(key=Ed25519PrivateKey.generate())
    with pytest.raises(SignatureRefused, match="registered public key"):
        _verify(other)
    swapped = {**_signed(), "Idempotency-Key": "k-2"}
    with pytest.raises(SignatureRefused) as refused:
        _verify(swapped)
    assert refused.value.code == "signature_invalid"
    narrow = {**_signed(), "Signature-Input": _signed()["Signature-Input"].replace(' "idempotency-key"', "")}
    with pytest.raises(SignatureRefused) as refused:
        _verify(narrow)
    assert refused.value.code == "signature_incomplete"
    for broken in ({}, {**_signed(), "Signature": "govshare=:not base64!:"}, {**_signed(), "Signature-Input": "x"}):
        with pytest.raises(SignatureRefused) as refused:
            _verify(broken)
        assert refused.value.code in ("signature_missing", "signature_malformed")


def test_a_response_verifies_only_for_the_request_it_answers() -> None:
    body = b'{"changes":[]}'
    headers = sign_response(status=200, body=body, key=KEY, keyid="320404", created=NOW, nonce="n-1")
    kw = {"headers": headers, "body": body, "public_key": KEY.public_key(), "keyid": "320404", "now": NOW}
    verify_response(status=200, nonce="n-1", **kw)  # type: ignore[arg-type]
    with pytest.raises(SignatureRefused) as refused:
        verify_response(status=200, nonce="n-2", **kw)  # type: ignore[arg-type]
    assert refused.value.code == "response_not_for_request"
    with pytest.raises(SignatureRefused) as refused:
        verify_response(status=500, nonce="n-1", **kw)  # type: ignore[arg-type]
    assert refused.value.code == "signature_invalid"


def test_the_platform_key_comes_from_the_master_secret_and_its_published_form_round_trips() -> None:
    keys = PurposeKeys(b"m" * 40)
    me = identity(keys, division_code="320404", level="district", name="常州市钟楼区")
    assert me is not None
    again = identity(PurposeKeys(b"m" * 40), division_code="320404", level="district", name="常州市钟楼区")
    other = identity(PurposeKeys(b"n" * 40), division_code="320404", level="district", name="常州市钟楼区")
    assert again is not None and other is not None
    published = me.published()
    assert published["public_key"] == again.published()["public_key"] != other.published()["public_key"]
    assert parse_public_key(published["public_key"]) is not None
    assert parse_public_key(base64.urlsafe_b64encode(b"short").decode()) is None
    rotated = identity(
        PurposeKeys(b"m" * 40, versions={"federation-signing": 2}), division_code="320404", level="district", name="x"
    )
    assert rotated is not None and rotated.published()["public_key"] != published["public_key"]
    assert identity(keys, division_code=None, level="district", name="x") is None


@pytest.mark.parametrize(("code", "ok"), [("320404", True), ("110000", True), ("32040", False), ("990000", False)])
def test_division_codes_follow_gb_t_2260(code: str, ok: bool) -> None:
    assert (division_code_problem(code) is None) is ok
