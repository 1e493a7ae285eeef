"""Demo hosted data for `govshare up --demo`: synthetic people and companies (valid check digits), ingested
through the public API into the demo catalog's record resources, like a front-end connector would.

`seed(http, tokens)` follows catalog_svc.demo.seed's convention: tokens[department code] is a token of that
department (dept_admin or dept_system). It waits for exchange-svc to learn the published resources from the
catalog's events, then sends one batch per resource with a fixed batch id, so running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from govshare_common.identifiers import resident_id_check_char, uscc_check_char

API = "/api/v1/exchange"
PEOPLE = 200
COMPANIES = 60
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "建华"]
STREETS = ["南大街", "西新桥二村", "五星街道新闸路", "荷花池街道广化街", "北港街道怀德路", "永红街道勤业路"]
TRADES = ["科技", "商贸", "建设", "餐饮", "物流", "医药", "文化传媒"]
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def person(rng: random.Random) -> dict[str, Any]:
    year, month, day = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    first17 = f"320404{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
    return {
        "XM": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "GMSFHM": first17 + resident_id_check_char(first17),
        "XB": rng.choice("12"),
        "MZ": "01",
        "CSRQ": f"{year:04d}-{month:02d}-{day:02d}",
        "HJDZ": f"江苏省常州市钟楼区{rng.choice(STREETS)}{rng.randint(1, 300)}号",
    }


def company(rng: random.Random, n: int) -> dict[str, Any]:
    first17 = "91320404" + "MA" + "".join(rng.choice(USCC_CHARS) for _ in range(7))
    name = f"常州{rng.choice('钟楼新北天宁武进')}{rng.choice(TRADES)}有限公司{n:03d}"
    return {
        "TYSHXYDM": first17 + uscc_check_char(first17),
        "QYMC": name,
        "FDDBR": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "ZS": f"江苏省常州市钟楼区{rng.choice(STREETS)}{rng.randint(1, 300)}号",
        "CLRQ": f"{rng.randint(2000, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "JYFW": "许可项目：以审批结果为准。一般项目：技术服务、技术开发。",
    }


def _people(rng: random.Random) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < PEOPLE:
        p = person(rng)
        seen[p["GMSFHM"]] = p
    return list(seen.values())


def _insured(people: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"GMSFHM": p["GMSFHM"], "XM": p["XM"], "XZLX": "11", "CBZT": "1", "LJJFYS": rng.randint(1, 360)}
        for p in people[: PEOPLE // 2]
    ]


def _assisted(people: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "GMSFHM": p["GMSFHM"],
            "XM": p["XM"],
            "JTRKS": rng.randint(1, 5),
            "BZJE": f"{rng.randint(300, 1200)}.00",
            "BZKSRQ": f"2025-{rng.randint(1, 12):02d}-01",
        }
        for p in people[PEOPLE - 20 :]
    ]


# resource name -> how its rows are made from the demo people (or companies)
DEMO_BATCHES: dict[str, Callable[[list[dict[str, Any]], list[dict[str, Any]], random.Random], list[dict[str, Any]]]] = {
    "人口基本信息": lambda people, companies, rng: people,
    "法人单位基本信息": lambda people, companies, rng: companies,
    "社会保险参保缴费信息": lambda people, companies, rng: _insured(people, rng),
    "最低生活保障对象信息": lambda people, companies, rng: _assisted(people, rng),
}


async def _hosted(http: httpx.AsyncClient, headers: dict[str, str], wait_seconds: float) -> dict[str, dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        resp = await http.get(f"{API}/resources", params={"limit": 1000}, headers=headers)
        _ok(resp, "list hosted resources")
        found = {r["name"]: r for r in resp.json()["items"]}
        if all(name in found for name in DEMO_BATCHES) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


async def seed(http: httpx.AsyncClient, tokens: dict[str, str], *, wait_seconds: float = 120.0) -> dict[str, int]:
    """Ingest the demo records; returns rows sent per resource name. `http` points at the gateway (or exchange)."""
    rng = random.Random(20261121)
    people = _people(rng)
    companies = [company(rng, n) for n in range(COMPANIES)]
    any_token = next(t for k, t in tokens.items() if k != "platform_admin")
    hosted = await _hosted(http, {"Authorization": f"Bearer {any_token}"}, wait_seconds)
    sent: dict[str, int] = {}
    for name, make in DEMO_BATCHES.items():
        resource = hosted.get(name)
        if resource is None:
            raise RuntimeError(f"demo exchange: resource {name} is not published (run the catalog demo first)")
        rows = make(people, companies, rng)
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        resp = await http.post(
            f"{API}/resources/{quote(resource['code'], safe='')}/batches",
            params={"batch_id": "demo-initial-load"},
            content=body,
            headers={
                "Authorization": f"Bearer {tokens[resource['provider_code']]}",
                "Content-Type": "application/x-ndjson",
            },
        )
        _ok(resp, f"ingest {name}")
        sent[name] = len(rows)
    return sent


def _ok(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise RuntimeError(f"demo exchange: {what} failed with {resp.status_code}: {resp.text[:500]}")
