"""The demo's front-end connectors (`make run`): 公安局's connector reads its own department database (a
separate database on the embedded PostgreSQL, with synthetic people) into a conditional, interface-kind
resource it publishes, and answers online queries of it from that database; 民政局's connector, granted the
resource, subscribes and writes what it receives into its own local table.

`seed` (a demo step) makes the databases, the resource and the grant once; `demo_programs(home,
gateway_url)` writes each connector's connector.toml under <home>/connectors/ and starts them as their own
programs every time `govshare up --demo` runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

DEMO_PEOPLE = 200
RESOURCE_NAME = "户籍人口登记信息（前置机）"
MAPPING = {"sfzh": "GMSFHM", "xm": "XM", "hjdz": "HJDZ", "mz": "MZ"}


def _resource(provider_code: str, provider_name: str) -> dict[str, Any]:
    personal = {"sensitivity": "personal"}
    return {
        "resource_class": "departmental",
        "category_code": "01",
        "category_name": "公安",
        "subcategory_code": "002",
        "subcategory_name": "户政管理",
        "name": RESOURCE_NAME,
        "summary": "公安局前置机从本部门户籍库实时报送的户籍人口登记信息，并应答联机查询。",
        "provider_code": provider_code,
        "provider_name": provider_name,
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
                "masking_rule": "resident_id",
                **personal,
            },
            {"name": "XM", "label": "姓名", "data_type": "C", "length": 50, "masking_rule": "name", **personal},
            {
                "name": "HJDZ",
                "label": "户籍地址",
                "data_type": "C",
                "length": 200,
                "masking_rule": "address",
                **personal,
            },
            {"name": "MZ", "label": "民族", "data_type": "C", "length": 2, "sensitivity": "public"},
        ],
        "share_type": "conditional",
        "share_conditions": "仅限社会救助对象身份核验。",
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "realtime",
    }


async def _department_databases(home: Path) -> dict[str, str]:
    import asyncpg

    from govshare_stack.embedded import start_postgres

    from connector.synthetic import PEOPLE_TABLE, person

    pg = await asyncio.to_thread(start_postgres, home / "pgdata")  # the running embedded server
    urls = {n: await asyncio.to_thread(pg.create_database, n) for n in ("demo_gaj", "demo_mzj", "demo_connector_state")}
    conn = await asyncpg.connect(urls["demo_gaj"])
    try:
        await conn.execute(PEOPLE_TABLE.format(table="czrk"))
        await conn.executemany(
            "INSERT INTO czrk (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [tuple(person(i).values()) for i in range(DEMO_PEOPLE)],
        )
    finally:
        await conn.close()
    conn = await asyncpg.connect(urls["demo_mzj"])
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS hukou_copy (gmsfhm varchar(18) PRIMARY KEY, xm varchar(50), hjdz varchar(200))"
        )
    finally:
        await conn.close()
    return urls


async def _login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    r = await http.post("/auth/token", data={"grant_type": "password", "username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _client_of(credentials: dict[str, Any], short: str) -> tuple[dict[str, Any], str]:
    """A demo department's machine client and its department's full name, by its short name (公安局…)."""
    for client in credentials.get("clients", {}).values():
        if short[:2] in client.get("department", ""):
            return client, client["department"]
    raise RuntimeError(f"the demo machine client of {short} is not in the demo credentials")


async def seed(http: httpx.AsyncClient, *, admin_password: str, credentials: dict[str, Any], home: Path) -> None:
    """The demo step (govshare_stack.demo_steps): databases, resource and grant, once; what the demo made so far
    (users' passwords, machine clients) is in `credentials`."""
    if not (home / "pgdata").exists():
        return  # an external PostgreSQL: the demo department databases live on the embedded one only
    users = credentials.get("users", {})
    psb = await _login(http, "gaj_admin", users["gaj_admin"]["password"])
    civil = await _login(http, "mzj_admin", users["mzj_admin"]["password"])
    admin = await _login(http, "admin", admin_password)
    psb_client, psb_name = _client_of(credentials, "公安局")
    civil_client, _ = _client_of(credentials, "民政局")
    listed = await http.get("/api/v1/identity/departments", params={"limit": 500}, headers=admin)
    listed.raise_for_status()
    psb_code = next(d["code"] for d in listed.json()["items"] if d["name"] == psb_name)
    made = await http.post("/api/v1/catalog/resources", json=_resource(psb_code, psb_name), headers=psb)
    made.raise_for_status()
    rid = made.json()["id"]
    (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=psb)).raise_for_status()
    published = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    published.raise_for_status()
    code = published.json()["code"]
    request_id = None
    for _ in range(120):  # request-svc learns the resource from catalog events a moment later
        r = await http.post(
            "/api/v1/requests",
            json={
                "resource_code": code,
                "items": ["GMSFHM", "XM", "HJDZ"],
                "purposes": ["data_verification"],
                "scope": "低保审核经办人员",
                "security_measures": "专网访问，操作留痕",
                "business_matter": "最低生活保障对象身份核验",
            },
            headers=civil,
        )
        if r.status_code == 201:
            request_id = r.json()["id"]
            break
        await asyncio.sleep(0.5)
    if request_id is None:
        raise RuntimeError("request-svc did not learn the connector demo resource in time")
    approved = await http.post(
        f"/api/v1/requests/{request_id}/approve",
        json={"conditions": ["仅用于身份核验"], "unmasked_items": ["GMSFHM", "XM"]},
        headers=psb,
    )
    approved.raise_for_status()
    urls = await _department_databases(home)
    plan = {"resource_code": code, "databases": urls, "clients": {"gaj": psb_client, "mzj": civil_client}}
    folder = home / "connectors"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "demo.json").write_text(json.dumps(plan, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "demo.json").chmod(0o600)
    credentials["connectors"] = {"resource_code": code, "configs": str(folder)}


def _toml(values: dict[str, Any]) -> str:
    def scalar(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False)

    out: list[str] = []
    for section, body in values.items():
        if isinstance(body, list):
            for entry in body:
                out.append(f"[[{section}]]")
                out += [f"{k} = {scalar(v)}" for k, v in entry.items() if not isinstance(v, dict)]
                for k, v in entry.items():
                    if isinstance(v, dict):
                        out.append(f"[{section}.{k}]")
                        out += [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
        else:
            out.append(f"[{section}]")
            out += [f"{k} = {scalar(v)}" for k, v in body.items()]
        out.append("")
    return "\n".join(out)


def configs(plan: dict[str, Any], gateway_url: str, ports: tuple[int, int]) -> dict[str, str]:
    db, code = plan["databases"], plan["resource_code"]

    def platform(who: str) -> dict[str, Any]:
        c = plan["clients"][who]
        return {"gateway_url": gateway_url, "client_id": c["client_id"], "client_secret": c["client_secret"]}

    gaj = {
        "connector": {"name": "gaj-demo", "state_url": db["demo_connector_state"], "listen": f"127.0.0.1:{ports[0]}"},
        "platform": platform("gaj"),
        "sources": [
            {
                "name": "czrk",
                "resource": code,
                "kind": "postgres_wal",
                "database_url": db["demo_gaj"],
                "table": "public.czrk",
                "key": ["sfzh"],
                "slot": "govshare_demo_czrk",
                "mapping": MAPPING,
            }
        ],
        "serve": [
            {
                "resource": code,
                "database_url": db["demo_gaj"],
                "table": "public.czrk",
                "subject_column": "sfzh",
                "mapping": MAPPING,
            }
        ],
    }
    mzj = {
        "connector": {"name": "mzj-demo", "state_url": db["demo_connector_state"], "listen": f"127.0.0.1:{ports[1]}"},
        "platform": platform("mzj"),
        "subscriptions": [
            {
                "name": "hukou-copy",
                "resource": code,
                "purpose": "data_verification",
                "database_url": db["demo_mzj"],
                "table": "hukou_copy",
                "key": ["gmsfhm"],
                "mapping": {"gmsfhm": "GMSFHM", "xm": "XM", "hjdz": "HJDZ"},
            }
        ],
    }
    return {"gaj": _toml(gaj), "mzj": _toml(mzj)}


def demo_programs(home: Path, gateway_url: str) -> list[tuple[str, list[str], int]]:
    """The demo connectors (if the demo made them) as programs to run: (name, command, port of its /readyz).
    Their configurations are written under <home>/connectors; the stack supervises the processes."""
    from govshare_stack.ports import any_free_port

    plan_file = home / "connectors" / "demo.json"
    if not plan_file.exists():
        return []
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    ports = (any_free_port(), any_free_port())
    programs = []
    for (who, text), port in zip(configs(plan, gateway_url, ports).items(), ports, strict=True):
        path = home / "connectors" / f"{who}.toml"
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        programs.append(
            (f"connector-{who}", [sys.executable, "-m", "connector.cli", "run", "--config", str(path)], port)
        )
    return programs
