"""The console's 数据批次 page in a real browser (Chromium through Playwright) against the real platform: a batch
of several chunks (the chunk size set small) is sent through the front door a piece at a time; while it runs the
page shows it 接收中 with its rows done and refreshes by itself, and then shows it 已完成 with every row."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from gateway_helpers import bearer
from playwright.async_api import async_playwright, expect
from published_resources import RESOURCE, publish
from test_console_browser import CHROMIUM, CHROMIUM_ARGS, SHORT, signed_in

from govshare_common.identifiers import resident_id_check_char
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

CHUNK = 50
ROWS = 300


def lines(start: int, count: int) -> bytes:
    out = []
    for i in range(start, start + count):
        first17 = f"320404{1960 + i % 40:04d}0{1 + i % 9}{10 + i % 18:02d}{i:03d}"
        gmsfhm = first17 + resident_id_check_char(first17)
        out.append(json.dumps({"GMSFHM": gmsfhm, "XM": f"王{i}", "HJDZ": "江苏省常州市钟楼区南大街1号", "MZ": "01"}))
    return ("\n".join(out) + "\n").encode()


class Paced:
    """A body of ROWS rows sent a chunk at a time, each piece only once the test allows it."""

    def __init__(self) -> None:
        self.allowed = 0
        self._go = asyncio.Event()

    def allow(self, pieces: int) -> None:
        self.allowed = pieces
        self._go.set()

    async def body(self) -> AsyncIterator[bytes]:
        for k in range(ROWS // CHUNK):
            while k >= self.allowed:
                self._go.clear()
                await self._go.wait()
            yield lines(k * CHUNK, CHUNK)


@pytest.mark.timeout(600)
async def test_the_batches_page_shows_a_running_batch_move_to_done(platform, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with (
        platform("gateway", "catalog", "exchange", "console", ingest_chunk_rows=CHUNK) as p,
        p.client() as http,
        async_playwright() as pw,
    ):
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        username = f"{SHORT[PSB.code]}_admin"
        psb = bearer(await p.token(username, DEMO_PASSWORD))
        code = await publish(http, RESOURCE, dept_admin=psb, platform_admin=bearer(admin_token))

        async def hosted() -> bool:
            # The door's decision must know the resource is published too (it learns it from the catalog's
            # events on its own): a batch it refused would wait here for the paced body, never answered.
            if code not in p.apps["gateway"].state.live.resources:
                return False
            r = await http.get("/api/v1/exchange/resources", headers=psb)
            return r.status_code == 200 and any(i["code"] == code for i in r.json()["items"])

        await eventually(hosted)
        paced = Paced()
        paced.allow(3)
        sending = asyncio.create_task(
            http.post(
                f"/api/v1/exchange/resources/{quote(code, safe='')}/batches",
                params={"batch_id": "console-large"},
                content=paced.body(),
                headers={**psb, "Content-Type": "application/x-ndjson"},
                timeout=120.0,
            )
        )

        async def two_chunks_in() -> Any:
            r = await http.get("/api/v1/exchange/batches", params={"batch_id": "console-large"}, headers=psb)
            items = r.json()["items"] if r.status_code == 200 else []
            return items and items[0]["rows_done"] >= 2 * CHUNK

        await eventually(two_chunks_in)
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            async with signed_in(browser, p.urls["gateway"], shots, username) as admin:
                await admin.open("数据批次")
                state = admin.page.locator("[data-test='state-console-large']")
                rows = admin.page.locator("[data-test='rows-console-large']")
                await expect(state).to_have_text("接收中")
                await expect(rows).to_have_text("100 / 统计中")
                await expect(admin.page.locator("[data-test='cancel-console-large']")).to_be_visible()
                await admin.shot("batches-running")
                paced.allow(4)
                # The page refreshes by itself while the batch runs.
                await expect(rows).to_have_text("150 / 统计中")
                paced.allow(ROWS // CHUNK)
                await expect(state).to_have_text("已完成")
                await expect(rows).to_have_text("300 / 300")
                progress = admin.page.locator("[data-test='progress-console-large']")
                await expect(progress).to_have_attribute("aria-valuenow", "100")
                await expect(admin.page.locator("[data-test='cancel-console-large']")).to_have_count(0)
                await admin.shot("batches-done")
                assert admin.unexpected_errors() == []
        finally:
            await browser.close()
        sent = await sending
        assert sent.status_code == 200, sent.text
        assert sent.json()["inserted"] == ROWS
