"""Checking one ingested row against the catalog's data items (R2.2, R2.3).

Owns: the value rules per data type of the catalog guide (C N Y D T L M G B I F), lengths, required items, the
check digits of resident ID numbers (an error) and of unified social credit codes (a warning the provider may
confirm), and a row's operation (upsert or delete by key). Values come from JSON (typed) or CSV (text); both are
normalised to the same JSON values, so a record reads the same whichever way it arrived.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from govshare_common.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

from exchange_svc.domain.resources import KEY_SEPARATOR, HostedResource, Item, record_key

OP_FIELD = "_op"
OPS = ("upsert", "delete")
_TRUE = {"true", "1", "y", "yes", "t", "是"}
_FALSE = {"false", "0", "n", "no", "f", "否"}
_ID_REASONS = {
    "length": ("长度应为 18 位", "must be 18 characters"),
    "charset": ("含有不允许的字符", "has characters that are not allowed"),
    "birth_date": ("出生日期不存在", "has an impossible birth date"),
    "check_char": ("校验码不正确", "has a wrong check character"),
    "area_code": ("登记管理机关行政区划码不正确", "has a malformed area code"),
}


@dataclass(frozen=True)
class RowProblem:
    """One problem of one row: `row` counts data rows from 1 (a CSV header is not a row)."""

    row: int
    item: str | None
    code: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "item": self.item, "code": self.code, "reason": self.zh, "reason_en": self.en}


@dataclass
class CheckedRow:
    row: int
    op: str
    key: str
    subject: str | None
    values: dict[str, Any] = field(default_factory=dict)


class BadValue(ValueError):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    d = Decimal(str(value).strip())
    if not d.is_finite():
        raise InvalidOperation
    return d


def normalise(item: Item, value: Any, *, today: date) -> tuple[Any, str | None]:
    """The stored JSON value of `value` for `item`, and a warning code (uscc_check) when the provider may confirm.

    Raises BadValue when the value cannot be accepted.
    """
    t = item.data_type
    if t in ("C", "M", "G"):
        if isinstance(value, (dict, list)):
            raise BadValue("type", "应为文本", "must be text")
        text = str(value).strip() if not isinstance(value, str) else value.strip()
        if item.length is not None and len(text) > item.length:
            raise BadValue("length", f"超过长度上限 {item.length}", f"is longer than {item.length}")
        if item.identifier_kind == "resident_id":
            try:
                return validate_resident_id(text, today=today), None
            except InvalidIdentifier as exc:
                zh, en = _ID_REASONS.get(exc.reason_code, ("格式不正确", "is malformed"))
                raise BadValue("resident_id", f"公民身份号码{zh}", f"resident ID number {en}") from None
        if item.identifier_kind == "uscc":
            try:
                result = validate_uscc(text)
            except InvalidIdentifier as exc:
                zh, en = _ID_REASONS.get(exc.reason_code, ("格式不正确", "is malformed"))
                raise BadValue("uscc", f"统一社会信用代码{zh}", f"unified social credit code {en}") from None
            return result.value, (None if result.check_ok else "uscc_check")
        return text, None
    if t in ("N", "Y"):
        try:
            d = _decimal(value)
        except (InvalidOperation, ValueError):
            raise BadValue("type", "应为数值", "must be a number") from None
        digits = len(d.as_tuple().digits)
        if item.length is not None and digits > item.length:
            raise BadValue("length", f"数值位数超过 {item.length}", f"has more than {item.length} digits")
        if t == "Y" and -d.as_tuple().exponent > 2:  # type: ignore[operator]
            raise BadValue("type", "货币金额最多两位小数", "money has at most two decimals")
        return str(d), None
    if t == "I":
        if isinstance(value, bool):
            raise BadValue("type", "应为整数", "must be an integer")
        try:
            d = _decimal(value)
            if d != d.to_integral_value():
                raise InvalidOperation
            return int(d), None
        except (InvalidOperation, ValueError):
            raise BadValue("type", "应为整数", "must be an integer") from None
    if t == "F":
        try:
            return float(_decimal(value)), None
        except (InvalidOperation, ValueError):
            raise BadValue("type", "应为数值", "must be a number") from None
    if t == "D":
        text = str(value).strip()
        try:
            parsed = date.fromisoformat(text) if "-" in text else datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            raise BadValue("type", "应为日期（YYYY-MM-DD）", "must be a date (YYYY-MM-DD)") from None
        return parsed.isoformat(), None
    if t == "T":
        try:
            return datetime.fromisoformat(str(value).strip()).isoformat(), None
        except ValueError:
            raise BadValue("type", "应为日期时间（ISO 8601）", "must be a date-time (ISO 8601)") from None
    if t == "L":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return False, None
        raise BadValue("type", "应为逻辑值（是/否）", "must be a boolean")
    if t == "B":
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise BadValue("type", "二进制内容应为 Base64 编码", "binary content must be Base64") from None
        return str(value), None
    return value, None


def check_row(
    number: int,
    raw: dict[str, Any],
    resource: HostedResource,
    *,
    full_row: bool,
    today: date,
) -> tuple[CheckedRow | None, list[RowProblem], list[RowProblem]]:
    """A row's normalised values, its problems and its warnings (see RowChecker, which a batch builds once)."""
    return RowChecker(resource, full_row=full_row, today=today).check(number, raw)


