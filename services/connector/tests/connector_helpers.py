"""What the connector journeys share: a published interface resource of 公安局, its department database with
synthetic people, a granted consumer (民政局), and connector configurations for both."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import asyncpg
from sqlalchemy import text

from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import PSB
from connector.config import ConnectorConfig, parse
from connector.synthetic import PEOPLE_TABLE, person
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

RESOURCE: dict[str, Any] = {
    "resource_class": "departmental",
    "category_code": "01",
    "category_name": "公安",
    "subcategory_code": "002",
    "subcategory_name": "户政管理",
    "name": "户籍人口登记信息（前置机）",
    "summary": "户籍人口的登记信息，含姓名、公民身份号码和户籍地址，由公安局前置机报送。",
    "provider_code": PSB.code,
    "provider_name": PSB.name,
    "format_category": "database",
    "format_detail": "关系型数据库表",
    "data_items": [
        {
            "name": "GMSFHM",
            "label": "公民身份号码",
            "data_type": "C",
            "length": 18,
            "required": True,
            "identifier_kind": "resident_id",
            "sensitivity": "personal",
            "masking_rule": "resident_id",
        },
        {
            "name": "XM",
            "label": "姓名",
            "data_type": "C",
            "length": 50,
            "sensitivity": "personal",
            "masking_rule": "name",
        },
        {
            "name": "HJDZ",
            "label": "户籍地址",
            "data_type": "C",
            "length": 200,
            "sensitivity": "personal",
            "masking_rule": "address",
        },
        {"name": "MZ", "label": "民族", "data_type": "C", "length": 2, "sensitivity": "public"},
    ],
    "share_type": "conditional",
    "share_conditions": "仅限社会救助对象身份核验。",
    "share_method_class": "platform",
    "share_method_type": "interface",
    "update_cycle": "daily",
}
MAPPING = {"sfzh": "GMSFHM", "xm": "XM", "hjdz": "HJDZ", "mz": "MZ"}


class World:
    """A platform with identities, the published resource, and the two departments' credentials."""

    def __init__(self, p: Any, http: Any, creds: dict[str, Any], code: str) -> None:
        self.p = p
        self.http = http
        self.creds = creds
        self.code = code

    def client(self, department: Any) -> dict[str, str]:
        return next(c for c in self.creds["clients"].values() if c["department"] == department.name)

    @property
    def base(self) -> str:
        return f"/api/v1/exchange/resources/{quote(self.code, safe='')}"

    async def token(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.p.token(username, DEMO_PASSWORD)}"}

    async def exchange_rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows of exchange-svc's schema, with what it seals at rest (keys, subjects, personal values) opened."""
        async with self.p.apps["exchange"].state.db.engine.connect() as conn:
            return [self._opened(r) for r in await conn.execute(text(sql), {"c": self.code, **params})]

    def stored_keys(self, plain: str) -> list[str]:
        """What a record key may be stored as (for `record_key = ANY(:k)`)."""
        return self.p.apps["exchange"].state.sealer.lookups([plain])  # type: ignore[no-any-return]

    def _opened(self, row: Any) -> SimpleNamespace:
        sealer = self.p.apps["exchange"].state.sealer
        out = dict(row._mapping)
        for name in ("record_key", "subject"):
            if isinstance(out.get(name), str):
                out[name] = sealer.open_token(out[name])
        for name in ("data", "before", "after"):
            value = out.get(name)
            if isinstance(value, dict) and "~" in value:
                value = dict(value)
                value.update(sealer.open_box(value.pop("~"), self.code))
                out[name] = value
        return SimpleNamespace(**out)

    async def changes(self) -> list[Any]:
        return await self.exchange_rows(
            "SELECT seq, record_key, op, after FROM record_change WHERE resource_code = :c ORDER BY seq"
        )

    async def grant(self, items: list[str], unmasked: list[str] | None = None) -> str:
        civil = await self.token("mzj_admin")

        async def request_svc_knows() -> Any:
            r = await self.http.post(
                "/api/v1/requests",
                json={
                    "resource_code": self.code,
                    "items": items,
                    "purposes": ["data_verification"],
                    "scope": "低保审核经办人员",
                    "security_measures": "专网访问，操作留痕",
                    "business_matter": "最低生活保障对象身份核验",
                },
                headers=civil,
            )
            return r if r.status_code == 201 else None

        request_id = (await eventually(request_svc_knows)).json()["id"]
        approved = await self.http.post(
            f"/api/v1/requests/{request_id}/approve",
            json={"conditions": ["仅用于身份核验"], "unmasked_items": unmasked or []},
            headers=await self.token("gaj_admin"),
        )
        assert approved.status_code == 200, approved.text
        grant_id = str(approved.json()["grant_id"])

        async def exchange_has_grant() -> bool:
            rows = await self.exchange_rows("SELECT 1 FROM grant_projection WHERE grant_id = :g", g=grant_id)
            gw = self.p.apps["gateway"].state.live
            return bool(rows) and grant_id in gw.grants

        await eventually(exchange_has_grant)
        return grant_id


async def publish(p: Any, http: Any) -> World:
    admin_token = await p.token()
    creds = await seed_identities(http, admin_token, departments())
    psb = {"Authorization": f"Bearer {await p.token('gaj_admin', DEMO_PASSWORD)}"}
    admin = {"Authorization": f"Bearer {admin_token}"}
    rid = (await http.post("/api/v1/catalog/resources", json=RESOURCE, headers=psb)).json()["id"]
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=psb)).status_code == 200
    code = (await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)).json()["code"]
    world = World(p, http, creds, code)

    async def known() -> bool:
        gw = p.apps["gateway"].state.live
        return code in gw.resources and bool(await world.exchange_rows("SELECT 1 FROM resource WHERE code = :c"))

    await eventually(known)
    return world


async def department_db(postgres: Any, table: str = "person", rows: int = 0) -> str:
    name = f"dept_{uuid.uuid4().hex[:10]}"
    url = postgres.create_database(name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PEOPLE_TABLE.format(table=table))
        if rows:
            await conn.executemany(
                f"INSERT INTO {table} (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)",
                [tuple(person(i).values()) for i in range(rows)],
            )
    finally:
        await conn.close()
    return url


def config(
    world: World,
    *,
    department: Any,
    name: str,
    state_url: str,
    gateway_url: str,
    sources: list[dict[str, Any]] | None = None,
    subscriptions: list[dict[str, Any]] | None = None,
    serve: list[dict[str, Any]] | None = None,
    listen: str | None = None,
    **push: Any,
) -> ConnectorConfig:
    client = world.client(department)
    data: dict[str, Any] = {
        "connector": {"name": name, "state_url": state_url, **({"listen": listen} if listen else {})},
        "platform": {
            "gateway_url": gateway_url,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "heartbeat_seconds": 0.5,
            "timeout_seconds": 10,
        },
        "push": {"batch_max_wait_seconds": 0.05, "retry_max_seconds": 1.0, **push},
        "sources": sources or [],
        "subscriptions": subscriptions or [],
        "serve": serve or [],
    }
    return parse(data)


def wal_source(world: World, url: str, name: str = "hukou", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "resource": world.code,
        "kind": "postgres_wal",
        "database_url": url,
        "table": "public.person",
        "key": ["sfzh"],
        "mapping": dict(MAPPING),
        "slot": f"govshare_{uuid.uuid4().hex[:8]}",
        "poll_seconds": 0.05,
        **extra,
    }


async def drop_slots(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for _ in range(50):
            try:
                await conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = current_database()"
                )
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
