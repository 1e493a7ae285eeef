"""A resource's whole life through HTTP, and each step's event arriving at another service."""

from __future__ import annotations

from catalog_helpers import PSB, resource_body

from catalog_svc.events import PUBLISHED, RETURNED, SUBMITTED, UPDATED, WITHDRAWN

API = "/api/v1/catalog"


async def test_draft_return_fix_publish_change_withdraw(catalog) -> None:
    async with catalog(watch=True) as c:
        dept, admin, reader = c.dept_admin(PSB), c.platform_admin(), c.user(["dept_system"], department=None)

        # Draft: visible to the department, invisible to everyone else.
        created = await c.http.post(f"{API}/resources", json=resource_body(summary="初稿"), headers=dept)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert created.json()["status"] == "draft" and created.json()["code"] is None
        assert (await c.http.get(f"{API}/resources/{rid}", headers=reader)).status_code == 404

        # Submit, and the platform office returns it with comments.
        submitted = await c.http.post(f"{API}/resources/{rid}/submit", headers=dept)
        assert submitted.json()["pending"]["status"] == "submitted"
        queue = (await c.http.get(f"{API}/review-queue", headers=admin)).json()
        assert [i["id"] for i in queue["items"]] == [rid] and queue["total"] == 1
        # Under review, the department cannot change it.
        locked = await c.http.put(f"{API}/resources/{rid}/draft", json=resource_body(), headers=dept)
        assert locked.status_code == 409
        returned = await c.http.post(f"{API}/resources/{rid}/return", json={"comment": "摘要过于简单"}, headers=admin)
        assert returned.status_code == 200, returned.text
        seen = (await c.http.get(f"{API}/resources/{rid}", headers=dept)).json()
        assert seen["pending"]["status"] == "returned"
        assert seen["pending"]["review_comment"] == "摘要过于简单"

        # Fix and resubmit; the platform office publishes: a code is assigned and everyone sees it.
        fixed = await c.http.put(
            f"{API}/resources/{rid}/draft",
            json=resource_body(summary="户口迁入、迁出登记记录，含迁移原因、迁出地和迁入地。"),
            headers=dept,
        )
        assert fixed.status_code == 200, fixed.text
        await c.http.post(f"{API}/resources/{rid}/submit", headers=dept)
        published = await c.http.post(f"{API}/resources/{rid}/publish", headers=admin)
        assert published.status_code == 200, published.text
        v1 = published.json()
        assert v1["status"] == "published" and v1["published_version"] == 1
        assert v1["code"] == "301002/000001"  # departmental(3) + 项 01 + 目 002 / first in that class
        assert v1["published"]["publish_date"] is not None
        public_view = (await c.http.get(f"{API}/resources/{rid}", headers=reader)).json()
        assert public_view["published"]["summary"].startswith("户口迁入") and public_view["pending"] is None

        # Change: v2 is drafted and submitted while v1 stays live for everyone.
        change = resource_body(
            summary="户口迁入、迁出登记记录（含迁移原因）。",
            data_items=[
                *resource_body()["data_items"],
                {"name": "QYYY", "label": "迁移原因", "data_type": "C", "length": 100},
            ],
            change_reason="新增迁移原因信息项",
        )
        drafted = await c.http.put(f"{API}/resources/{rid}/draft", json=change, headers=dept)
        assert drafted.json()["pending"]["version"] == 2
        await c.http.post(f"{API}/resources/{rid}/submit", headers=dept)
        during = (await c.http.get(f"{API}/resources/{rid}", headers=reader)).json()
        assert during["published"]["version"] == 1
        assert during["published"]["summary"].startswith("户口迁入、迁出登记记录，含")
        listed = (await c.http.get(f"{API}/resources", params={"code": v1["code"]}, headers=reader)).json()
        assert listed["total"] == 1 and listed["items"][0]["version"] == 1

        # Publish v2: same code, new content live.
        v2 = (await c.http.post(f"{API}/resources/{rid}/publish", json={"comment": "同意"}, headers=admin)).json()
        assert v2["code"] == v1["code"] and v2["published_version"] == 2
        assert [i["name"] for i in v2["published"]["data_items"]][-1] == "QYYY"

        # Every version kept with who, when, why and a field-level diff.
        versions = (await c.http.get(f"{API}/resources/{rid}/versions", headers=reader)).json()
        assert versions["total"] == 2
        latest, first = versions["items"]
        assert (latest["version"], latest["status"], first["status"]) == (2, "published", "superseded")
        assert latest["change_reason"] == "新增迁移原因信息项"
        assert latest["submitted_by"] == f"admin-{PSB}" and latest["reviewed_by"] == "platform-office"
        assert {d["field"] for d in latest["diff"]} == {"summary", "data_items.QYYY"}
        history = (await c.http.get(f"{API}/resources/{rid}/history", headers=dept)).json()
        assert [h["action"] for h in history["items"]] == [
            "created",
            "submitted",
            "returned",
            "edited",
            "submitted",
            "published",
            "new_version",
            "submitted",
            "published",
        ]
        assert history["items"][3]["diff"][0]["field"] == "summary"

        # Withdraw needs a reason; then it leaves the catalog.
        no_reason = await c.http.post(f"{API}/resources/{rid}/withdraw", json={"reason": " "}, headers=dept)
        assert no_reason.status_code == 422
        gone = await c.http.post(f"{API}/resources/{rid}/withdraw", json={"reason": "职能划转至市级"}, headers=dept)
        assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
        listed = (await c.http.get(f"{API}/resources", headers=reader)).json()
        assert listed["total"] == 0

        # Each step's event reached the other service, in order, with the full snapshot.
        events = await c.received(count=7, types=[SUBMITTED, RETURNED, PUBLISHED, UPDATED, WITHDRAWN])
        assert [e["type"] for e in events] == [
            SUBMITTED,
            RETURNED,
            SUBMITTED,
            PUBLISHED,
            SUBMITTED,
            UPDATED,
            WITHDRAWN,
        ]
        assert all(e["subject"] == rid for e in events)
        first_publish = events[3]["data"]["published"]
        assert first_publish["code"] == v1["code"] and first_publish["share_type"] == "unconditional"
        assert [i["name"] for i in first_publish["data_items"]] == ["GMSFHM", "QCD", "QYRQ"]
        change_submitted = events[4]["data"]
        assert change_submitted["published"]["version"] == 1 and change_submitted["submitted"]["version"] == 2
        update = events[5]["data"]
        assert update["previous_version"] == 1 and update["published"]["version"] == 2
        assert {ch["field"] for ch in update["changes"]} == {"summary", "data_items.QYYY"}
        assert events[6]["data"]["reason"] == "职能划转至市级"
        assert events[6]["data"]["published"]["version"] == 2
