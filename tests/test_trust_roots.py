"""The platform's trust roots through real services: the master secret that must be given, internal routes
that the public door never answers, purpose keys that rotate one at a time, signing keys that rotate with
overlap on every replica, the credential throttle, and administrators' second factor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from gateway_helpers import GONG_AN, PASSWORD, access_events, admin_headers, setup_department

from govshare_common.internal_auth import HEADER, internal_token
from govshare_common.purpose_keys import PurposeKeys
from govshare_common.testing import eventually, free_port, serve

from gateway.app import create_app as create_gateway

SECRET = "test-internal-secret-0123456789abcdef"  # the root conftest's
NEW_SECRET = "a-new-master-secret-for-the-rotation-test-0123456789"


def keys(master: str = SECRET, **versions: int) -> PurposeKeys:
    return PurposeKeys(master.encode(), versions={k.replace("_", "-"): v for k, v in versions.items()})


# --- 1. the master secret --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("dev-internal-secret-change-me", "documented default"),
        ("short-secret", "too short (12 bytes, at least 32)"),
        (None, "no master secret"),
    ],
)
def test_a_service_refuses_to_start_on_the_default_a_short_or_no_master_secret(make_settings, secret, said) -> None:
    settings = make_settings(master_secret=secret)
    with pytest.raises(SystemExit) as refused:
        create_gateway(settings)
    message = str(refused.value)
    assert said in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in message


def test_govshare_up_refuses_a_short_master_secret_before_starting_anything(tmp_path: Path) -> None:
    env = {**os.environ, "GOVSHARE_HOME": str(tmp_path / "home"), "GOVSHARE_MASTER_SECRET": "too-short"}
    env["GOVSHARE_GATEWAY_PORT"] = str(free_port())
    done = subprocess.run(
        [str(Path(sys.executable).parent / "govshare"), "up"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "too short" in done.stderr and "token_urlsafe(48)" in done.stderr
    assert not (tmp_path / "home" / "pgdata").exists()


# --- 2. internal routes ----------------------------------------------------------------------------------------


async def test_internal_routes_are_never_answered_at_the_public_door(platform) -> None:
    async with platform("gateway", "audit") as p:
        gateway = p.apps["gateway"]
        service_token = internal_token(gateway.state.settings.purpose_keys(), "audit")
        admin = await admin_headers(p)
        credentials: list[dict[str, str]] = [
            {},
            {HEADER: service_token},
            admin,
            {HEADER: service_token, **admin},
            {HEADER: internal_token(keys(SECRET, internal_calls=2), "audit")},
        ]
        async with p.client() as door:
            for path in ("/internal/events", "/internal/event-types", "/internal/events?after=0&limit=5"):
                for headers in credentials:
                    r = await door.get(path, headers=headers)
                    assert r.status_code == 404, (path, headers.keys(), r.text)
                    assert set(r.json()) == {"code", "message", "details", "trace_id"}
                    assert "events" not in r.json()
        # The same service token on the internal listener is answered; nothing of the public API is there.
        async with p.client("gateway-internal") as inside:
            assert (await inside.get("/internal/events")).status_code == 403
            r = await inside.get("/internal/events", params={"after": 0}, headers={HEADER: service_token})
            assert r.status_code == 200 and r.json()["head"] >= 0
            assert (await inside.get("/api/v1/identity/users", headers=admin)).status_code == 404
        refusals = [e for e in await access_events(gateway) if e["reason"] == "internal_route_on_public_door"]
        assert len(refusals) == 15 and {e["outcome"] for e in refusals} == {"denied"}


# --- 1. purpose keys rotate one at a time ----------------------------------------------------------------------


async def test_each_purpose_key_rotates_without_breaking_what_was_made_under_the_previous_one(platform) -> None:
    async with platform("gateway", "request") as p:
        admin = await admin_headers(p)
        async with p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            created = await http.post(
                "/api/v1/identity/clients", json={"name": "前置机", "department_code": GONG_AN}, headers=admin
            )
            client = created.json()
        # The internal-call key rotates while services run: the request service (still on version 1) takes
        # calls signed with version 2 by a service restarted first, and version 1 ones too.
        async with p.client("request") as request_svc:
            for signer in (keys(internal_calls=2), keys(internal_calls=1)):
                r = await request_svc.get("/internal/events", headers={HEADER: internal_token(signer, "audit")})
                assert r.status_code == 200, r.text
            # Two versions ahead is not a rotation in progress, it is a key this service cannot know to trust.
            r = await request_svc.get("/internal/events", headers={HEADER: internal_token(keys(internal_calls=3), "a")})
            assert r.status_code == 403

    rotated = {"internal-calls": 2, "key-wrapping": 2, "client-secret-hashing": 2, "identifier-hashing": 2}
    async with platform("gateway", "request", key_versions=rotated) as p:
        async with p.client() as http:
            # The signing key wrapped under key-wrapping v1 still unwraps: the gateway started and signs.
            token = await p.token()
            assert (await http.get("/api/v1/identity/users", headers={"Authorization": f"Bearer {token}"})).is_success
            # The client secret hashed under v1 still verifies.
            r = await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                },
            )
            assert r.status_code == 200, r.text
        async with p.client("request") as request_svc:
            old = await request_svc.get("/internal/events", headers={HEADER: internal_token(keys(), "audit")})
            assert old.status_code == 200  # v1, the version before: still accepted while it rotates out

    # The master secret itself is replaced: the old one is named previous, and everything made under it works.
    async with (
        platform("gateway", master_secret=NEW_SECRET, master_secret_previous=SECRET, key_versions=rotated) as p,
        p.client() as http,
    ):
        assert (
            await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                },
            )
        ).status_code == 200
        token = await p.token()
        assert (await http.get("/api/v1/identity/users", headers={"Authorization": f"Bearer {token}"})).is_success


# --- 4. signing keys rotate with overlap, on every replica -----------------------------------------------------


class MovableClock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def test_a_token_signed_just_before_a_rotation_works_on_every_replica_until_its_key_retires(
    platform, make_settings, tmp_path: Path
) -> None:
    clock = MovableClock()
    async with platform("gateway", clock=clock) as p:
        first = p.apps["gateway"]
        port = free_port()
        # The second replica on the same database; its internal listener is left to the first (one port).
        urls = {k: v for k, v in first.state.settings.service_urls.items() if k != "gateway-internal"}
        second_app = create_gateway(
            make_settings(service_urls=urls, access_journal_dir=str(tmp_path / "second-journal")), clock
        )
        async with (
            serve(second_app, port) as second_url,
            p.client() as one,
            httpx.AsyncClient(base_url=second_url) as two,
        ):
            before = await p.token()
            headers = {"Authorization": f"Bearer {before}"}
            old_kid = (await one.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
            rotated = await one.post("/api/v1/identity/keys/rotate", headers=headers)
            assert rotated.status_code == 200, rotated.text
            new_kid = rotated.json()["kid"]
            assert rotated.json()["published"] == [new_kid, old_kid]

            async def second_replica_knows() -> bool:
                kids = [k["kid"] for k in (await two.get("/.well-known/jwks.json")).json()["keys"]]
                return kids == [new_kid, old_kid]

            await eventually(second_replica_knows, timeout=5.0)
            after = await p.token()
            for http in (one, two):
                # The token signed before the rotation still works on both; the new one too.
                for token in (before, after):
                    r = await http.get("/api/v1/identity/users", headers={"Authorization": f"Bearer {token}"})
                    assert r.status_code == 200, r.text
            # A rotation once the old key's last token has expired (5 min + 30 s leeway) retires it everywhere.
            clock.ahead = timedelta(minutes=5, seconds=31)
            again = await one.post("/api/v1/identity/keys/rotate", headers={"Authorization": f"Bearer {after}"})
            newest = again.json()["kid"]
            assert again.json()["published"] == [newest, new_kid]

            async def old_key_gone_on_second() -> bool:
                kids = [k["kid"] for k in (await two.get("/.well-known/jwks.json")).json()["keys"]]
                return old_kid not in kids and newest in kids

            await eventually(old_key_gone_on_second, timeout=5.0)
            r = await two.get("/api/v1/identity/users", headers=headers)
            assert r.status_code == 401


# --- 3. the credential throttle --------------------------------------------------------------------------------


def password_checks(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("govshare_gateway_password_checks_total "):
            return float(line.split()[1])
    raise AssertionError("no password check counter in /metrics")


async def sign_in(http: httpx.AsyncClient, username: str, password: str, address: str, **extra: str) -> Any:
    return await http.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
        headers={"X-Forwarded-For": address},
    )


async def test_credentials_are_counted_per_account_and_address_and_never_tell_who_exists(platform) -> None:
    async with platform("gateway") as p, p.client() as http:
        admin = await admin_headers(p)
        await setup_department(http, admin, GONG_AN, "公安局")
        r = await http.post(
            "/api/v1/identity/users",
            json={
                "username": "clerk",
                "display_name": "办事员",
                "department_code": GONG_AN,
                "roles": ["dept_reviewer"],
                "password": PASSWORD,
            },
            headers=admin,
        )
        assert r.status_code == 201

        # Unknown and known names get the same answer, and the unknown one runs argon2 all the same.
        checks = password_checks((await http.get("/metrics")).text)
        unknown = await sign_in(http, "nobody-by-this-name", "Wrong-Passw0rd!", "10.0.0.1")
        assert password_checks((await http.get("/metrics")).text) == checks + 1
        known = await sign_in(http, "clerk", "Wrong-Passw0rd!", "10.0.0.1")
        assert (unknown.status_code, unknown.json()["code"], unknown.json()["message"]) == (
            known.status_code,
            known.json()["code"],
            known.json()["message"],
        )

        # Five wrong passwords from one address lock the administrator out from that address only: the
        # administrator at their own desk still signs in.
        for _ in range(5):
            assert (await sign_in(http, "admin", "Wrong-Passw0rd!", "203.0.113.9")).status_code == 401
        locked = await sign_in(http, "admin", "Admin-Passw0rd-for-tests", "203.0.113.9")
        assert (locked.status_code, locked.json()["message"]) == (401, known.json()["message"])
        assert (await sign_in(http, "admin", "Admin-Passw0rd-for-tests", "10.1.1.1")).status_code == 200

        # Twenty wrong old passwords on /auth/password lock it: the twenty-first, right, changes nothing.
        change = {"username": "clerk", "old_password": "Guess-Passw0rd!", "new_password": "Chosen-Passw0rd-9"}
        for _ in range(20):
            r = await http.post("/auth/password", data=change, headers={"X-Forwarded-For": "198.51.100.7"})
            assert r.status_code == 401
        right = await http.post(
            "/auth/password", data={**change, "old_password": PASSWORD}, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert (right.status_code, right.json()["message"]) == (401, known.json()["message"])
        assert await password_is(p, "clerk", PASSWORD)

        # Failures spread over addresses (6 so far, 14 more make 20) slow the account down everywhere, for a minute at
        # a time: a throttle, not a lock.
        for n in range(14):
            assert (await sign_in(http, "clerk", "Wrong-Passw0rd!", f"10.3.0.{n // 4}")).status_code == 401
        slowed = await sign_in(http, "clerk", PASSWORD, "10.2.2.2")
        assert slowed.status_code == 429 and slowed.json()["code"] == "too_many_attempts"
        assert 0 < int(slowed.headers["Retry-After"]) <= 60

        # One address trying a hundred client ids is stopped, whatever names it tries next.
        for n in range(100):
            r = await http.post(
                "/auth/token",
                data={"grant_type": "client_credentials", "client_id": f"guess-{n}", "client_secret": "x"},
                headers={"X-Forwarded-For": "192.0.2.50"},
            )
            assert r.status_code == 401
        r = await http.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "client_id": "guess-next", "client_secret": "x"},
            headers={"X-Forwarded-For": "192.0.2.50"},
        )
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"


# --- 3. administrators' second factor --------------------------------------------------------------------------


async def test_an_administrator_signs_in_with_a_second_factor_and_recovery_codes_work_once(platform) -> None:
    async with platform("gateway") as p, p.client() as http:
        admin = await admin_headers(p)
        r = await http.post(
            "/api/v1/identity/users",
            json={"username": "office2", "display_name": "值班员", "roles": ["platform_admin"], "password": PASSWORD},
            headers=admin,
        )
        assert r.status_code == 201
        office2 = r.json()["id"]
        # Within the grace after the account was made, the password alone admits — and says to enrol.
        first = await sign_in(http, "office2", PASSWORD, "10.0.0.5")
        assert first.status_code == 200 and first.json()["second_factor"]["enrolled"] is False

        enrol = await http.post("/auth/second-factor/enrol", data={"username": "office2", "password": PASSWORD})
        assert enrol.status_code == 200, enrol.text
        assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
        totp = pyotp.TOTP(enrol.json()["secret"])
        wrong = await http.post(
            "/auth/second-factor/confirm", data={"username": "office2", "password": PASSWORD, "otp": "000000"}
        )
        assert wrong.status_code == 401 and wrong.json()["code"] == "second_factor_invalid"
        confirmed = await http.post(
            "/auth/second-factor/confirm", data={"username": "office2", "password": PASSWORD, "otp": totp.now()}
        )
        assert confirmed.status_code == 200, confirmed.text
        recovery = confirmed.json()["recovery_codes"]
        assert len(recovery) == 10 and len(set(recovery)) == 10
        again = await http.post("/auth/second-factor/enrol", data={"username": "office2", "password": PASSWORD})
        assert again.status_code == 409  # a bound factor is changed only through another admin's reset

        no_code = await sign_in(http, "office2", PASSWORD, "10.0.0.5")
        assert no_code.status_code == 401 and no_code.json()["code"] == "second_factor_required"
        bad_code = await sign_in(http, "office2", PASSWORD, "10.0.0.5", otp="123456")
        assert bad_code.status_code == 401 and bad_code.json()["code"] == "second_factor_invalid"
        code = totp.at(time.time() + 30)  # the next step's: this step's code was spent confirming
        admitted = await sign_in(http, "office2", PASSWORD, "10.0.0.5", otp=code)
        assert admitted.status_code == 200, admitted.text
        assert "second_factor" not in admitted.json()
        replayed = await sign_in(http, "office2", PASSWORD, "10.0.0.5", otp=code)
        assert replayed.status_code == 401 and replayed.json()["code"] == "second_factor_invalid"

        by_recovery = await sign_in(http, "office2", PASSWORD, "10.0.0.6", otp=recovery[0].upper())
        assert by_recovery.status_code == 200, by_recovery.text
        spent = await sign_in(http, "office2", PASSWORD, "10.0.0.6", otp=recovery[0])
        assert spent.status_code == 401 and spent.json()["code"] == "second_factor_invalid"
        assert (await sign_in(http, "office2", PASSWORD, "10.0.0.6", otp=recovery[1])).status_code == 200

        # Reset by another platform admin (never by oneself); then the password alone is refused no longer
        # by the factor but by the enrolment it now lacks, once its grace is over (see the next platform).
        self_token = admitted.json()["access_token"]
        by_self = await http.delete(
            f"/api/v1/identity/users/{office2}/second-factor", headers={"Authorization": f"Bearer {self_token}"}
        )
        assert by_self.status_code == 403
        reset = await http.delete(f"/api/v1/identity/users/{office2}/second-factor", headers=admin)
        assert reset.status_code == 200, reset.text
        changes = await eventually(lambda: second_factor_events(p))
        assert [c["change"] for c in changes] == [
            "enrolment_started",
            "enrolled",
            "recovery_code_used",
            "recovery_code_used",
            "reset",
        ]
        assert changes[-1]["by"] != office2

    async with platform("gateway", second_factor_grace_hours=0) as p, p.client() as http:
        late = await sign_in(http, "office2", PASSWORD, "10.0.0.7")
        assert late.status_code == 401 and late.json()["code"] == "second_factor_enrolment_required"
        # The platform's first administrator, never enrolled, is past its grace too.
        assert (await sign_in(http, "admin", "Admin-Passw0rd-for-tests", "10.0.0.7")).json()["code"] == (
            "second_factor_enrolment_required"
        )


async def password_is(p: Any, username: str, password: str) -> bool:
    from sqlalchemy import text

    from gateway.passwords import verify_password

    async with p.apps["gateway"].state.db.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT password_hash FROM app_user WHERE username = :u"), {"u": username})
        ).scalar_one()
    return verify_password(stored, password)


async def second_factor_events(p: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    async with p.apps["gateway"].state.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT data FROM outbox WHERE type = 'identity.second_factor.changed' ORDER BY id")
        )
        found = [r[0] for r in rows]
    return found if len(found) >= 5 else []
