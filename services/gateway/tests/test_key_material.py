"""The gateway's key material without any service running: wrapped signing keys and client-secret hashes keep
working through a rotation of their purpose key or of the master secret, and stop when both moved on."""

from __future__ import annotations

import pytest

from govshare_common.purpose_keys import Purpose, PurposeKeys

from gateway.keys import KeyUnwrapFailed, unwrap, wrap
from gateway.secrets_util import lookup_hashes, secret_hash, secret_matches

OLD = b"old-master-secret-0123456789abcdef-0123"
NEW = b"new-master-secret-0123456789abcdef-4567"


def test_a_wrapped_key_unwraps_after_its_purpose_rotated_and_after_the_master_was_replaced() -> None:
    blob = wrap(b"private key bytes", PurposeKeys(OLD), "kid-1")
    assert blob.startswith(b"v1.")
    rotated = PurposeKeys(OLD, versions={"key-wrapping": 2})
    assert unwrap(blob, rotated, "kid-1") == b"private key bytes"
    assert wrap(b"x", rotated, "kid-2").startswith(b"v2.")
    replaced = PurposeKeys(NEW, previous_master=OLD)
    assert unwrap(blob, replaced, "kid-1") == b"private key bytes"
    with pytest.raises(KeyUnwrapFailed):
        unwrap(blob, PurposeKeys(NEW), "kid-1")  # the old master dropped too early
    with pytest.raises(KeyUnwrapFailed):
        unwrap(blob, PurposeKeys(OLD), "kid-other")  # a key's wrapping is bound to its kid


def test_a_client_secret_hashed_before_a_rotation_still_verifies_and_a_wrong_one_never_does() -> None:
    before = secret_hash("s3cret", PurposeKeys(OLD))
    rotated = PurposeKeys(OLD, versions={"client-secret-hashing": 2})
    after = secret_hash("s3cret", rotated)
    assert after.startswith("v2$") and after != before
    assert secret_matches("s3cret", before, rotated) and secret_matches("s3cret", after, rotated)
    assert not secret_matches("other", before, rotated)
    assert set(lookup_hashes("s3cret", rotated)) >= {before, after}
    # Rotating one purpose leaves the others as they were.
    hashing = Purpose.IDENTIFIER_HASHING
    assert rotated.current(hashing).key == PurposeKeys(OLD).current(hashing).key
    # Two rotations on, a version-1 hash is no longer accepted.
    assert not secret_matches("s3cret", before, PurposeKeys(OLD, versions={"client-secret-hashing": 3}))


def test_what_a_data_folder_made_before_purpose_keys_still_unwraps_and_verifies() -> None:
    import hashlib
    import hmac
    import os

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # The former wrapping: HKDF of the internal secret itself, no version label; the former hash: HMAC with it.
    legacy = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"govshare-signing-keys", info=b"v1").derive(OLD)
    nonce = os.urandom(12)
    blob = nonce + AESGCM(legacy).encrypt(nonce, b"old private key", b"kid-0")
    assert unwrap(blob, PurposeKeys(OLD), "kid-0") == b"old private key"
    old_hash = hmac.new(OLD, b"old-client-secret", hashlib.sha256).hexdigest()
    assert secret_matches("old-client-secret", old_hash, PurposeKeys(OLD))
    assert not secret_matches("old-client-secret", old_hash, PurposeKeys(NEW))
