"""The master secret and its purpose keys: refused when it is known or short, one key per purpose and
version, and a window of versions accepted while a purpose rotates."""

from __future__ import annotations

import pytest

from govshare_common.errors import Forbidden
from govshare_common.internal_auth import internal_token, verify_internal
from govshare_common.purpose_keys import MasterSecretRefused, Purpose, PurposeKeys, check_master_secret
from govshare_common.settings import Settings

MASTER = b"a-master-secret-of-enough-length-0123456789"


@pytest.mark.parametrize("value", ["", "dev-internal-secret-change-me", "x" * 31])
def test_the_default_an_empty_or_a_short_secret_is_refused_with_how_to_make_one(value: str) -> None:
    with pytest.raises(MasterSecretRefused, match=r"secrets\.token_urlsafe\(48\)"):
        check_master_secret(value)


def test_a_secret_file_is_read_and_checked(tmp_path) -> None:
    path = tmp_path / "master-secret"
    path.write_text("short\n")
    with pytest.raises(MasterSecretRefused, match="too short"):
        Settings(master_secret_file=str(path)).purpose_keys()
    path.write_text(MASTER.decode() + "\n")
    assert Settings(master_secret_file=str(path)).purpose_keys().current(Purpose.INTERNAL_CALLS).key == (
        PurposeKeys(MASTER).current(Purpose.INTERNAL_CALLS).key
    )


def test_every_purpose_and_version_has_its_own_key() -> None:
    keys = PurposeKeys(MASTER)
    derived = {keys.current(p).key for p in Purpose}
    assert len(derived) == len(Purpose)
    assert PurposeKeys(MASTER, versions={"key-wrapping": 2}).current(Purpose.KEY_WRAPPING).key not in derived


def test_a_service_token_is_accepted_one_version_either_side_and_not_further() -> None:
    v2 = PurposeKeys(MASTER, versions={"internal-calls": 2})
    for signer in (1, 2, 3):
        token = internal_token(PurposeKeys(MASTER, versions={"internal-calls": signer}), "audit")
        assert verify_internal(v2, token) == "audit"
    with pytest.raises(Forbidden):
        verify_internal(v2, internal_token(PurposeKeys(MASTER, versions={"internal-calls": 4}), "audit"))
    with pytest.raises(Forbidden):
        verify_internal(v2, internal_token(PurposeKeys(b"another-master-secret-entirely-0123456789"), "audit"))
