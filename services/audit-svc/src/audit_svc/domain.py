"""Supervision's rules, pure: which events are facts about a department, which are violations, how a notice
moves, and how a department's year is scored.

Owns: the fields an audit entry is indexed by (who, whose data, which resource, which grant, which people),
the evaluation indicators (R5.1, 000 Art.21, 002 Art.16–17, 003 Art.38, 004 Art.29) and the score formula,
the violations that draw a rectification notice (R5.2) and the notice's state machine, the default notice
deadline, and the periods reports cover. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from govshare_common.errors import AppError, Conflict, ValidationFailed, field_error
from govshare_common.sharing import PLATFORM_OFFICE
from govshare_common.workdays import CHINA_TZ

# 000 Art.25, 002 Art.23, 003 Art.39, 004 Art.33 ask for "限期整改" without a number; 10 working days is the
# platform's default, long enough for a department to act and answer in writing.
NOTICE_DEADLINE_WD = 10

# --- what an audit entry is indexed by ----------------------------------------------------------------------


@dataclass(frozen=True)
class EntryIndex:
    department: str | None  # the department that acted or used (consumer)
    provider: str | None  # the department whose data it concerns
    resource: str | None
    grant_id: str | None
    actor: str | None
    subjects: tuple[str, ...]  # hashed identifiers of the people / companies whose records were touched


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def index_fields(type_: str, data: dict[str, Any]) -> EntryIndex:
    """The columns an entry is found by; taken from the payloads fixed in docs/event-contracts.md."""
    published = data.get("published") if isinstance(data.get("published"), dict) else {}
    resource = _str(
        data.get("resource_code") or data.get("resource") or data.get("code") or (published or {}).get("code")
    )
    if type_ == "gateway.access":
        department = _str(data.get("department"))
        actor = _str(data.get("principal"))
    else:
        department = _str(data.get("department_code") or data.get("consumer_code") or data.get("department"))
        actor = _str(data.get("principal") or data.get("actor") or data.get("revoked_by"))
    subjects = data.get("subjects_hashed") or ([data["subject_hashed"]] if data.get("subject_hashed") else [])
    return EntryIndex(
        department=department,
        provider=_str(data.get("provider_code")),
        resource=resource,
        grant_id=_str(data.get("grant_id")),
        actor=actor,
        subjects=tuple(str(s) for s in subjects if s),
    )


# --- facts the evaluation counts ------------------------------------------------------------------------

FactKind = Literal[
    "resource_published",
    "resource_updated",
    "catalog_overdue",
    "data_stale",
    "request_received",
    "request_answered",
    "request_overdue",
    "dispute_received",
    "dispute_answered",
    "dispute_overdue",
    "grant_issued",
]

# event type -> (fact kind, which payload field names the department the fact is about)
FACT_OF_EVENT: dict[str, tuple[FactKind, str]] = {
    "catalog.resource.published": ("resource_published", "provider_code"),
    "catalog.resource.updated": ("resource_updated", "provider_code"),
    "catalog.obligation.overdue": ("catalog_overdue", "department_code"),
    "exchange.resource.stale": ("data_stale", "provider_code"),
    "request.submitted": ("request_received", "provider_code"),
    "request.approved": ("request_answered", "provider_code"),
    "request.rejected": ("request_answered", "provider_code"),
    "request.overdue": ("request_overdue", "provider_code"),
    "exchange.dispute.opened": ("dispute_received", "provider_code"),
    "exchange.dispute.answered": ("dispute_answered", "provider_code"),
    "exchange.dispute.corrected": ("dispute_answered", "provider_code"),
    "exchange.dispute.overdue": ("dispute_overdue", "provider_code"),
    "grant.issued": ("grant_issued", "provider_code"),
}


def fact_department(type_: str, data: dict[str, Any]) -> str | None:
    """The department a fact counts for or against. A request's lateness is charged to whoever owed the
    answer: the provider while it reviews or negotiates, the platform office at a coordination step."""
    if type_ == "request.overdue" and data.get("awaiting") == "platform_office":
        return PLATFORM_OFFICE
    return _str(data.get(FACT_OF_EVENT[type_][1]))


def fact_reference(type_: str, data: dict[str, Any], subject: str) -> str:
    """What the fact is about (one request, dispute, obligation, or a resource's missed cycle)."""
    for key in ("request_id", "dispute_id", "obligation_id", "grant_id", "resource_id"):
        if data.get(key):
            return str(data[key])
    if type_ == "exchange.resource.stale":
        return f"{data.get('resource_code')}@{data.get('due_at')}"
    return subject


# --- violations and rectification notices -----------------------------------------------------------------

Violation = Literal["catalog_overdue", "data_stale", "request_overdue", "dispute_overdue", "use_beyond_purpose"]

VIOLATION_LABELS: dict[str, tuple[str, str]] = {
    "catalog_overdue": ("未按时编制或更新政务信息资源目录", "catalog not compiled or updated on time"),
    "data_stale": ("未按更新周期提供共享数据", "shared data not provided on its update cycle"),
    "request_overdue": ("未按时办理共享申请", "share request not answered on time"),
    "dispute_overdue": ("未按时核实处理数据疑义", "data dispute not answered on time"),
    "use_beyond_purpose": ("超出授权用途使用共享数据", "shared data used beyond its stated purpose"),
}

VIOLATION_OF_FACT: dict[str, Violation] = {
    "catalog_overdue": "catalog_overdue",
    "data_stale": "data_stale",
    "request_overdue": "request_overdue",
    "dispute_overdue": "dispute_overdue",
}

NoticeStatus = Literal["open", "answered", "closed", "escalated"]
NOTICE_STATUS_LABELS = {"open": "待整改", "answered": "已反馈", "closed": "已办结", "escalated": "已升级督办"}

# action -> statuses it may start from, and where it leads
NOTICE_TRANSITIONS: dict[str, tuple[frozenset[str], NoticeStatus]] = {
    "answer": (frozenset({"open", "escalated"}), "answered"),
    "close": (frozenset({"answered", "open", "escalated"}), "closed"),
    "escalate": (frozenset({"open", "answered"}), "escalated"),
}


def next_notice_status(current: str, action: str) -> NoticeStatus:
    allowed, target = NOTICE_TRANSITIONS[action]
    if current not in allowed:
        raise Conflict(
            f"整改通知当前状态为“{NOTICE_STATUS_LABELS.get(current, current)}”，不能执行此操作。",
            f"The notice is {current}; it cannot be {action}ed now.",
            code="notice_state",
            details={"status": current, "action": action},
        )
    return target


def describe_violation(violation: str, data: dict[str, Any]) -> str:
    zh, _ = VIOLATION_LABELS[violation]
    parts = [zh]
    for key, label in (
        ("resource_code", "信息资源"),
        ("request_id", "申请"),
        ("dispute_id", "疑义"),
        ("obligation_id", "目录更新义务"),
        ("days_late", "逾期天数"),
        ("due_date", "期限"),
        ("due_at", "应更新时间"),
        ("due_on", "期限"),
    ):
        if data.get(key) not in (None, ""):
            parts.append(f"{label}：{data[key]}")
    return "；".join(parts)


# --- evaluation -----------------------------------------------------------------------------------------

# Points taken from 100 per item in the period; the report prints this table with the numbers behind it.
DEDUCTIONS: dict[str, tuple[int, str]] = {
    "catalog_overdue": (5, "目录未按时更新（次）"),
    "data_stale": (3, "数据未按更新周期提供（次）"),
    "requests_overdue": (5, "共享申请逾期未办理（件）"),
    "disputes_overdue": (3, "数据疑义逾期未处理（件）"),
    "use_beyond_purpose": (10, "超出用途使用数据（次）"),
    "notices_unresolved": (2, "整改通知未办结（件）"),
}
FORMULA = "得分 = 100 − " + " − ".join(f"{p}×{label}" for p, label in DEDUCTIONS.values()) + "，最低 0 分"
FORMULA_EN = (
    "score = 100 − 5×catalog updates overdue − 3×update cycles missed − 5×share requests overdue − "
    "3×disputes overdue − 10×uses beyond purpose − 2×notices not closed, at least 0"
)


@dataclass(frozen=True)
class Indicators:
    resources_published: int = 0
    resources_updated: int = 0
    catalog_overdue: int = 0
    data_stale: int = 0
    requests_received: int = 0
    requests_answered: int = 0
    requests_answered_on_time: int = 0
    requests_overdue: int = 0
    disputes_received: int = 0
    disputes_answered: int = 0
    disputes_overdue: int = 0
    grants_issued: int = 0
    queries: int = 0
    exports: int = 0
    subscriptions: int = 0
    use_beyond_purpose: int = 0
    notices_opened: int = 0
    notices_unresolved: int = 0


def score(ind: Indicators) -> dict[str, Any]:
    """The score and each deduction that makes it up."""
    lines = []
    total = 0
    for name, (points, label) in DEDUCTIONS.items():
        count = int(getattr(ind, name))
        lines.append(
            {"indicator": name, "label": label, "count": count, "points_each": points, "deducted": points * count}
        )
        total += points * count
    return {"score": max(0, 100 - total), "deductions": lines, "formula": FORMULA, "formula_en": FORMULA_EN}


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- periods --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A year or a month, as China dates and as UTC instants [start, end)."""

    year: int
    month: int | None = None

    @property
    def first_day(self) -> date:
        return date(self.year, self.month or 1, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        if self.month is None or self.month == 12:
            return date(self.year + 1, 1, 1)
        return date(self.year, self.month + 1, 1)

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月" if self.month else f"{self.year}年度"

    def instants(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.first_day, time(), CHINA_TZ).astimezone(UTC)
        end = datetime.combine(self.end_day, time(), CHINA_TZ).astimezone(UTC)
        return start, end


def period(year: int, month: int | None = None) -> Period:
    problems = []
    if not 2000 <= year <= 2100:
        problems.append(field_error("year", "年份应在 2000–2100 之间。", "year must be between 2000 and 2100."))
    if month is not None and not 1 <= month <= 12:
        problems.append(field_error("month", "月份应在 1–12 之间。", "month must be between 1 and 12."))
    if problems:
        raise ValidationFailed("统计期间不正确。", "The period is not valid.", details={"fields": problems})
    return Period(year, month)


def require(condition: bool, error: AppError) -> None:
    if not condition:
        raise error
