"""Supervision: a violation seen in an event opens a rectification notice with a working-day deadline, the
department answers, the platform office closes it; the evaluation and the yearly report show the cost."""

from __future__ import annotations

import io
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.identifiers import uscc_check_char

sys.path.insert(0, str(Path(__file__).parent))

from contracts import RequestEvent, RequestOverdue


def uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


LATE = uscc("11320404MB1234501")  # a provider that lets a request go overdue
PROMPT = uscc("11320404MB1234503")  # a provider that answers on time
CONSUMER = uscc("11320404MB1234502")


def request_event(request_id: str, provider: str, state: str) -> RequestEvent:
    return RequestEvent(
        request_id=request_id,
        consumer_code=CONSUMER,
        provider_code=provider,
        resource_code="101001/000001",
        state=state,
        due_date=date(2025, 9, 25),
        actor="someone",
    )


async def department_row(a, year: int, department: str) -> dict:
    r = await a.http.get("/api/v1/supervision/reports/yearly", params={"year": year}, headers=a.platform_admin())
    assert r.status_code == 200, r.text
    return next(d for d in r.json()["departments"] if d["department_code"] == department)


async def test_overdue_request_opens_a_notice_due_in_ten_working_days_across_national_day_and_costs_score(
    audit,
) -> None:
    # Friday 26 September 2025, 10:00 in China. 10 working days later, counting the make-up working days of
    # Sun 28 Sep and Sat 11 Oct and skipping the National Day break (1–8 Oct), is Thursday 16 October.
    clock = FrozenClock(datetime(2025, 9, 26, 2, 0, tzinfo=UTC))
    async with audit(clock=clock, peers=("request",)) as a:
        await a.emit(
            "request",
            [
                ("request.submitted", "r-late", request_event("r-late", LATE, "submitted")),
                ("request.submitted", "r-prompt", request_event("r-prompt", PROMPT, "submitted")),
                ("request.approved", "r-prompt", request_event("r-prompt", PROMPT, "approved")),
                (
                    "request.overdue",
                    "r-late",
                    RequestOverdue(**request_event("r-late", LATE, "submitted").model_dump(), days_late=1),
                ),
            ],
        )
        await a.settle("request")

        r = await a.http.get("/api/v1/supervision/notices", headers=a.platform_admin())
        assert r.status_code == 200, r.text
        listed = r.json()
        assert listed["total"] == 1 and set(listed) >= {"items", "total", "limit", "offset"}
        notice = listed["items"][0]
        assert notice["department_code"] == LATE and notice["violation"] == "request_overdue"
        assert notice["opened_on"] == "2025-09-26" and notice["working_days"] == 10
        assert notice["due_on"] == "2025-10-16"
        assert notice["status"] == "open" and "r-late" in notice["description"]

        # departments see their own notices only
        other = await a.http.get(
            "/api/v1/supervision/notices", params={"department": LATE}, headers=a.dept_admin(PROMPT)
        )
        assert other.status_code == 403 and set(other.json()) == {"code", "message", "details", "trace_id"}
        own = (await a.http.get("/api/v1/supervision/notices", headers=a.dept_admin(PROMPT))).json()
        assert own["total"] == 0
        assert (await a.http.get("/api/v1/supervision/notices", headers=a.dept_admin(LATE))).json()["total"] == 1

        late, prompt = await department_row(a, 2025, LATE), await department_row(a, 2025, PROMPT)
        assert late["score"] < prompt["score"] == 100
        assert late["indicators"]["requests_overdue"] == 1 and late["indicators"]["notices_unresolved"] == 1
        assert prompt["indicators"]["requests_answered_on_time"] == 1
        lines = {line["indicator"]: line for line in late["deductions"]}
        assert lines["requests_overdue"]["count"] == 1 and lines["notices_unresolved"]["count"] == 1
        assert late["score"] == 100 - sum(line["deducted"] for line in late["deductions"])
        assert "得分 = 100" in late["formula"]

        # the wrong department cannot answer; the right one answers, the platform office closes
        notice_url = f"/api/v1/supervision/notices/{notice['id']}"
        wrong = await a.http.post(f"{notice_url}/answer", json={"answer": "已整改"}, headers=a.dept_admin(PROMPT))
        assert wrong.status_code == 403
        early_close = await a.http.post(f"{notice_url}/escalate", json={"note": "x"}, headers=a.dept_admin(LATE))
        assert early_close.status_code == 403
        clock.set(datetime(2025, 10, 9, 2, 0, tzinfo=UTC))
        r = await a.http.post(
            f"{notice_url}/answer",
            json={"answer": "已建立申请办理提醒机制，逾期申请已办结。"},
            headers=a.dept_admin(LATE),
        )
        assert r.status_code == 200 and r.json()["status"] == "answered"
        again = await a.http.post(f"{notice_url}/answer", json={"answer": "再次反馈"}, headers=a.dept_admin(LATE))
        assert again.status_code == 409
        r = await a.http.post(f"{notice_url}/close", json={"note": "整改到位，予以办结。"}, headers=a.platform_admin())
        assert r.status_code == 200 and r.json()["status"] == "closed"
        async with a.app.state.db.engine.connect() as conn:
            emitted = [
                row.type
                for row in await conn.execute(
                    text("SELECT type FROM outbox WHERE type LIKE 'audit.notice.%' ORDER BY id")
                )
            ]
        assert emitted == ["audit.notice.opened", "audit.notice.answered", "audit.notice.closed"]

        closed = await department_row(a, 2025, LATE)
        assert closed["indicators"]["notices_unresolved"] == 0
        assert late["score"] < closed["score"] < 100

        # the same report as a spreadsheet: the formula sheet and the numbers behind the score
        r = await a.http.get("/api/v1/supervision/reports/yearly.xlsx", params={"year": 2025}, headers=a.auditor())
        assert r.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        rows = list(book["评估结果"].iter_rows(values_only=True))
        header = rows[1]
        late_row = next(row for row in rows if row[0] == LATE)
        assert late_row[header.index("逾期申请")] == 1 and late_row[header.index("得分")] == closed["score"]
        assert "得分 = 100" in book["评分公式"]["A1"].value

        # a department's own evaluation only
        mine = await a.http.get("/api/v1/supervision/evaluation", params={"year": 2025}, headers=a.dept_admin(LATE))
        assert [d["department_code"] for d in mine.json()["departments"]] == [LATE]
        bad = await a.http.get(
            "/api/v1/supervision/evaluation", params={"year": 2025, "month": 13}, headers=a.auditor()
        )
        assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"


