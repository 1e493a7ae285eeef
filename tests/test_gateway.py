"""The gateway through HTTP: tokens, refusals, lockout, revocation, data routes, upstream failures, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from gateway_helpers import (
    GONG_AN,
    PASSWORD,
    SHI_JIAN,
    access_events,
    admin_headers,
    client_token,
    setup_department,
)
from pydantic import BaseModel

from govshare_common.events import EventRegistry
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.testing import TokenIssuer, eventually, free_port, serve

from gateway.proxy import Upstream
from gateway.tokens import issue_access_token


async def test_grant_types_and_every_refusal_is_a_401_or_403_with_an_access_event(platform) -> None:
    async with platform("gateway") as p:
        admin = await admin_headers(p)
        gw = p.apps["gateway"]
        async with p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            r = await http.post(
                "/api/v1/identity/users",
                json={
                    "username": "ga_admin",
                    "display_name": "公安局管理员",
                    "department_code": GONG_AN,
                    "roles": ["dept_admin"],
                    "password": PASSWORD,
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            r = await http.post(
                "/api/v1/identity/clients", json={"name": "公安局业务系统", "department_code": GONG_AN}, headers=admin
            )
            assert r.status_code == 201
            client = r.json()

            # password grant, then refresh_token grant (the refresh token rotates)
            r = await http.post(
                "/auth/token", data={"grant_type": "password", "username": "ga_admin", "password": PASSWORD}
            )
            assert r.status_code == 200
            first = r.json()
            r = await http.post(
                "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
            )
            assert r.status_code == 200
            assert r.json()["refresh_token"] != first["refresh_token"]
            reused = await http.post(
                "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
            )
            assert reused.status_code == 401

            # client_credentials, in the form body and as HTTP Basic
            await client_token(http, client["client_id"], client["client_secret"])
            basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
            r = await http.post(
                "/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
            )
            assert r.status_code == 200

            wrong = await http.post(
                "/auth/token",
                data={"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": "nope"},
            )
            assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_client"

            valid = first["access_token"]
            header, payload, signature = valid.split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
            claims["roles"] = ["platform_admin"]
            forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            tampered = f"{header}.{forged_payload}.{signature}"
            expired, _ = issue_access_token(
                gw.state.keyring,
                issuer="govshare",
                audience="govshare",
                now=datetime.now(UTC) - timedelta(hours=1),
                subject=claims["sub"],
                kind="user",
                name="x",
                department=GONG_AN,
                roles=["dept_admin"],
            )
            foreign = TokenIssuer().token(roles=["platform_admin"])
            for bad in (tampered, expired, foreign, "not-a-jwt"):
                r = await http.get("/api/v1/identity/users", headers={"Authorization": f"Bearer {bad}"})
                assert r.status_code == 401, bad
                assert set(r.json()) == {"code", "message", "details", "trace_id"}

            # logout revokes: the still-unexpired token of that session stops working
            second = (
                await http.post(
                    "/auth/token", data={"grant_type": "password", "username": "ga_admin", "password": PASSWORD}
                )
            ).json()
            bearer = {"Authorization": f"Bearer {second['access_token']}"}
            assert (await http.get("/api/v1/identity/users", headers=bearer)).status_code == 200
            assert (await http.post("/auth/logout", headers=bearer)).status_code == 200
            await eventually(lambda: _status(http, "/api/v1/identity/users", bearer, 401), timeout=5.0)

            # a valid token without the role: 403 (dept_admin cannot register departments)
            third = (
                await http.post(
                    "/auth/token", data={"grant_type": "password", "username": "ga_admin", "password": PASSWORD}
                )
            ).json()
            r = await http.post(
                "/api/v1/identity/departments",
                json={"code": SHI_JIAN, "name": "市场监管局", "level": "district"},
                headers={"Authorization": f"Bearer {third['access_token']}"},
            )
            assert r.status_code == 403

        events = await access_events(gw)
        denied = [e for e in events if e["outcome"] == "denied"]
        assert {e["status"] for e in denied} == {401, 403}, [(e["route"], e["status"], e["outcome"]) for e in events]
        assert len([e for e in denied if e["status"] == 401]) >= 7
        assert any(e["route"] == "/api/v1/identity/departments" and e["status"] == 403 for e in denied)


async def _status(http: Any, path: str, headers: dict[str, str], expected: int) -> bool:
    return (await http.get(path, headers=headers)).status_code == expected


async def test_lockout_after_five_failures_and_disabled_client_stops_within_a_second(platform) -> None:
    async with platform("gateway") as p:
        admin = await admin_headers(p)
        async with p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            await http.post(
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
            for _ in range(5):
                wrong = await http.post(
                    "/auth/token", data={"grant_type": "password", "username": "clerk", "password": "wrong-Passw0rd"}
                )
                assert wrong.status_code == 401
            r = await http.post(
                "/auth/token", data={"grant_type": "password", "username": "clerk", "password": PASSWORD}
            )
            # Locked: the right password is refused with the very answer a wrong one gets.
            assert (r.status_code, r.json()["code"], r.json()["message"]) == (
                401,
                wrong.json()["code"],
                wrong.json()["message"],
            )

            created = (
                await http.post(
                    "/api/v1/identity/clients", json={"name": "前置机", "department_code": GONG_AN}, headers=admin
                )
            ).json()
            token = await client_token(http, created["client_id"], created["client_secret"])
            bearer = {"Authorization": f"Bearer {token}"}
            r = await http.get("/api/v1/platform/calendar/years", headers=bearer)
            assert r.status_code == 200
            r = await http.patch(
                f"/api/v1/identity/clients/{created['client_id']}", json={"status": "disabled"}, headers=admin
            )
            assert r.status_code == 200
            t0 = asyncio.get_running_loop().time()
            await eventually(lambda: _status(http, "/api/v1/platform/calendar/years", bearer, 401), timeout=3.0)
            assert asyncio.get_running_loop().time() - t0 < 3.0  # a notification; the full reload is every 30 s


# Hainan 003 Art.36 (first_access_filing_required); elsewhere no filing is owed and the client gets its token.
@pytest.mark.parametrize(("profile", "status"), [("hainan", 401), ("zhonglou", 200)])
async def test_unfiled_department_gets_no_client_token_where_the_profile_asks_for_the_filing(
    platform, profile: str, status: int
) -> None:
    async with platform("gateway", profile=profile) as p:
        admin = await admin_headers(p)
        async with p.client() as http:
            await setup_department(http, admin, SHI_JIAN, "市场监管局", filed=False)
            created = (
                await http.post(
                    "/api/v1/identity/clients", json={"name": "系统", "department_code": SHI_JIAN}, headers=admin
                )
            ).json()
            r = await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": created["client_id"],
                    "client_secret": created["client_secret"],
                },
            )
            assert r.status_code == status, r.text
            if status == 401:
                assert r.json()["code"] == "department_not_filed"


# --- data routes ----------------------------------------------------------------------------------------------


class GrantIssued(BaseModel):
    grant_id: str
    consumer_code: str
    resource_code: str
    purposes: list[str]
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class GrantRevoked(BaseModel):
    grant_id: str
    reason: str


class PublishedSnapshot(BaseModel):
    code: str
    share_type: str


class ResourcePublished(BaseModel):
    """The part of catalog-svc's catalog.resource.published payload the gateway reads."""

    resource_id: str
    code: str
    version: int
    provider_code: str
    provider_name: str
    actor: str
    published: PublishedSnapshot


