"""The operator console in a real browser (Debian's Chromium through Playwright) against the real platform:
gateway, catalog, request, exchange, audit and console services on real ports, seeded through the public API.

One platform serves every journey (starting it is most of the cost); each journey signs in as the person who
does that work, in a browser context of its own, and every page it visits is screenshotted by name.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from gateway_helpers import bearer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from published_resources import demo_catalog

from govshare_common.identifiers import mask_name, mask_resident_id, resident_id_check_char, uscc_check_char
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, HRSS, PLATFORM_ADMIN, PSB
from gateway.demo import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
# What a page shows is waited for (never a fixed sleep); on two cores busy with the rest of the suite a lazily
# loaded page can take longer than Playwright's default 5 s to appear, which says nothing about the console.
expect.set_options(timeout=20_000)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHORT = {code: short for code, _name, short in departments()}
RESOURCE = "户籍迁移登记信息"  # conditional, held by 公安; items GMSFHM XM QYLB QCD QRD QYRQ


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


PERSON_A = resident_id("32040419850312123")
PERSON_B = resident_id("32040419900101456")
BAD_ID = PERSON_A[:-1] + ("0" if PERSON_A[-1] != "0" else "1")  # the check digit no longer fits
HEADER = "GMSFHM,XM,QYLB,QCD,QRD,QYRQ\n"


class Browsing:
    """A signed-in person's browser context, collecting what its pages log as errors."""

    def __init__(self, context: BrowserContext, page: Page, shots: Path, who: str) -> None:
        self.context = context
        self.page = page
        self.shots = shots
        self.who = who
        self.errors: list[str] = []
        self.refused: list[str] = []  # which calls failed, to name them when an error was not expected
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("response", lambda r: self.refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    async def shot(self, name: str) -> None:
        await self.page.wait_for_load_state("networkidle")
        await expect(self.page.locator(".el-loading-mask:visible")).to_have_count(0)
        await self.page.screenshot(path=str(self.shots / f"{self.who}-{name}.png"), full_page=True)

    async def open(self, title: str) -> None:
        await self.page.get_by_role("menuitem", name=title, exact=True).click()
        await expect(self.page.locator(".header .page-title")).to_have_text(title)

    def unexpected_errors(self, *allowed_statuses: int) -> list[str]:
        allowed = [f"status of {s} " for s in allowed_statuses]
        unexpected = [e for e in self.errors if not any(a in e for a in allowed)]
        return unexpected + (self.refused if unexpected else [])


@asynccontextmanager
async def signed_in(
    browser: Browser,
    base: str,
    shots: Path,
    username: str,
    password: str = DEMO_PASSWORD,
    path: str = "/console/",
    fake_clock: bool = False,
) -> AsyncIterator[Browsing]:
    context = await browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 900}
    )
    page = await context.new_page()
    b = Browsing(context, page, shots, username)
    if fake_clock:
        await page.clock.install()  # the test moves the page's time on instead of waiting
    await page.goto(base + path)
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("[data-test=user]")).to_be_visible()
    try:
        yield b
    finally:
        await context.close()


async def tour(b: Browsing) -> None:
    """Every page in this person's menu opens, shows its title, and is screenshotted."""
    titles = await b.page.locator(".aside .el-menu-item").all_inner_texts()
    for title in titles:
        await b.open(title.strip())
        await b.shot("page-" + title.strip())


def shown_date(day: str) -> str:
    """A date as the console shows it (China's calendar date, 2026年12月3日)."""
    y, m, d = (int(x) for x in day.split("-"))
    return f"{y}年{m}月{d}日"


async def working_day_after(http: httpx.AsyncClient, token: str, day: str) -> str:
    r = await http.get(
        "/api/v1/platform/calendar/deadline", params={"start": day, "working_days": 1}, headers=bearer(token)
    )
    return str(r.json()["due"])