async def test_a_provider_reports_use_beyond_purpose_and_the_consumer_gets_a_notice(audit) -> None:
    clock = FrozenClock(datetime(2025, 3, 3, 2, 0, tzinfo=UTC))
    async with audit(clock=clock, peers=()) as a:
        body = {
            "department_code": CONSUMER,
            "resource_code": "101001/000001",
            "grant_id": "g-1",
            "description": "将人口信息用于授权用途以外的招商宣传。",
        }
        r = await a.http.post("/api/v1/supervision/violations", json=body, headers=a.dept_admin(LATE))
        assert r.status_code == 201, r.text
        assert r.json()["department_code"] == CONSUMER and r.json()["violation"] == "use_beyond_purpose"
        assert r.json()["reported_by"] == LATE
        bad = await a.http.post(
            "/api/v1/supervision/violations", json={**body, "department_code": "not-a-code"}, headers=a.dept_admin(LATE)
        )
        assert bad.status_code == 422
        before = await a.scalar("SELECT count(*) FROM notice")
        forbidden = await a.http.post("/api/v1/supervision/violations", json=body, headers=a.auditor())
        assert forbidden.status_code == 403 and await a.scalar("SELECT count(*) FROM notice") == before
        row = await department_row(a, 2025, CONSUMER)
        assert row["indicators"]["use_beyond_purpose"] == 1 and row["score"] == 100 - 10 - 2


