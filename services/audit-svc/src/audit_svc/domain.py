"""Supervision's rules, pure: which events are facts about a department, which are violations, how a notice
moves, and how a department's year is scored.

Owns: the fields an audit entry is indexed by (who, whose data, which resource, which grant, which people),
the evaluation indicators (R5.1, 000 Art.21, 002 Art.16–17, 003 Art.38, 004 Art.29) and the score formula,
the violations that draw a rectification notice (R5.2) and the notice's state machine, and the periods
reports cover. A notice's deadline is the profile's (`rectification_wd`). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, NamedTuple

from govshare_common.errors import AppError, Conflict, ValidationFailed, field_error
from govshare_common.profiles import Profile
from govshare_common.sharing import PLATFORM_OFFICE
from govshare_common.workdays import CHINA_TZ

# --- what an audit entry is indexed by ----------------------------------------------------------------------


class EntryIndex(NamedTuple):  # a tuple: one is made for every entry appended
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
    "major_decision_cited",
    "major_decision_answered",
    "repeated_collection",
    "project_catalog_missing",
    "open_data_demand_overdue",
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
    # Beijing 004 Art.19: the consumer cited the source and asked; the provider answered.
    "major_decision.requested": ("major_decision_cited", "consumer_code"),
    "major_decision.consented": ("major_decision_answered", "provider_code"),
    "major_decision.refused": ("major_decision_answered", "provider_code"),
    # Found by catalog-svc itself (000 Art.15, 003 Art.14, 39): data collected again; a project's catalog
    # missing at acceptance.
    "catalog.collection.repeated": ("repeated_collection", "provider_code"),
    "catalog.project.catalog_missing": ("project_catalog_missing", "department_code"),
    # A public demand for open data not answered in time (004 Art.20), against whoever owed the answer.
    "open_data_demand.overdue": ("open_data_demand_overdue", "department_code"),
}


def fact_department(type_: str, data: dict[str, Any]) -> str | None:
    """The department a fact counts for or against. A request's lateness is charged to whoever owed the
    answer: the provider while it reviews or negotiates, the platform office at a coordination step."""
    if type_ == "request.overdue" and data.get("awaiting") == "platform_office":
        return PLATFORM_OFFICE
    return _str(data.get(FACT_OF_EVENT[type_][1]))


def fact_reference(type_: str, data: dict[str, Any], subject: str) -> str:
    """What the fact is about (one request, dispute, obligation, or a resource's missed cycle)."""
    for key in (
        "request_id",
        "dispute_id",
        "obligation_id",
        "decision_id",
        "grant_id",
        "project_id",
        "demand_id",
        "resource_id",
    ):
        if data.get(key):
            return str(data[key])
    if type_ == "exchange.resource.stale":
        return f"{data.get('resource_code')}@{data.get('due_at')}"
    return subject


# --- violations and rectification notices -----------------------------------------------------------------

Violation = Literal[
    "catalog_overdue",
    "data_stale",
    "request_overdue",
    "dispute_overdue",
    "use_beyond_purpose",
    "report_missing",
    "legacy_not_connected",
    "repeated_collection",
    "project_catalog_missing",
    "open_data_demand_overdue",
]

VIOLATION_LABELS: dict[str, tuple[str, str]] = {
    "catalog_overdue": ("未按时编制或更新政务信息资源目录", "catalog not compiled or updated on time"),
    "data_stale": ("未按更新周期提供共享数据", "shared data not provided on its update cycle"),
    "request_overdue": ("未按时办理共享申请", "share request not answered on time"),
    "dispute_overdue": ("未按时核实处理数据疑义", "data dispute not answered on time"),
    "use_beyond_purpose": ("超出授权用途使用共享数据", "shared data used beyond its stated purpose"),
    "report_missing": ("未按时报送年度报告或月度进展", "yearly report or monthly progress not submitted on time"),
    "legacy_not_connected": (
        "原有信息系统未按期接入共享交换平台",
        "a legacy system not connected to the platform by the deadline",
    ),
    "repeated_collection": ("重复采集可通过共享获取的数据", "data collected again that sharing provides"),
    "project_catalog_missing": (
        "信息化项目验收时未在平台登记发布项目信息资源目录",
        "an IT project's resource catalog not on the platform at acceptance",
    ),
    "open_data_demand_overdue": ("未按时答复社会公众的数据开放需求", "a public open-data demand not answered on time"),
}

VIOLATION_OF_FACT: dict[str, Violation] = {
    "catalog_overdue": "catalog_overdue",
    "data_stale": "data_stale",
    "request_overdue": "request_overdue",
    "dispute_overdue": "dispute_overdue",
    "repeated_collection": "repeated_collection",
    "project_catalog_missing": "project_catalog_missing",
    "open_data_demand_overdue": "open_data_demand_overdue",
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
        ("period", "报告期"),
        ("system", "信息系统"),
        ("connect_by", "接入期限"),
        ("base_resource_code", "基础信息资源"),
        ("duplicated_items", "重复采集的信息项"),
        ("project_name", "信息化项目"),
        ("unpublished", "未发布的项目信息资源"),
        ("demand_id", "开放需求"),
    ):
        value = data.get(key)
        if isinstance(value, list):
            value = "、".join(str(v) for v in value)
        if value not in (None, ""):
            parts.append(f"{label}：{value}")
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
    major_decisions_cited: int = 0
    major_decisions_answered: int = 0
    repeated_collections: int = 0
    project_catalogs_missing: int = 0
    open_data_demands_overdue: int = 0


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


# --- accountable people (000 Art.24, 001 Art.31) ----------------------------------------------------------

PersonRole = Literal["head_of_department", "chief_data_officer", "resource_administrator"]
PERSON_ROLES: dict[str, str] = {
    "head_of_department": "主要负责人",
    "chief_data_officer": "首席数据官",
    "resource_administrator": "信息资源管理员",
}


def required_people(profile: Profile) -> tuple[str, ...]:
    """Who a department must have on file: the first accountable (the head, or Zhonglou's chief data officer)
    and, where the profile says (Feicheng Art.31), the resource administrator, filed with the platform office."""
    roles: list[str] = [profile.accountable_role]
    if profile.resource_administrator_on_file:
        roles.append("resource_administrator")
    return tuple(roles)


def missing_people(profile: Profile, on_file: set[str]) -> list[str]:
    return [r for r in required_people(profile) if r not in on_file]


# --- department reports (002 Art.17, plan III.5; 004 Art.29) ---------------------------------------------

ReportKind = Literal["yearly", "monthly"]
REPORT_LABELS = {"yearly": "年度报告", "monthly": "月度进展"}


def report_due(profile: Profile, kind: str, year: int, month: int | None) -> date:
    """The day a report is due, or a 409 when the profile asks for no such report."""
    if kind == "yearly":
        if profile.yearly_report_due is None:
            raise Conflict(
                "本辖区规定未要求部门通过平台报送年度报告。",
                "This jurisdiction's rules ask for no yearly report from departments.",
                code="report_not_in_profile",
                details={"kind": kind},
            )
        due = profile.yearly_report_due
        return date(year, due.month, min(due.day, _last_day(year, due.month)))
    if not profile.monthly_progress:
        raise Conflict(
            "本辖区规定未要求部门按月报送工作进展。",
            "This jurisdiction's rules ask for no monthly progress from departments.",
            code="report_not_in_profile",
            details={"kind": kind},
        )
    if month is None:
        raise ValidationFailed(
            "月度进展须注明月份。",
            "A monthly progress report names its month.",
            details={"fields": [field_error("month", "请填写月份。", "Give the month.", code="required")]},
        )
    return date(year, month, _last_day(year, month))  # "每月月底前"


def _last_day(year: int, month: int) -> int:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return (nxt - date(year, month, 1)).days


def periods_past_due(profile: Profile, today: date) -> list[tuple[str, int, int | None, date]]:
    """The latest yearly and monthly periods whose due date has passed by `today` (what the job checks)."""
    found: list[tuple[str, int, int | None, date]] = []
    if profile.yearly_report_due is not None:
        for year in (today.year, today.year - 1):
            due = report_due(profile, "yearly", year, None)
            if due < today:
                found.append(("yearly", year, None, due))
                break
    if profile.monthly_progress:
        first = date(today.year, today.month, 1)
        last_month = date(first.year - 1, 12, 1) if first.month == 1 else date(first.year, first.month - 1, 1)
        found.append(("monthly", last_month.year, last_month.month, report_due(profile, "monthly", *_ym(last_month))))
    return found


def _ym(day: date) -> tuple[int, int]:
    return day.year, day.month


def period_label(kind: str, year: int, month: int | None) -> str:
    return f"{year}年{month}月" if kind == "monthly" and month else f"{year}年度"


# --- the systems register and Xiangyang's metrics (000 Art.11; 002 plan III.5) ----------------------------

SystemStatus = Literal["planned", "integrated", "connected", "retired"]
SYSTEM_STATUS_LABELS = {"planned": "待整合", "integrated": "已整合", "connected": "已接入平台", "retired": "已下线"}


def legacy_overdue(profile: Profile, *, legacy: bool, status: str, today: date) -> bool:
    """A legacy system still not connected after the profile's deadline (Zhonglou Art.11: by 2023-09-30)."""
    deadline = profile.legacy_systems_connect_by
    return deadline is not None and legacy and status in ("planned", "integrated") and today > deadline