Normaliser = Callable[[Any], tuple[Any, str | None]]


def _normaliser(item: Item, today: date) -> Normaliser:
    """`normalise` for one item, with the commonest accepted value of its type taken without the general
    dispatch; anything else (and every refusal) goes through `normalise` itself, so the rules stay there."""
    t, length, kind = item.data_type, item.length, item.identifier_kind

    def general(value: Any) -> tuple[Any, str | None]:
        return normalise(item, value, today=today)

    if t in ("C", "M", "G") and kind == "none":

        def text(value: Any) -> tuple[Any, str | None]:
            if type(value) is str:
                stripped = value.strip()
                if length is None or len(stripped) <= length:
                    return stripped, None
            return general(value)

        return text
    if t in ("C", "M", "G") and kind == "resident_id" and (length is None or length >= 18):

        def resident_id(value: Any) -> tuple[Any, str | None]:
            if type(value) is str:
                try:
                    return validate_resident_id(value, today=today), None
                except InvalidIdentifier:
                    pass
            return general(value)

        return resident_id
    if t == "D":

        def day(value: Any) -> tuple[Any, str | None]:
            if type(value) is str and len(value) == 10 and value[4] == "-":
                try:
                    return date.fromisoformat(value).isoformat(), None
                except ValueError:
                    pass
            return general(value)

        return day
    return general


class RowChecker:
    """check_row for one batch: the resource's items, key and required items looked up once, not per row.

    full_row: the row comes from the resource's own provider, so its required items must be there; a
    contributing department (a declared single source for some items) sends only the key and its items.
    """

    def __init__(self, resource: HostedResource, *, full_row: bool, today: date) -> None:
        self.resource = resource
        self.full_row = full_row
        self.items = {item.name: item for item in resource.items}
        self.normalisers = {item.name: _normaliser(item, today) for item in resource.items}
        self.key_items = resource.key_items
        self.required = tuple(item for item in resource.items if item.required and item.name not in resource.key_items)
        subject_item = resource.subject_item
        self.subject_name = subject_item.name if subject_item else None

    def check(self, number: int, raw: dict[str, Any]) -> tuple[CheckedRow | None, list[RowProblem], list[RowProblem]]:
        problems: list[RowProblem] = []
        warnings: list[RowProblem] = []
        op_value = raw.get(OP_FIELD)
        op = "upsert" if op_value is None or op_value == "upsert" else str(op_value or "upsert").strip().lower()
        if op not in OPS:
            problems.append(
                RowProblem(number, OP_FIELD, "op", "操作类型只能是 upsert 或 delete", "_op must be upsert or delete")
            )
        key_items = self.key_items
        normalisers = self.normalisers
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name == OP_FIELD:
                continue
            normaliser = normalisers.get(name)
            if normaliser is None:
                problems.append(
                    RowProblem(number, name, "unknown_item", "目录中没有该信息项", "no such data item in the catalog")
                )
                continue
            if _blank(value):
                values[name] = None
                continue
            if op == "delete" and name not in key_items:
                continue
            try:
                normalised, warning = normaliser(value)
            except BadValue as exc:
                item = self.items[name]
                problems.append(RowProblem(number, name, exc.code, f"{item.label}{exc.zh}", f"{name} {exc.en}"))
                continue
            if warning:
                warnings.append(
                    RowProblem(
                        number,
                        name,
                        warning,
                        f"{self.items[name].label}校验码不符，如确认无误请带 confirm_uscc_warnings=true 重新提交",
                        f"{name} fails its check character; resend with confirm_uscc_warnings=true if it is right",
                    )
                )
            values[name] = normalised
        flagged = {p.item for p in problems} if problems else set()
        for name in key_items:
            if values.get(name) is None and name not in flagged:
                problems.append(
                    RowProblem(number, name, "key_missing", "缺少记录主键信息项", "the record key is missing")
                )
        if op == "upsert" and self.full_row:
            for item in self.required:
                if values.get(item.name) is None and item.name not in flagged:
                    problems.append(
                        RowProblem(number, item.name, "required", f"{item.label}为必填项", f"{item.name} is required")
                    )
        if problems:
            return None, problems, warnings
        subject = values.get(self.subject_name) if self.subject_name else None
        return (
            CheckedRow(number, op, record_key(values, key_items), subject, values if op == "upsert" else {}),
            problems,
            warnings,
        )


