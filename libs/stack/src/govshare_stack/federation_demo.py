"""`govshare up --demo --federation`: two platforms on one machine, 常州市 (the city, 320400) and 钟楼区 (the
district, 320404), peered both ways, each a whole `govshare up` of its own.

Each platform is a child `govshare up` with its own data folder (GOVSHARE_HOME/changzhou, …/zhonglou) and so
its own embedded PostgreSQL, broker, master secret (hence its own signing key), admin password, services and
door: nothing is shared that two real platforms would not share, and every start, stop and recovery is the
one `govshare up` already does. This process starts both, peers them through their doors as two platform
offices would (each registers the other with the key the other publishes), seeds the city, waits until the
catalog has cascaded both ways, prints where to look, and on Ctrl-C / SIGTERM stops both.

The seeds hold no rules of 常州市 itself: the city runs under 襄阳市's profile (`xiangyang`, another prefecture
city's regulations) as a declared stand-in, said in the banner. The district runs its own (`zhonglou`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from govshare_common.federation_codes import mirrored_code
from govshare_common.identifiers import uscc_check_char
from govshare_stack import procs
from govshare_stack.errors import StackError
from govshare_stack.home import StackHome, new_password, write_json
from govshare_stack.up import (
    DEFAULT_GATEWAY_TLS_PORT,
    DEMO_SECOND_FACTOR_GRACE_HOURS,
    PREFERRED_KAFKA_PORT,
    first_internal_port_from,
    gateway_port_from,
    say,
)

from gateway.demo import DEMO_PASSWORD

CITY_STAND_IN_PROFILE = "xiangyang"
FEDERATION_READY = "the two-platform federation demo is ready"
READY_LINE = "Ctrl-C"  # what a child `govshare up` prints once it is ready and its demo seeded
# Settings each platform must have of its own: two platforms never share a secret, a database or a broker.
NOT_SHARED = (
    "GOVSHARE_MASTER_SECRET",
    "GOVSHARE_MASTER_SECRET_FILE",
    "GOVSHARE_ADMIN_PASSWORD",
    "GOVSHARE_FEDERATION_PUBLIC_URL",
    "GOVSHARE_PLATFORM_DIVISION_CODE",
    "GOVSHARE_PLATFORM_NAME",
    "GOVSHARE_PLATFORM_LEVEL",
)


@dataclass
class Platform:
    key: str  # folder name under GOVSHARE_HOME
    division_code: str
    name: str
    level: str
    profile: str
    demo: bool  # the child runs `--demo` (the district's demo catalog); the city is seeded here
    gateway_port: int
    tls_port: int
    first_internal_port: int
    kafka_port: int
    home: StackHome = field(init=False)
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def door(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def admin_password(self) -> str:
        return (self.home.secrets / "admin-password").read_text().strip()


def platforms_from(environ: Mapping[str, str]) -> tuple[Platform, Platform]:
    """The city on the ports the environment gives (GOVSHARE_GATEWAY_PORT …), the district beside it."""
    root = StackHome.from_env(environ).root
    gateway = gateway_port_from(environ)
    first = first_internal_port_from(environ)
    tls = int(environ.get("GOVSHARE_GATEWAY_TLS_PORT") or DEFAULT_GATEWAY_TLS_PORT)
    kafka = int(environ.get("GOVSHARE_EMBEDDED_KAFKA_PORT") or PREFERRED_KAFKA_PORT)
    district_gateway = int(environ.get("GOVSHARE_DISTRICT_GATEWAY_PORT") or gateway + 1)
    city = Platform(
        "changzhou", "320400", "常州市", "prefecture_city", CITY_STAND_IN_PROFILE, False, gateway, tls, first, kafka
    )
    district = Platform(
        "zhonglou",
        "320404",
        "常州市钟楼区",
        "district",
        "zhonglou",
        True,
        district_gateway,
        tls + 2,
        first + 50,
        kafka + 2,
    )
    for p in (city, district):
        p.home = StackHome(root / p.key)
    return city, district


def child_env(environ: Mapping[str, str], p: Platform) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in NOT_SHARED}
    env.update(
        GOVSHARE_HOME=str(p.home.root),
        GOVSHARE_GATEWAY_PORT=str(p.gateway_port),
        GOVSHARE_GATEWAY_TLS_PORT=str(p.tls_port),
        GOVSHARE_FIRST_INTERNAL_PORT=str(p.first_internal_port),
        GOVSHARE_EMBEDDED_KAFKA_PORT=str(p.kafka_port),
        GOVSHARE_PROFILE=p.profile,
        GOVSHARE_PLATFORM_DIVISION_CODE=p.division_code,
        GOVSHARE_PLATFORM_NAME=p.name,
        GOVSHARE_PLATFORM_LEVEL=p.level,
        GOVSHARE_FEDERATION_PULL_INTERVAL_SECONDS=environ.get("GOVSHARE_FEDERATION_PULL_INTERVAL_SECONDS", "2"),
        PYTHONUNBUFFERED="1",
    )
    # The city is seeded here, not by its own --demo: its administrators get the demo's grace all the same.
    env.setdefault("GOVSHARE_SECOND_FACTOR_GRACE_HOURS", str(DEMO_SECOND_FACTOR_GRACE_HOURS))
    return env


async def run_federation_demo(environ: Mapping[str, str] | None = None, *, ready_timeout: float = 60.0) -> int:
    env_in = dict(os.environ if environ is None else environ)
    if env_in.get("GOVSHARE_DATABASE_URL") or env_in.get("GOVSHARE_KAFKA_BOOTSTRAP_SERVERS"):
        raise StackError(
            "--federation runs an embedded PostgreSQL and broker for each of its two platforms; unset "
            "GOVSHARE_DATABASE_URL and GOVSHARE_KAFKA_BOOTSTRAP_SERVERS."
        )
    city, district = platforms_from(env_in)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say(
        f"govshare: 两个平台 / two platforms: {city.name} ({city.home.root}) and {district.name} ({district.home.root})"
    )
    readers: list[asyncio.Task[None]] = []
    try:
        for p in (city, district):
            p.home.root.mkdir(parents=True, exist_ok=True)
            args = [sys.executable, "-m", "govshare_stack.cli", "up", "--ready-timeout", str(ready_timeout)]
            p.proc = await asyncio.create_subprocess_exec(
                *args,
                *(["--demo"] if p.demo else []),
                env=child_env(env_in, p),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                # Its own session, like every child of the stack: a Ctrl-C reaches only this process, which stops
                # both platforms; and if this process is killed hard, each still gets its SIGTERM and stops.
                start_new_session=True,
                preexec_fn=procs.tied_to_us(signal.SIGTERM),
            )
            readers.append(asyncio.ensure_future(_relay(p)))
        if not await _until_ready((city, district), stop):
            return 0 if stop.is_set() else 1
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
            demo = FederationDemo(http, city, district, state=StackHome.from_env(env_in).root)
            try:
                await demo.seed()
            except DemoFailed as exc:
                say(f"联邦演示失败 / the federation demo failed: {exc}; both platforms keep running")
        banner(city, district, StackHome.from_env(env_in).root)
        say("按 Ctrl-C 停止 / press Ctrl-C to stop both platforms")
        exited = [asyncio.ensure_future(p.proc.wait()) for p in (city, district) if p.proc]
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([*exited, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        return 0 if stop.is_set() else 1
    finally:
        await _stop_both((city, district))
        for task in readers:
            with contextlib.suppress(BaseException):
                await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _relay(p: Platform) -> None:
    """The child's output, each line marked with its platform; `ready` once it says it is."""
    assert p.proc is not None and p.proc.stdout is not None
    async for raw in p.proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        say(f"[{p.name}] {line}")
        if READY_LINE in line:
            p.ready.set()