async def enrolled_platform_admin(http: httpx.AsyncClient, admin_token: str, username: str) -> pyotp.TOTP:
    """A new platform admin with a confirmed authenticator; returns that authenticator."""
    r = await http.post(
        "/api/v1/identity/users",
        json={
            "username": username,
            "display_name": "平台值班员",
            "roles": ["platform_admin"],
            "password": DEMO_PASSWORD,
        },
        headers=bearer(admin_token),
    )
    assert r.status_code == 201, r.text
    enrol = await http.post("/auth/second-factor/enrol", data={"username": username, "password": DEMO_PASSWORD})
    assert enrol.status_code == 200, enrol.text
    totp = pyotp.TOTP(enrol.json()["secret"])
    confirmed = await http.post(
        "/auth/second-factor/confirm", data={"username": username, "password": DEMO_PASSWORD, "otp": totp.now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp


async def fresh_token(p: Any, who: str) -> str:
    """A token taken now, for the platform office or a department's admin: the seed's tokens last 5 minutes, and
    this journey can outlast them on a busy machine."""
    return await p.token() if who == PLATFORM_ADMIN else await p.token(f"{SHORT[who]}_admin", DEMO_PASSWORD)


async def seed(p: Any, http: httpx.AsyncClient) -> dict[str, Any]:
    tokens = await demo_catalog(p, http)
    admin = tokens[PLATFORM_ADMIN]
    found = (await http.get("/api/v1/catalog/resources", params={"limit": 200}, headers=bearer(admin))).json()
    code = next(i["code"] for i in found["items"] if i["name"] == RESOURCE)

    async def hosted() -> bool:
        r = await http.get("/api/v1/exchange/resources", params={"limit": 200}, headers=bearer(admin))
        return any(i["code"] == code for i in r.json()["items"])

    await eventually(hosted, timeout=30.0)
    return {"tokens": tokens, "code": code}


async def apply_for(http: httpx.AsyncClient, consumer_token: str, code: str) -> dict[str, Any]:
    body = {
        "resource_code": code,
        "items": ["GMSFHM", "XM", "QCD"],
        "purposes": ["business_collaboration"],
        "scope": "社保转移经办人员",
        "security_measures": "政务外网访问，全程留痕",
        "business_matter": "社会保险关系转移接续（控制台测试）",
    }

    async def submitted() -> httpx.Response | None:
        r = await http.post("/api/v1/requests", json=body, headers=bearer(consumer_token))
        return r if r.status_code == 201 else None  # request-svc learns the resource from catalog's events

    r = await eventually(submitted, timeout=30.0)
    return dict(r.json())


@pytest.mark.timeout(900)  # every role's journey in one browser: minutes when the machine is busy
async def test_console_journeys_in_a_real_browser(platform, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with (
        platform("gateway", "catalog", "request", "exchange", "audit", "console") as p,
        p.client() as http,
        async_playwright() as pw,
    ):
        base = p.urls["gateway"]
        seeded = await seed(p, http)
        code = seeded["code"]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The console's own answers carry a policy that refuses inline scripts.
            page = await http.get("/console/")
            assert page.status_code == 200
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert '<script type="module"' in page.text and "<script>" not in page.text

            # 1. A department admin uploads a batch with one bad ID number, sees that row's error and nothing
            #    stored; then a good batch, and the record count rises.
            async with signed_in(browser, base, shots, f"{SHORT[PSB.code]}_admin") as admin:
                # Signed in, and nothing an injected script could read: the token lives in the page's memory.
                stored = "() => [localStorage.length, sessionStorage.length, document.cookie]"
                assert await admin.page.evaluate(stored) == [0, 0, ""]
                assert await admin.context.cookies() == []
                await expect(admin.page.locator("[data-test=idle]")).to_contain_text(
                    re.compile(r"空闲超时 (30:00|29:\d\d)")
                )
                await admin.open("托管数据库")
                count = admin.page.locator(f"[data-test='records-{code}']")
                await expect(count).to_have_text("0")
                await admin.page.locator(f"[data-test='upload-{code}']").click()
                bad = tmp_path / "bad.csv"
                bad.write_text(
                    HEADER
                    + f"{PERSON_B},李四,01,武进区,钟楼区,2026-03-01\n{BAD_ID},张三,01,新北区,钟楼区,2026-04-01\n",
                    encoding="utf-8",
                )
                await admin.page.locator("[data-test=batch-file]").set_input_files(str(bad))
                await admin.page.locator("[data-test=send-batch]").click()
                errors = admin.page.locator("[data-test=row-errors]")
                await expect(errors).to_contain_text("GMSFHM")
                await expect(errors.locator("tbody tr")).to_have_count(1)
                await expect(errors.locator("tbody tr td").first).to_have_text("2")
                await admin.shot("library-upload-rejected")
                good = tmp_path / "good.csv"
                good.write_text(
                    HEADER
                    + f"{PERSON_B},李四,01,武进区,钟楼区,2026-03-01\n{PERSON_A},张三,01,新北区,钟楼区,2026-04-01\n",
                    encoding="utf-8",
                )
                await admin.page.locator("[data-test=batch-file]").set_input_files(str(good))
                await admin.page.locator("[data-test=send-batch]").click()
                await expect(admin.page.locator("[data-test=batch-ok]")).to_contain_text("共 2 行")
                await admin.shot("library-upload-accepted")
                await admin.page.keyboard.press("Escape")
                await expect(count).to_have_text("2")
                # The department's connector reports itself; its admin sees it online, with its lag.
                r = await http.put(
                    "/api/v1/exchange/connectors/gaj-qzj",
                    json={
                        "sources": [
                            {
                                "name": "people",
                                "resource": code,
                                "kind": "postgres_wal",
                                "lag_rows": 3,
                                "lag_seconds": 1.5,
                            }
                        ]
                    },
                    headers=bearer(await fresh_token(p, PSB.code)),
                )
                assert r.status_code == 200, r.text
                await admin.open("本部门前置机")
                await expect(admin.page.locator("[data-test=connector-online]")).to_have_text("在线")
                await expect(admin.page.get_by_text("gaj-qzj")).to_be_visible()
                await admin.shot("connector-status")
                await tour(admin)
                assert admin.unexpected_errors(422) == [], admin.refused
                assert any("status of 422" in e for e in admin.errors)  # the refused batch, and only that

            # 2. A reviewer finds the request in the worklist and approves it with fewer items than asked.
            await apply_for(http, await fresh_token(p, HRSS.code), code)
            async with signed_in(browser, base, shots, f"{SHORT[PSB.code]}_reviewer") as reviewer:
                await reviewer.open("待办审核")
                row = reviewer.page.locator("[data-test=table] tbody tr", has_text=RESOURCE)
                await expect(row).to_have_count(1)
                await expect(row.locator("[data-test=due]")).to_contain_text(re.compile(r"剩余 \d+ 个工作日"))
                await reviewer.shot("worklist")
                await row.locator("[data-test=open-request]").click()
                await expect(reviewer.page.locator("[data-test=state]")).to_have_text("待提供部门答复")
                await reviewer.shot("request-detail")
                await reviewer.page.locator("[data-test=approve]").click()
                await reviewer.page.locator("[data-test=approve-items] [data-item=QCD]").click()
                await reviewer.shot("approve-dialog")
                await reviewer.page.locator("[data-test=confirm-approve]").click()
                await expect(reviewer.page.locator("[data-test=state]")).to_have_text("已同意")
                await reviewer.open("已发授权")
                await expect(reviewer.page.locator("[data-test=grant-items]")).to_have_text("GMSFHM、XM")

                # 3. A department user cannot open the platform office's pages: the gateway refuses and the
                #    console says so (a reload signs out: the token lives in memory only).
                await reviewer.page.goto(base + "/console/platform/departments")
                await reviewer.page.get_by_label("用户名").fill(f"{SHORT[PSB.code]}_reviewer")
                await reviewer.page.get_by_label("密码").fill(DEMO_PASSWORD)
                await reviewer.page.get_by_role("button", name="登录").click()
                refused = reviewer.page.locator("[data-test=refused]")
                await expect(refused).to_contain_text("无权访问")
                await expect(refused).to_contain_text("您的角色无权执行此操作")
                await expect(reviewer.page.get_by_role("menuitem", name="部门与接入备案")).to_have_count(0)
                await reviewer.shot("platform-page-refused")
                assert reviewer.unexpected_errors(403) == []

            # 4. The consumer, in another browser context, sees the grant and runs a masked query.
            async with signed_in(browser, base, shots, f"{SHORT[HRSS.code]}_admin") as consumer:
                await consumer.open("我的授权")
                await expect(consumer.page.locator("[data-test=grant-items]")).to_have_text("GMSFHM、XM")
                await consumer.shot("grants")
                await consumer.page.locator("[data-test=query-grant]").click()
                await expect(consumer.page.locator("[data-test=query-code]")).to_have_value(code)
                await consumer.page.locator("[data-test=query-subject]").fill(PERSON_A)
                await consumer.page.locator("[data-test=run-query]").click()
                result = consumer.page.locator("[data-test=query-result]")
                await expect(result.locator("[data-item=GMSFHM]")).to_have_text(mask_resident_id(PERSON_A))
                await expect(result.locator("[data-item=XM]")).to_have_text(mask_name("张三"))
                await expect(result).not_to_contain_text("新北区")  # QCD was not granted
                await expect(result).not_to_contain_text(PERSON_A)
                await consumer.shot("query-masked")
                assert consumer.unexpected_errors() == []

            # 6. The platform office's and the auditor's pages all open without a browser error.
            admin_password = p.apps["gateway"].state.settings.admin_password.get_secret_value()
            async with signed_in(browser, base, shots, "admin", admin_password) as office:
                # 5. The platform office enters a holiday inside a running deadline; the due date it shows moves.
                pending = await apply_for(http, await fresh_token(p, CIVIL.code), code)
                admin_token = await fresh_token(p, PLATFORM_ADMIN)
                holiday = await working_day_after(http, admin_token, pending["submitted_on"])
                assert holiday <= pending["due_date"]
                row = office.page.locator("[data-test=table] tbody tr", has_text=CIVIL.code)
                await office.open("共享申请")
                await expect(row.locator("[data-test=due]")).to_contain_text(shown_date(pending["due_date"]))
                await office.open("工作日历")
                await office.page.locator("[data-test=year] input").fill(holiday[:4])
                await office.page.locator("[data-test=year] input").press("Enter")
                await office.page.locator("[data-test=edit-year]").click()
                await office.page.locator("[data-test=add-holiday]").click()
                day_input = office.page.locator("[data-test=holiday-rows] .el-date-editor input").last
                await day_input.fill(holiday)
                await day_input.press("Enter")
                await office.shot("calendar-enter-holiday")
                await office.page.locator("[data-test=save-year]").click()
                await expect(office.page.locator("[data-test=holidays]")).to_contain_text(shown_date(holiday))
                moved_to = await working_day_after(http, admin_token, pending["due_date"])

                async def due_moved() -> bool:
                    await office.open("首页")
                    await office.open("共享申请")
                    await expect(row).to_have_count(1)
                    return shown_date(moved_to) in await row.locator("[data-test=due]").inner_text()

                await eventually(due_moved, timeout=20.0, interval=0.5)
                await office.shot("requests-due-moved")

                # The departments page shows each department's jurisdiction, a hosted one (肥城市) marked as such.
                admin_headers = bearer(await fresh_token(p, PLATFORM_ADMIN))
                hosted = {"code": "370983", "name": "肥城市", "profile": "feicheng"}
                r = await http.post("/api/v1/identity/jurisdictions", json=hosted, headers=admin_headers)
                assert r.status_code == 201, r.text
                fc_code = "11370983004100001" + uscc_check_char("11370983004100001")
                fc = {"code": fc_code, "name": "肥城市公安局", "level": "county", "jurisdiction_code": "370983"}
                r = await http.post("/api/v1/identity/departments", json=fc, headers=admin_headers)
                assert r.status_code == 201, r.text
                await office.open("部门与接入备案")
                rows = office.page.locator("[data-test=table] tbody tr")
                await expect(rows.filter(has_text=fc_code)).to_contain_text("肥城市（托管）")
                await expect(rows.filter(has_text=PSB.code)).to_contain_text("常州市钟楼区")
                await office.shot("departments-with-jurisdictions")

                await office.open("运行总览")
                await expect(office.page.locator("[data-test=dashboard]")).to_contain_text("统一身份认证与访问网关")
                await expect(office.page.locator("[data-test=dashboard] canvas").first).to_be_visible()
                await expect(office.page.locator("[data-test=chain]")).to_contain_text("链完整")

                # The pipeline as operators see it: nothing quarantined, and no peer platform registered yet.
                await office.open("服务、前置机与级联")
                await expect(office.page.locator("[data-test=quarantined]").first).to_have_text("0")
                await expect(office.page.locator("[data-test=peers]")).to_contain_text("尚未与上下级平台建立级联")
                await office.shot("services-topics-and-peers")
                await tour(office)
                assert office.unexpected_errors() == []
            async with signed_in(browser, base, shots, "auditor") as auditor:
                await tour(auditor)
                assert auditor.unexpected_errors() == []

            # 7. Thirty idle minutes sign the user out, and the console says why.
            async with signed_in(browser, base, shots, "auditor", fake_clock=True) as idle:
                await idle.page.clock.fast_forward("30:05")
                await expect(idle.page.get_by_text("30 分钟无操作，已自动退出")).to_be_visible()
                await expect(idle.page.get_by_role("button", name="登录")).to_be_visible()
                await idle.shot("signed-out-after-idle")
                assert idle.unexpected_errors() == []

            # 8. An administrator with a second factor: the login page asks for the code, and the code admits.
            authenticator = await enrolled_platform_admin(http, await fresh_token(p, PLATFORM_ADMIN), "office2")
            context = await browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            await page.goto(base + "/console/")
            await page.get_by_label("用户名").fill("office2")
            await page.get_by_label("密码").fill(DEMO_PASSWORD)
            await page.get_by_role("button", name="登录").click()
            await expect(page.get_by_label("动态口令")).to_be_visible()
            await page.screenshot(path=str(shots / "login-asks-for-code.png"))
            # The code of the next time step: the one of this step was spent confirming the enrolment.
            await page.get_by_label("动态口令").fill(authenticator.at(time.time() + 30))
            await page.get_by_role("button", name="登录").click()
            await expect(page.locator("[data-test=user]")).to_be_visible()
            await page.screenshot(path=str(shots / "signed-in-with-code.png"))
            await context.close()
            assert len(list(shots.glob("*.png"))) >= 30
        finally:
            await browser.close()


async def test_escalation_form_sends_the_written_application_under_xiangyang(platform, tmp_path: Path) -> None:
    """Xiangyang 002 Art.10: a refused request goes to 市信息化办 by written application, answered in 10 working
    days; the console's escalate form asks for the letter there, and the service refuses the form without it."""
    from published_resources import RESOURCE as CONDITIONAL
    from published_resources import publish

    from gateway.demo import seed as seed_identities

    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with (
        platform("gateway", "catalog", "request", "console", profile="xiangyang") as p,
        p.client() as http,
        async_playwright() as pw,
    ):
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        psb = {"Authorization": f"Bearer {await p.token(f'{SHORT[PSB.code]}_admin', DEMO_PASSWORD)}"}
        civil = {"Authorization": f"Bearer {await p.token(f'{SHORT[CIVIL.code]}_admin', DEMO_PASSWORD)}"}
        code = await publish(
            http, CONDITIONAL, dept_admin=psb, platform_admin={"Authorization": f"Bearer {admin_token}"}
        )

        async def submitted() -> Any:
            r = await http.post(
                "/api/v1/requests",
                json={
                    "resource_code": code,
                    "items": ["XM"],
                    "purposes": ["data_verification"],
                    "scope": "低保审核经办人员",
                    "security_measures": "专网访问，操作留痕",
                    "business_matter": "最低生活保障对象身份核验",
                },
                headers=civil,
            )
            return r.json() if r.status_code == 201 else None

        request_id = (await eventually(submitted, timeout=15.0))["id"]
        refused = await http.post(
            f"/api/v1/requests/{request_id}/reject", json={"reason": "申请用途与户籍数据无关"}, headers=psb
        )
        assert refused.status_code == 200, refused.text

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            async with signed_in(
                browser, p.urls["gateway"], shots, f"{SHORT[CIVIL.code]}_admin", path=f"/console/requests/{request_id}"
            ) as consumer:
                page = consumer.page
                await page.locator("[data-test=escalate]").click()
                await expect(page.locator("[data-test=written-application-note]")).to_contain_text("书面申请")
                await expect(page.locator("[data-test=written-application-note]")).to_contain_text("10 个工作日")
                await page.locator("textarea[data-test=escalate-reason]").fill("低保审核确需核验户籍姓名")
                await page.locator("[data-test=send-escalation]").click()
                refusal = page.locator(".el-dialog [data-test=error]")
                await expect(refusal).to_contain_text("written_application")
                await expect(refusal).to_contain_text("须提交书面申请")
                await expect(page.locator("[data-test=state]")).not_to_have_text("协商协调中")
                await consumer.shot("escalate-without-letter")
                await page.locator("textarea[data-test=written-application]").fill(
                    "关于申请协调共享户籍人口登记信息的函：为核验最低生活保障对象身份，申请共享姓名一项……"
                )
                await page.locator("[data-test=send-escalation]").click()
                await expect(page.locator("[data-test=state]")).to_have_text("协商协调中")
                await consumer.shot("escalated-with-letter")
                assert consumer.unexpected_errors(422) == []
        finally:
            await browser.close()
        detail = (await http.get(f"/api/v1/requests/{request_id}", headers=civil)).json()
        assert detail["state"] == "escalated"
        assert any("书面申请：关于申请协调共享户籍人口登记信息的函" in (h.get("note") or "") for h in detail["history"])


async def test_open_data_demands_are_answered_in_the_console_under_beijing(platform, tmp_path: Path) -> None:
    """Beijing 004 Art.20: the public asks for data to be opened, without an account; the platform office sees the
    demand with the profile's 15 working days in the console, answers it there, and the answer is on record."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with (
        platform("gateway", "request", "console", profile="beijing") as p,
        p.client() as http,
        async_playwright() as pw,
    ):
        filed = await http.post(
            "/api/v1/requests/open-data-demands",
            json={
                "subject": "开放本区公共停车场泊位数据",
                "content": "希望开放各公共停车场的位置、泊位数和收费标准，用于便民出行服务。",
                "requester_name": "王某",
                "requester_contact": "wang@example.cn",
            },
        )
        assert filed.status_code == 201, filed.text
        demand = filed.json()
        assert demand["state"] == "pending" and demand["working_days"] == 15

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            admin_password = p.apps["gateway"].state.settings.admin_password.get_secret_value()
            async with signed_in(browser, p.urls["gateway"], shots, "admin", admin_password) as office:
                await office.open("开放需求")
                state = office.page.locator(f"[data-test='demand-state-{demand['id']}']")
                await expect(state).to_have_text("待答复")
                await expect(office.page.get_by_text("开放本区公共停车场泊位数据")).to_be_visible()
                await office.page.locator(f"[data-test='answer-{demand['id']}']").click()
                await office.page.locator("textarea[data-test=demand-answer]").fill("一")  # too short: refused
                await office.page.locator("[data-test=send-answer]").click()
                await expect(office.page.locator(".el-dialog [data-test=error]")).to_contain_text("answer")
                await office.page.locator("textarea[data-test=demand-answer]").fill(
                    "已纳入下一批开放目录，预计 2027 年 1 月在开放平台提供下载。"
                )
                await office.page.locator("[data-test=send-answer]").click()
                await expect(state).to_have_text("已答复")
                await office.shot("open-data-demand-answered")
                assert office.unexpected_errors(422) == []
        finally:
            await browser.close()
        admin = {"Authorization": f"Bearer {await p.token()}"}
        answered = (await http.get(f"/api/v1/requests/open-data-demands/{demand['id']}", headers=admin)).json()
        assert answered["state"] == "answered" and answered["answer"].startswith("已纳入下一批开放目录")