@dataclass
class Merge:
    """What one upsert does to one record."""

    data: dict[str, Any]
    changed: list[str]
    conflicts: list[tuple[str, str, Any, Any]]  # item, authoritative provider, served value, candidate value


def merge(
    existing: dict[str, Any] | None,
    incoming: dict[str, Any],
    *,
    sender: str,
    authority: dict[str, str],
    key_items: tuple[str, ...],
) -> Merge:
    """Apply a row to a record under single source (一数一源, R2.1).

    Each item has one authoritative provider (`authority`: item -> department). The authoritative provider's
    values are written; another department's value that differs from the served one is not written but opens a
    conflict for the platform office to arbitrate, and the served value stays meanwhile.
    """
    data = dict(existing or {})
    changed: list[str] = []
    conflicts: list[tuple[str, str, Any, Any]] = []
    for name, value in incoming.items():
        current = data.get(name)
        if name in key_items or authority[name] == sender:
            if existing is None or current != value:
                data[name] = value
                changed.append(name)
        elif value != current:
            conflicts.append((name, authority[name], current, value))
    return Merge(data, changed, conflicts)


def check_columns(
    numbers: list[int],
    raws: list[dict[str, Any]],
    resource: HostedResource,
    *,
    full_row: bool,
    today: date,
) -> list[CheckedRow] | None:
    """A whole batch checked column by column, in a few passes over each item's values instead of a dispatch
    per value — or None when any row needs RowChecker to say what is wrong with it (or to decide at all).

    Only what is accepted as is gets through here: every row an upsert with the same items, every value
    present and of its commonest shape (text within its length, a valid resident ID number, a YYYY-MM-DD
    date), other types through `normalise` itself without a warning, no key repeated. Anything else — a
    blank, a delete, an unknown item, a refusal, a USCC warning, a duplicate — returns None, so the rules and
    the messages stay in RowChecker and `normalise`.
    """
    if not raws:
        return None
    names = raws[0].keys()
    if OP_FIELD in names or any(r.keys() != names for r in raws):
        return None
    items = [resource.item(n) for n in names]
    if any(i is None for i in items):
        return None
    key_items = resource.key_items
    if any(k not in names for k in key_items):
        return None
    if full_row and any(i.required and i.name not in names for i in resource.items):
        return None
    columns: dict[str, list[Any]] = {}
    for name, item in zip(names, items, strict=True):
        assert item is not None
        column = _column(item, [r[name] for r in raws], today)
        if column is None:
            return None
        columns[name] = column
    if len(key_items) == 1:
        keys = [str(v) for v in columns[key_items[0]]]
    else:
        keys = [KEY_SEPARATOR.join(map(str, parts)) for parts in zip(*(columns[k] for k in key_items), strict=True)]
    if len(set(keys)) != len(keys):
        return None
    subject_item = resource.subject_item
    subjects = columns.get(subject_item.name) if subject_item else None
    ordered = tuple(names)
    values = [dict(zip(ordered, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return [
        CheckedRow(number, "upsert", key, subject, row_values)
        for number, key, subject, row_values in zip(numbers, keys, subjects or [None] * len(keys), values, strict=True)
    ]


def _column(item: Item, values: list[Any], today: date) -> list[Any] | None:
    """The normalised values of one item's column, or None when one of them is not plainly acceptable."""
    if not all(type(v) is str for v in values):
        return _general_column(item, values, today)
    stripped = [v.strip() for v in values]
    if not all(stripped):
        return None
    t, kind, length = item.data_type, item.identifier_kind, item.length
    if t in ("C", "M", "G") and kind == "none":
        return stripped if length is None or max(map(len, stripped)) <= length else None
    if t in ("C", "M", "G") and kind == "resident_id" and (length is None or length >= 18):
        try:
            return [validate_resident_id(v, today=today) for v in stripped]
        except InvalidIdentifier:
            return None
    if t == "D" and all(len(v) == 10 and v[4] == "-" for v in values):
        try:
            return [date.fromisoformat(v).isoformat() for v in values]
        except ValueError:
            return None
    return _general_column(item, values, today)


def _general_column(item: Item, values: list[Any], today: date) -> list[Any] | None:
    out = []
    for value in values:
        if _blank(value):
            return None
        try:
            normalised, warning = normalise(item, value, today=today)
        except BadValue:
            return None
        if warning:
            return None
        out.append(normalised)
    return out