async def _until_ready(both: tuple[Platform, ...], stop: asyncio.Event) -> bool:
    waits = [asyncio.ensure_future(p.ready.wait()) for p in both]
    exits = [asyncio.ensure_future(p.proc.wait()) for p in both if p.proc]
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not all(w.done() for w in waits):
            await asyncio.wait([*waits, *exits, stopping], return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() or any(e.done() for e in exits):
                for p in both:
                    if p.proc and p.proc.returncode is not None:
                        say(f"govshare: {p.name} 的平台已退出 / {p.name}'s platform exited ({p.proc.returncode})")
                return False
        return True
    finally:
        for t in [*waits, *exits, stopping]:
            t.cancel()


async def _stop_both(both: tuple[Platform, ...], grace: float = 90.0) -> None:
    running = [p for p in both if p.proc and p.proc.returncode is None]
    for p in running:
        assert p.proc is not None
        with contextlib.suppress(ProcessLookupError):
            p.proc.send_signal(signal.SIGTERM)
    for p in running:
        assert p.proc is not None
        try:
            await asyncio.wait_for(p.proc.wait(), grace)
        except TimeoutError:
            say(f"govshare: {p.name} 未在 {grace:.0f} 秒内停止 / did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                p.proc.kill()
            await p.proc.wait()


def banner(city: Platform, district: Platform, root: Path) -> None:
    say()
    say(f"两平台联邦演示已就绪 / {FEDERATION_READY}")
    for p in (city, district):
        stack = p.home.read_stack() or {}
        tls = (stack.get("door") or {}).get("tls_url", f"https://127.0.0.1:{p.tls_port}")
        say(f"  {p.name} ({p.division_code}, {p.level}, profile {p.profile})")
        say(f"    门户 / door:      {p.door}   (TLS {tls})")
        say(f"    控制台 / console: {p.door}/console/")
        say(f"    管理员密码 / admin password: {p.home.secrets / 'admin-password'} (user admin)")
        say(f"    数据目录 / data:  {p.home.root}  (logs in {p.home.logs})")
    say(f"    {district.name} 演示账号 / demo accounts: {district.home.demo_credentials}")
    say(f"    {city.name} 演示账号 / demo accounts: {root / CITY_CREDENTIALS}")
    say(
        f"  跨层级共享申请 / cross-level request: {district.name}民政局 ({DISTRICT_APPLICANT}) holds a grant from "
        f"{city.name}民政局 for {CITY_RESOURCES[0]['name']}; see 共享申请 in the district's console"
    )
    say(
        f"  注意 / note: 种子材料中没有常州市本级的规定；{city.name}以襄阳市的规定（profile {CITY_STAND_IN_PROFILE}）"
        "作为声明的替身运行。 / The seeds hold no rules of 常州市 itself: the city runs under 襄阳市's rules "
        f"(profile {CITY_STAND_IN_PROFILE}) as a declared stand-in."
    )
    say()


# --- the demo across the two platforms --------------------------------------------------------------------

CITY_CREDENTIALS = "federation-demo-credentials.json"
CITY_CIVIL_CODE = "11320400MB1234504" + uscc_check_char("11320400MB1234504")
CITY_CIVIL_NAME = "常州市民政局"
CITY_USER = "changzhou_mz"
CASCADE_TIMEOUT = 180.0


class DemoFailed(Exception):
    pass


def _city_resource(name: str, summary: str, *, cross_level: bool) -> dict[str, Any]:
    return {
        "resource_class": "departmental",
        "category_code": "07",
        "category_name": "民政",
        "subcategory_code": "001",
        "subcategory_name": "社会救助",
        "name": name,
        "summary": summary,
        "provider_code": CITY_CIVIL_CODE,
        "provider_name": CITY_CIVIL_NAME,
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
            {"name": "JZLX", "label": "救助类型", "data_type": "C", "length": 20, "sensitivity": "public"},
        ],
        "share_type": "conditional",
        "share_conditions": "仅限社会救助对象身份核验。",
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "monthly",
        "cross_level": cross_level,
    }


CITY_RESOURCES = (
    _city_resource(
        "常州市最低生活保障对象信息",
        "全市最低生活保障对象的身份和救助类型，跨层级共享给各区政务部门核验救助对象。",
        cross_level=True,
    ),
    _city_resource("常州市临时救助审批记录", "市本级临时救助的审批记录，仅在本级共享。", cross_level=False),
)


class FederationDemo:
    def __init__(self, http: httpx.AsyncClient, city: Platform, district: Platform, *, state: Path) -> None:
        self.http = http
        self.city = city
        self.district = district
        self.state = state

    async def seed(self) -> None:
        say()
        say("联邦演示 / the federation demo: peering both platforms, seeding the city …")
        admins = {p.key: await self.login(p, "admin", p.admin_password()) for p in (self.city, self.district)}
        await self.peer(admins)
        await self.seed_city(admins[self.city.key])
        await self.cascaded(admins)
        await cross_level_request_demo(self)

    async def login(self, p: Platform, username: str, password: str) -> dict[str, str]:
        r = await self.http.post(
            f"{p.door}/auth/token", data={"grant_type": "password", "username": username, "password": password}
        )
        if r.status_code != 200:
            raise DemoFailed(f"{p.name}: sign-in of {username} answered {r.status_code}: {r.text[:300]}")
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def call(
        self, method: str, url: str, headers: dict[str, str], ok: tuple[int, ...], **kw: Any
    ) -> httpx.Response:
        r = await self.http.request(method, url, headers=headers, **kw)
        if r.status_code not in ok:
            raise DemoFailed(f"{method} {url} answered {r.status_code}: {r.text[:300]}")
        return r

    async def peer(self, admins: dict[str, dict[str, str]]) -> None:
        """Each platform office registers the other with what the other publishes at its well-known URL (a
        second run, on other ports or after a key rotation, changes the registration instead)."""
        pairs = ((self.district, self.city, "parent"), (self.city, self.district, "child"))
        for here, there, relation in pairs:
            ident = (await self.call("GET", f"{there.door}/.well-known/govshare-platform", {}, (200,))).json()
            body = {
                "name": ident["name"],
                "level": ident["level"],
                "relation": relation,
                "base_url": there.door,
                "public_key": ident["public_key"],
            }
            peers = f"{here.door}/api/v1/catalog/federation/peers"
            r = await self.call(
                "POST", peers, admins[here.key], (201, 409), json={**body, "division_code": ident["division_code"]}
            )
            if r.status_code == 409:
                await self.call("PUT", f"{peers}/{ident['division_code']}", admins[here.key], (200,), json=body)
            say(f"  {here.name} 登记 / registered {there.name} as its {relation} ({there.door})")

    async def seed_city(self, admin: dict[str, str]) -> None:
        """One department of the city, with a resource shared across levels and one that is not."""
        door = self.city.door
        r = await self.call(
            "POST",
            f"{door}/api/v1/identity/departments",
            admin,
            (201, 409),
            json={"code": CITY_CIVIL_CODE, "name": CITY_CIVIL_NAME, "level": "city"},
        )
        if r.status_code == 201:
            await self.call(
                "POST",
                f"{door}/api/v1/identity/departments/{CITY_CIVIL_CODE}/filing",
                admin,
                (200, 201),
                json={
                    "signed_by": "王主任",
                    "signed_at": "2026-11-01T09:00:00+08:00",
                    "commitment": "遵守共享交换规则承诺书",
                },
            )
        credentials_path = self.state / CITY_CREDENTIALS
        credentials = json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
        if CITY_USER not in credentials:
            password = new_password()
            await self.call(
                "POST",
                f"{door}/api/v1/identity/users",
                admin,
                (201,),
                json={
                    "username": CITY_USER,
                    "display_name": "常州市民政局目录管理员",
                    "department_code": CITY_CIVIL_CODE,
                    "password": password,
                    "roles": ["dept_admin"],
                },
            )
            credentials[CITY_USER] = {"username": CITY_USER, "password": password, "platform": self.city.door}
            write_json(credentials_path, credentials, mode=0o600)
        dept = await self.login(self.city, CITY_USER, credentials[CITY_USER]["password"])
        listed = await self.call(
            "GET", f"{door}/api/v1/catalog/resources", admin, (200,), params={"provider_code": CITY_CIVIL_CODE}
        )
        have = {i["name"] for i in listed.json()["items"]}
        for body in CITY_RESOURCES:
            if body["name"] in have:
                continue
            rid = (await self.call("POST", f"{door}/api/v1/catalog/resources", dept, (201,), json=body)).json()["id"]
            await self.call("POST", f"{door}/api/v1/catalog/resources/{rid}/submit", dept, (200,))
            await self.call("POST", f"{door}/api/v1/catalog/resources/{rid}/publish", admin, (200,))
            shared = "跨层级共享 / shared across levels" if body["cross_level"] else "本级共享 / this level only"
            say(f"  {self.city.name}发布 / published {body['name']} ({shared})")

    async def cascaded(self, admins: dict[str, dict[str, str]]) -> None:
        """Until the district's catalog is in the city's and the city's cross-level resource in the district's."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CASCADE_TIMEOUT
        up = down = 0
        while loop.time() < deadline:
            up = await self.mirrored(self.city, admins[self.city.key], self.district.division_code)
            down = await self.mirrored(self.district, admins[self.district.key], self.city.division_code)
            if up and down:
                say(
                    f"  目录级联 / cascade: {up} resources of {self.district.name} at {self.city.name}; "
                    f"{down} cross-level resource(s) of {self.city.name} at {self.district.name}"
                )
                return
            await asyncio.sleep(1.0)
        raise DemoFailed(f"the cascade did not converge within {CASCADE_TIMEOUT:.0f} s (up {up}, down {down})")

    async def mirrored(self, p: Platform, admin: dict[str, str], origin: str) -> int:
        r = await self.call("GET", f"{p.door}/api/v1/catalog/federation/peers/{origin}", admin, (200,))
        return int(r.json()["feed"]["mirrored_resources"])


DISTRICT_APPLICANT = "mzj_admin"  # 钟楼区民政局's信息资源管理员 in the district's demo accounts
CROSS_LEVEL_APPLICATION = {
    "items": ["GMSFHM", "XM", "JZLX"],
    "purposes": ["data_verification"],
    "scope": "区民政局社会救助经办科室",
    "security_measures": "政务外网访问，全程留痕",
    "business_matter": "核验申请社会救助的居民是否已在市级最低生活保障名录中",
}
REQUEST_TIMEOUT = 60.0


async def cross_level_request_demo(demo: FederationDemo) -> None:
    """The demo's cross-level share request (issue 16 item 4): 钟楼区民政局 applies at its own platform for the
    city's cross-level resource; the district forwards it to the city, where 常州市民政局 approves it under the
    city's profile; the state comes back to the district, whose department then holds a grant issued by the city.
    A second run finds the request already made and leaves it as it is."""
    city, district = demo.city, demo.district
    applicant = await demo.login(district, DISTRICT_APPLICANT, DEMO_PASSWORD)
    city_admin = await demo.login(city, "admin", city.admin_password())
    listed = await demo.call(
        "GET",
        f"{city.door}/api/v1/catalog/resources",
        city_admin,
        (200,),
        params={"provider_code": CITY_CIVIL_CODE},
    )
    origin_code = next(i["code"] for i in listed.json()["items"] if i["name"] == CITY_RESOURCES[0]["name"])
    code = mirrored_code(city.division_code, origin_code)
    mine = await demo.call("GET", f"{district.door}/api/v1/requests", applicant, (200,), params={"resource_code": code})
    if mine.json()["items"]:
        say(f"  跨层级共享申请 / cross-level request: already made ({mine.json()['items'][0]['state']})")
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REQUEST_TIMEOUT
    while True:  # request-svc learns the mirrored resource from the catalog's events a moment after the cascade
        r = await demo.http.post(
            f"{district.door}/api/v1/requests",
            json={**CROSS_LEVEL_APPLICATION, "resource_code": code},
            headers=applicant,
        )
        if r.status_code == 201:
            break
        if r.status_code != 422 or loop.time() > deadline:
            raise DemoFailed(f"the cross-level request was refused: {r.status_code} {r.text[:300]}")
        await asyncio.sleep(0.5)
    home_id = r.json()["id"]
    received = await _request_reaches(demo, applicant, home_id, {"submitted"}, deadline)
    credentials = json.loads((demo.state / CITY_CREDENTIALS).read_text())
    reviewer = await demo.login(city, CITY_USER, credentials[CITY_USER]["password"])
    await demo.call(
        "POST",
        f"{city.door}/api/v1/requests/{received['origin_request_id']}/approve",
        reviewer,
        (200,),
        json={"items": ["GMSFHM", "JZLX"]},
    )
    approved = await _request_reaches(demo, applicant, home_id, {"approved"}, loop.time() + REQUEST_TIMEOUT)
    say(
        f"  跨层级共享申请 / cross-level request: {district.name}民政局 applied for {CITY_RESOURCES[0]['name']}; "
        f"due {received['due_date']} by {city.name}'s rules, approved at {city.name} ({approved['state']})"
    )


async def _request_reaches(
    demo: FederationDemo, applicant: dict[str, str], request_id: str, states: set[str], deadline: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    while True:
        r = await demo.call("GET", f"{demo.district.door}/api/v1/requests/{request_id}", applicant, (200,))
        shown: dict[str, Any] = r.json()
        if shown["state"] in states:
            return shown
        if loop.time() > deadline:
            raise DemoFailed(f"the cross-level request stayed {shown['state']} (waiting for {sorted(states)})")
        await asyncio.sleep(0.5)