def peer(name: str, registry: EventRegistry) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        title="测试对端",
        migrations_dir=Path(__file__).parent / "peers",
        registry=registry,
        follows_calendar=False,
    )


def exchange_upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/exchange/resources/{code:path}/records")
    async def records(code: str, request: Request) -> dict[str, Any]:
        return {"resource": code, "auth_forwarded": request.headers.get("authorization", "").startswith("Bearer ")}

    @app.get("/api/v1/exchange/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(2)
        return {"late": "yes"}

    return app


async def test_data_route_follows_grant_events_within_a_second(platform, make_settings) -> None:
    request_events, catalog_events = EventRegistry(), EventRegistry()
    request_events.register("grant.issued", GrantIssued)
    request_events.register("grant.revoked", GrantRevoked)
    catalog_events.register("catalog.resource.published", ResourcePublished)
    async with platform("gateway") as p:
        urls = {**p.urls}
        gw = p.apps["gateway"]
        settings = gw.state.settings
        request_peer = create_service_app(
            peer("request", request_events), make_settings(service_urls=settings.service_urls)
        )
        catalog_peer = create_service_app(
            peer("catalog", catalog_events), make_settings(service_urls=settings.service_urls)
        )
        exchange_port = int(settings.service_urls["exchange"].rsplit(":", 1)[1])
        async with (
            serve(request_peer, int(settings.service_urls["request"].rsplit(":", 1)[1])),
            serve(catalog_peer, int(settings.service_urls["catalog"].rsplit(":", 1)[1])),
            serve(exchange_upstream(), exchange_port),
        ):
            admin = await admin_headers(p)
            async with p.client() as http:
                await setup_department(http, admin, GONG_AN, "公安局")
                await setup_department(http, admin, SHI_JIAN, "市场监管局")
                created = (
                    await http.post(
                        "/api/v1/identity/clients",
                        json={"name": "市场监管业务系统", "department_code": SHI_JIAN},
                        headers=admin,
                    )
                ).json()
                bearer = {
                    "Authorization": f"Bearer {await client_token(http, created['client_id'], created['client_secret'])}",
                    "X-Govshare-Purpose": "data_verification",
                }
                code = "101001/0001"
                path = "/api/v1/exchange/resources/101001%2F0001/records"

                async with catalog_peer.state.db.unit_of_work() as uow:
                    uow.emit(
                        "catalog.resource.published",
                        code,
                        ResourcePublished(
                            resource_id="r-1",
                            code=code,
                            version=1,
                            provider_code=GONG_AN,
                            provider_name="公安局",
                            actor="reviewer",
                            published=PublishedSnapshot(code=code, share_type="conditional"),
                        ),
                    )
                await eventually(lambda: _has_resource(gw, code), timeout=5.0)
                refused = await http.get(path, headers=bearer)
                assert refused.status_code == 403 and refused.json()["details"]["reason"] == "no_live_grant"

                async with request_peer.state.db.unit_of_work() as uow:
                    uow.emit(
                        "grant.issued",
                        "g-1",
                        GrantIssued(
                            grant_id="g-1", consumer_code=SHI_JIAN, resource_code=code, purposes=["data_verification"]
                        ),
                    )
                await eventually(lambda: _status(http, path, bearer, 200), timeout=3.0)
                body = (await http.get(path, headers=bearer)).json()
                assert body == {"resource": code, "auth_forwarded": True}
                wrong_purpose = await http.get(path, headers={**bearer, "X-Govshare-Purpose": "work_reference"})
                assert wrong_purpose.status_code == 403

                async with request_peer.state.db.unit_of_work() as uow:
                    uow.emit("grant.revoked", "g-1", GrantRevoked(grant_id="g-1", reason="超出用途使用"))
                t0 = asyncio.get_running_loop().time()
                await eventually(lambda: _status(http, path, bearer, 403), timeout=3.0)
                assert asyncio.get_running_loop().time() - t0 < 3.0  # a notification; the full reload is every 30 s

                # a slow upstream is cut at its timeout; a dead one gets a fast 503 in the error shape
                gw.state.upstreams["exchange"] = Upstream(
                    "exchange",
                    urls["gateway"].replace(str(p.urls["gateway"].rsplit(":", 1)[1]), str(exchange_port)),
                    connect_timeout=0.5,
                    read_timeout=0.5,
                )
                admin_client = (
                    await http.post(
                        "/api/v1/identity/clients", json={"name": "平台", "department_code": SHI_JIAN}, headers=admin
                    )
                ).json()
                sys_bearer = {
                    "Authorization": f"Bearer {await client_token(http, admin_client['client_id'], admin_client['client_secret'])}"
                }
                t0 = asyncio.get_running_loop().time()
                slow = await http.get("/api/v1/exchange/slow", headers=sys_bearer)
                assert slow.status_code == 504 and slow.json()["code"] == "upstream_timeout"
                assert asyncio.get_running_loop().time() - t0 < 2.0

        dead = Upstream("exchange", f"http://127.0.0.1:{free_port()}", connect_timeout=0.5, read_timeout=0.5)
        gw.state.upstreams["exchange"] = dead
        async with p.client() as http:
            for _ in range(6):
                r = await http.get("/api/v1/exchange/slow", headers=sys_bearer)
                assert r.status_code == 503
                assert set(r.json()) == {"code", "message", "details", "trace_id"}
            assert dead.breaker.open_until > 0


async def _has_resource(gw: Any, code: str) -> bool:
    return code in gw.state.live.resources


async def test_rate_limit_answers_429_with_retry_after(platform) -> None:
    async with platform("gateway") as p:
        admin = await admin_headers(p)
        async with p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            created = (
                await http.post(
                    "/api/v1/identity/clients",
                    json={"name": "限流测试", "department_code": GONG_AN, "rate_per_second": 1, "burst": 3},
                    headers=admin,
                )
            ).json()
            bearer = {
                "Authorization": f"Bearer {await client_token(http, created['client_id'], created['client_secret'])}"
            }
            # At once, so a busy machine cannot stretch them over the refill (1 token a second, burst 3).
            statuses = await asyncio.gather(*(http.get("/api/v1/catalog/resources", headers=bearer) for _ in range(6)))
            limited = [r for r in statuses if r.status_code == 429]
            assert limited, [r.status_code for r in statuses]
            assert int(limited[0].headers["retry-after"]) >= 1
            assert limited[0].json()["code"] == "rate_limited"


async def test_no_secret_password_or_token_reaches_the_logs(platform, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with platform("gateway") as p:
        admin_token = await p.token()
        admin = {"Authorization": f"Bearer {admin_token}"}
        async with p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            created = (
                await http.post(
                    "/api/v1/identity/clients", json={"name": "系统", "department_code": GONG_AN}, headers=admin
                )
            ).json()
            token = await client_token(http, created["client_id"], created["client_secret"])
            await http.post(
                "/auth/token", data={"grant_type": "password", "username": "admin", "password": "Wrong-guess-123"}
            )
            await http.get("/api/v1/identity/users", headers={"Authorization": f"Bearer {token}"})
            rotated = (
                await http.post(
                    f"/api/v1/identity/clients/{created['client_id']}/rotate-secret", json={}, headers=admin
                )
            ).json()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "access denied" in logged  # refusals are logged...
    for secret in (
        created["client_secret"],
        rotated["client_secret"],
        token,
        admin_token,
        "Wrong-guess-123",
        "Admin-Passw0rd-for-tests",
    ):
        assert secret not in logged  # ...but never a secret


async def test_external_oidc_issuer_is_trusted_by_configuration_and_services_get_a_gateway_token(platform) -> None:
    idp = TokenIssuer(issuer="https://idp.example/realms/gov")
    seen: dict[str, str] = {}
    upstream = FastAPI()

    @upstream.get("/api/v1/catalog/resources")
    async def resources(request: Request) -> dict[str, Any]:
        seen["authorization"] = request.headers.get("authorization", "")
        return {"items": []}

    async with idp.running(), platform("gateway", oidc_issuer=idp.issuer, oidc_jwks_url=idp.jwks_url) as p:
        gw = p.apps["gateway"]
        catalog_port = int(gw.state.settings.service_urls["catalog"].rsplit(":", 1)[1])
        async with serve(upstream, catalog_port), p.client() as http:
            external = {"Authorization": f"Bearer {idp.token(roles=['platform_admin'], name='外部管理员')}"}
            assert (await http.get("/api/v1/identity/departments", headers=external)).status_code == 200
            assert (await http.get("/api/v1/catalog/resources", headers=external)).status_code == 200
            forwarded = seen["authorization"].removeprefix("Bearer ")
            principal = await gw.state.verifier.verify(forwarded)  # signed by the gateway's own key
            assert principal.roles == frozenset({"platform_admin"})
            assert principal.subject.startswith("oidc:")

            # tokens of an issuer that is not configured are still refused
            stranger = TokenIssuer(issuer="https://elsewhere.example").token(roles=["platform_admin"])
            r = await http.get("/api/v1/identity/departments", headers={"Authorization": f"Bearer {stranger}"})
            assert r.status_code == 401


async def test_console_pages_are_served_through_the_gateway(platform) -> None:
    async with platform("gateway", "console") as p:
        async with p.client() as http:
            r = await http.get("/console/")
            assert r.status_code == 200
            assert "管理控制台" in r.text and '<script type="module"' in r.text
            # Readiness is no longer an anonymous page: it is the platform office's, behind a token.
            assert "统一身份认证与访问网关" not in r.text
            assert (await http.get("/console/api/platform/status")).status_code == 401


async def test_demo_identities_seed_once_and_their_credentials_work(platform) -> None:
    from gateway.demo import DEMO_DEPARTMENTS, seed

    async with platform("gateway") as p:
        async with p.client() as http:
            first = await seed(http, await p.token())
            second = await seed(http, await p.token())
            assert len(first["clients"]) == len(DEMO_DEPARTMENTS)
            assert second == {"users": {}, "clients": {}}
            client = next(iter(first["clients"].values()))
            await client_token(http, client["client_id"], client["client_secret"])
            user = first["users"]["gaj_admin"]
            r = await http.post(
                "/auth/token", data={"grant_type": "password", "username": "gaj_admin", "password": user["password"]}
            )
            assert r.status_code == 200 and r.json()["scope"] == "dept_admin"


async def test_connector_bound_to_a_client_certificate_needs_it_for_token_and_calls(platform) -> None:
    fingerprint = "ab" * 32
    upstream = FastAPI()

    @upstream.get("/api/v1/catalog/resources")
    async def resources() -> dict[str, Any]:
        return {"items": []}

    async with platform("gateway") as p:
        admin = await admin_headers(p)
        catalog_port = int(p.apps["gateway"].state.settings.service_urls["catalog"].rsplit(":", 1)[1])
        async with serve(upstream, catalog_port), p.client() as http:
            await setup_department(http, admin, GONG_AN, "公安局")
            created = (
                await http.post(
                    "/api/v1/identity/clients",
                    json={"name": "公安局前置机", "department_code": GONG_AN, "cert_sha256": fingerprint},
                    headers=admin,
                )
            ).json()
            form = {
                "grant_type": "client_credentials",
                "client_id": created["client_id"],
                "client_secret": created["client_secret"],
            }
            without = await http.post("/auth/token", data=form)
            assert without.status_code == 401 and without.json()["code"] == "certificate_required"
            cert = {"x-client-cert-sha256": fingerprint}
            token = (await http.post("/auth/token", data=form, headers=cert)).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/api/v1/catalog/resources", headers={**bearer, **cert})).status_code == 200
            stolen = await http.get("/api/v1/catalog/resources", headers=bearer)
            assert stolen.status_code == 401 and stolen.json()["code"] == "certificate_required"


async def test_key_rotation_keeps_old_tokens_valid_and_a_disabled_user_stops_at_once(platform) -> None:
    async with platform("gateway") as p:
        old_admin_token = await p.token()
        admin = {"Authorization": f"Bearer {old_admin_token}"}
        async with p.client() as http:
            before = (await http.get("/.well-known/jwks.json")).json()["keys"]
            rotated = await http.post("/api/v1/identity/keys/rotate", headers=admin)
            assert rotated.status_code == 200
            after = (await http.get("/.well-known/jwks.json")).json()["keys"]
            assert {k["kid"] for k in before} < {k["kid"] for k in after}
            assert (await http.get("/api/v1/identity/users", headers=admin)).status_code == 200  # old key still trusted
            new_token = await p.token()
            assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == rotated.json()["kid"]

            await setup_department(http, admin, GONG_AN, "公安局")
            user = (
                await http.post(
                    "/api/v1/identity/users",
                    json={
                        "username": "leaver",
                        "display_name": "离职人员",
                        "department_code": GONG_AN,
                        "roles": ["dept_reviewer"],
                        "password": PASSWORD,
                    },
                    headers=admin,
                )
            ).json()
            leaver = (
                await http.post(
                    "/auth/token", data={"grant_type": "password", "username": "leaver", "password": PASSWORD}
                )
            ).json()
            bearer = {"Authorization": f"Bearer {leaver['access_token']}"}
            assert (await http.get("/api/v1/platform/calendar/years", headers=bearer)).status_code == 200
            await http.patch(f"/api/v1/identity/users/{user['id']}", json={"status": "disabled"}, headers=admin)
            t0 = asyncio.get_running_loop().time()
            await eventually(lambda: _status(http, "/api/v1/platform/calendar/years", bearer, 401), timeout=3.0)
            assert asyncio.get_running_loop().time() - t0 < 3.0  # a notification; the full reload is every 30 s
            refresh = await http.post(
                "/auth/token", data={"grant_type": "refresh_token", "refresh_token": leaver["refresh_token"]}
            )
            assert refresh.status_code == 401