async def test_statistics_and_written_complaints_under_the_hainan_profile(audit) -> None:
    from contracts import ExchangeAccess

    clock = FrozenClock(datetime(2025, 4, 28, 2, 0, tzinfo=UTC))
    async with audit(clock=clock, profile="hainan") as a:
        accesses = [
            ExchangeAccess(
                access_id=f"a-{i}",
                kind=("query", "export", "feed")[i % 3],
                department_code=CONSUMER if i % 4 else PROMPT,
                principal="client-1",
                grant_id="g-1",
                resource_code=f"101001/00000{i % 2}",
                purpose="work_reference",
                rows=2,
                subjects_hashed=[],
                at=datetime(2025, 4, 27 + i % 2, 2, tzinfo=UTC),
            )
            for i in range(12)
        ]
        await a.emit("exchange", [("exchange.access", x.access_id, x) for x in accesses])
        await a.emit("request", [("request.submitted", "r-1", request_event("r-1", LATE, "submitted"))])
        await a.settle("exchange", "request")
        r = await a.http.get(
            "/api/v1/supervision/statistics", params={"since": "2025-04-01", "until": "2025-04-30"}, headers=a.auditor()
        )
        assert r.status_code == 200, r.text
        stats = r.json()
        assert [(d["day"], d["total"]) for d in stats["exchanges_per_day"]] == [("2025-04-27", 6), ("2025-04-28", 6)]
        assert stats["requests_by_state"] == {"submitted": 1}
        assert stats["top_departments"][0] == {"department": CONSUMER, "uses": 9}
        mine = (await a.http.get("/api/v1/supervision/statistics", headers=a.dept_admin(PROMPT))).json()
        assert sum(d["total"] for d in mine["exchanges_per_day"]) == 3 and mine["top_departments"] == []

        # Hainan Art.41: a written complaint, registered, then answered in writing
        body = {
            "complainant_name": "王小明",
            "complainant_contact": "13800138000",
            "department_code": LATE,
            "subject": "申请长期未答复",
            "content": "本人于三月提交的共享申请至今未获答复。",
            "received_on": "2025-04-28",
            "channel": "letter",
        }
        r = await a.http.post("/api/v1/supervision/complaints", json=body, headers=a.platform_admin())
        assert r.status_code == 201, r.text
        complaint = r.json()
        assert complaint["status"] == "registered" and complaint["due_on"] > "2025-04-28"
        seen_by_department = (
            await a.http.get(f"/api/v1/supervision/complaints/{complaint['id']}", headers=a.dept_admin(LATE))
        ).json()
        assert (
            seen_by_department["complainant_name"] == "王**" and "0013" not in seen_by_department["complainant_contact"]
        )
        hidden = await a.http.get(f"/api/v1/supervision/complaints/{complaint['id']}", headers=a.dept_admin(PROMPT))
        assert hidden.status_code == 404
        r = await a.http.post(
            f"/api/v1/supervision/complaints/{complaint['id']}/answer",
            json={"answer": "经核查，已督促该部门于五个工作日内答复。"},
            headers=a.platform_admin(),
        )
        assert r.status_code == 200 and r.json()["status"] == "answered"
        listed = (await a.http.get("/api/v1/supervision/complaints", headers=a.auditor())).json()
        assert listed["total"] == 1 and listed["items"][0]["answer"].startswith("经核查")


async def test_complaints_are_not_offered_where_the_profile_has_none(audit) -> None:
    async with audit(peers=()) as a:
        r = await a.http.get("/api/v1/supervision/complaints", headers=a.platform_admin())
        assert r.status_code == 404 and r.json()["code"] == "complaints_disabled"
