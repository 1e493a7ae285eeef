"""Catalogs as .xlsx, in the layout departments compile them by the guide: one row per data item.

Owns: the sheet's Chinese columns, reading a department's upload into resources (every problem reported with
sheet, row and column, in one answer) and writing a catalog back out in the same layout. The resource's own
cells (name, summary, share type …) are on each of its rows, or only on its first row when the cells below
are merged or left blank; a row whose resource name differs from the row above starts the next resource.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from catalog_svc import domain
from catalog_svc.domain import FieldProblem, ResourceContent

SHEET_NAME = "信息资源目录"
CODES_SHEET = "代码表"
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    level: Literal["resource", "item", "info"]
    kind: Literal["text", "code2", "code3", "digits", "enum", "bool", "int", "list", "date", "serial"] = "text"
    vocab: dict[str, str] | None = None
    width: int = 14


COLUMNS: tuple[Column, ...] = (
    Column("序号", "serial", "info", "serial", width=6),
    Column("信息资源代码", "code", "resource", width=16),
    Column("类", "resource_class", "resource", "enum", domain.RESOURCE_CLASSES, width=14),
    Column("项编码", "category_code", "resource", "code2", width=8),
    Column("项名称", "category_name", "resource", width=12),
    Column("目编码", "subcategory_code", "resource", "code3", width=8),
    Column("目名称", "subcategory_name", "resource", width=14),
    Column("细目编码", "detail_code", "resource", "digits", width=8),
    Column("细目名称", "detail_name", "resource", width=12),
    Column("信息资源名称", "name", "resource", width=24),
    Column("信息资源摘要", "summary", "resource", width=40),
    Column("信息资源提供方", "provider_name", "resource", width=16),
    Column("提供方代码", "provider_code", "resource", width=20),
    Column("信息资源格式分类", "format_category", "resource", "enum", domain.FORMAT_CATEGORIES),
    Column("信息资源格式类型", "format_detail", "resource", width=12),
    Column("信息项名称", "label", "item", width=16),
    Column("字段名", "name", "item", width=14),
    Column("数据类型", "data_type", "item", "enum", domain.DATA_TYPES, width=10),
    Column("数据长度", "length", "item", "int", width=8),
    Column("是否必填", "required", "item", "bool", width=8),
    Column("标识类型", "identifier_kind", "item", "enum", domain.IDENTIFIER_KINDS),
    Column("敏感级别", "sensitivity", "item", "enum", domain.SENSITIVITIES, width=10),
    Column("脱敏规则", "masking_rule", "item", "enum", domain.MASKING_RULES, width=12),
    Column("共享类型", "share_type", "resource", "enum", domain.SHARE_TYPES, width=12),
    Column("共享条件", "share_conditions", "resource", width=30),
    Column("法律法规或政策依据", "legal_basis", "resource", width=30),
    Column("共享方式分类", "share_method_class", "resource", "enum", domain.SHARE_METHOD_CLASSES),
    Column("共享方式类型", "share_method_type", "resource", "enum", domain.SHARE_METHOD_TYPES),
    Column("使用要求", "usage_requirements", "resource", width=24),
    Column("是否向社会开放", "open_to_public", "resource", "bool", width=10),
    Column("开放条件", "open_conditions", "resource", width=20),
    Column("不开放理由", "not_open_reason", "resource", "enum", domain.NOT_OPEN_REASONS, width=14),
    Column("更新周期", "update_cycle", "resource", "enum", domain.UPDATE_CYCLES, width=10),
    Column("发布日期", "publish_date", "info", "date", width=12),
    Column("关联资源代码", "related_codes", "resource", "list", width=24),
    Column("是否涉密", "classified", "resource", "bool", width=8),
    Column("已经保密审查", "secrecy_reviewed", "resource", "bool", width=10),
    Column("是否跨层级共享", "cross_level", "resource", "bool", width=12),
)
HEADERS = {c.header: c for c in COLUMNS}
RESOURCE_COLUMNS = [c for c in COLUMNS if c.level == "resource"]
ITEM_COLUMNS = [c for c in COLUMNS if c.level == "item"]
# Optional on upload: the platform assigns codes and dates; a blank provider code means the uploader's.
OPTIONAL_HEADERS = {
    "序号",
    "信息资源代码",
    "发布日期",
    "细目编码",
    "细目名称",
    "提供方代码",
    "是否涉密",
    "已经保密审查",
    "使用要求",
    "不开放理由",
    "是否跨层级共享",
}
_BY_FIELD = {("resource", c.field): c for c in RESOURCE_COLUMNS} | {("item", c.field): c for c in ITEM_COLUMNS}
_LIST_SPLIT = re.compile(r"[,，;；、\s]+")
_TRUE = {"是", "y", "yes", "true", "1", "√"}
_FALSE = {"否", "n", "no", "false", "0", "×"}


@dataclass(frozen=True)
class SheetError:
    sheet: str
    row: int
    column: str  # the column letter, as Excel shows it
    header: str
    field: str
    code: str
    message: str
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }


class ImportRefused(domain.DomainError):
    kind = "invalid"
    code = "import_invalid"

    def __init__(self, errors: list[SheetError]) -> None:
        errors = sorted(errors, key=lambda e: (e.row, _column_number(e.column)))
        super().__init__(
            f"表格有 {len(errors)} 处错误，未导入任何信息资源；请按 details.errors 逐项修改后重新上传。",
            f"The sheet has {len(errors)} errors; nothing was imported. Fix every one listed in details.errors.",
            errors=[e.as_dict() for e in errors],
        )
        self.errors = errors


@dataclass
class SheetResource:
    """One resource read from the sheet, with the rows it came from (for placing errors)."""

    first_row: int
    item_rows: list[int] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    code: str | None = None
    content: ResourceContent | None = None


@dataclass
class ParsedSheet:
    sheet: str
    letters: dict[str, str]  # header -> column letter
    resources: list[SheetResource]
    errors: list[SheetError]

    def locate(self, resource: SheetResource, path: str, code: str, zh: str, en: str) -> SheetError:
        """Place a problem found on a resource (dotted field path) in its row and column."""
        parts = path.split(".")
        row, column = resource.first_row, None
        if parts[0] == "data_items":
            if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(resource.item_rows):
                row = resource.item_rows[int(parts[1])]
            item_field = parts[2] if len(parts) > 2 else "label"
            column = _BY_FIELD.get(("item", item_field), HEADERS["信息项名称"])
        else:
            column = _BY_FIELD.get(("resource", parts[0]))
        if column is None:
            column = HEADERS["信息资源名称"]
        return self._error(row, column, path, code, zh, en)

    def _error(self, row: int, column: Column, path: str, code: str, zh: str, en: str) -> SheetError:
        return SheetError(self.sheet, row, self.letters.get(column.header, "?"), column.header, path, code, zh, en)


def _column_number(letter: str) -> int:
    n = 0
    for ch in letter:
        if "A" <= ch <= "Z":
            n = n * 26 + ord(ch) - 64
    return n


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _enum(value: str, vocab: dict[str, str]) -> str | None:
    v = value.replace(" ", "").replace("（", "(").replace("）", ")")
    if v in vocab:
        return v
    if v.upper() in vocab:
        return v.upper()
    for key, label in vocab.items():
        names = {label, *label.split("/")}
        if v in names or v == f"{key}{label}" or v == f"{label}({key})" or v == f"{key}({label})":
            return key
    prefixed = [k for k, label in vocab.items() if any(n.startswith(v) for n in (label, *label.split("/")))]
    return prefixed[0] if len(prefixed) == 1 else None


class _CellError(Exception):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def _convert(column: Column, raw: Any) -> Any:
    """A cell's value as the content model wants it; None for a blank cell."""
    value = _text(raw)
    if value == "" and not isinstance(raw, bool):
        return None
    kind = column.kind
    if kind == "text":
        return value
    if kind in ("code2", "code3", "digits"):
        width = {"code2": 2, "code3": 3, "digits": 0}[kind]
        if not value.isdigit():
            raise _CellError("not_digits", f"「{column.header}」须为数字编码。", f"{column.header} must be digits.")
        return value.zfill(width) if width else value
    if kind == "enum":
        assert column.vocab is not None
        key = _enum(value, column.vocab)
        if key is None:
            allowed = "、".join(column.vocab.values())
            raise _CellError(
                "unknown_value",
                f"「{column.header}」的取值「{value}」不在代码表中（可选：{allowed}）。",
                f"{column.header}: {value!r} is not one of {', '.join(column.vocab)}.",
            )
        return key
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        v = value.lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        raise _CellError("not_yes_no", f"「{column.header}」须填写 是 或 否。", f"{column.header} must be 是 or 否.")
    if kind == "int":
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise _CellError(
                "not_integer", f"「{column.header}」须为整数。", f"{column.header} must be a whole number."
            )
        return int(number)
    if kind == "list":
        return [v for v in _LIST_SPLIT.split(value) if v]
    return value


_PYDANTIC_ZH = {
    "missing": "必填，未填写。",
    "string_too_short": "不能为空。",
    "string_too_long": "内容过长。",
    "string_pattern_mismatch": "格式不正确。",
    "literal_error": "取值不在代码表中。",
    "int_parsing": "须为整数。",
    "int_type": "须为整数。",
    "greater_than_equal": "数值过小。",
    "less_than_equal": "数值过大。",
    "bool_parsing": "须填写 是 或 否。",
    "too_long": "条目过多。",
    "extra_forbidden": "不认识的字段。",
}


def _pydantic_problems(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        problems.append(FieldProblem(path, err["type"], _PYDANTIC_ZH.get(err["type"], "取值无效。"), err["msg"]))
    return problems


def read(data: bytes, *, department: str | None) -> ParsedSheet:
    """Read an upload into resources; cell and grouping problems are collected, not raised."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise domain.RuleViolation(
            "无法读取上传的文件，请上传 .xlsx 格式的表格（可先导出模板再填写）。",
            f"The upload is not a readable .xlsx workbook ({type(exc).__name__}).",
            [FieldProblem("file", "not_xlsx", "文件不是有效的 .xlsx 表格。", "Not an .xlsx workbook.")],
            code="import_unreadable",
        ) from None
    try:
        sheet = workbook[SHEET_NAME] if SHEET_NAME in workbook.sheetnames else workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None) or ()
        index: dict[str, int] = {}
        for i, cell in enumerate(header_row):
            name = _text(cell).replace("*", "").replace("\n", "").strip()
            if name in HEADERS and name not in index:
                index[name] = i
        parsed = ParsedSheet(sheet.title, {h: _letter(i) for h, i in index.items()}, [], [])
        missing = [c.header for c in COLUMNS if c.header not in index and c.header not in OPTIONAL_HEADERS]
        for header in missing:
            parsed.errors.append(
                SheetError(
                    sheet.title,
                    1,
                    "",
                    header,
                    HEADERS[header].field,
                    "missing_column",
                    f"表头缺少「{header}」列。",
                    f"The header row lacks the column {header!r}.",
                )
            )
        if missing:
            return parsed
        _group(parsed, rows, index, department)
        return parsed
    finally:
        workbook.close()


def _group(parsed: ParsedSheet, rows: Iterable[tuple[Any, ...]], index: dict[str, int], department: str | None) -> None:
    current: SheetResource | None = None
    name_at = index["信息资源名称"]
    code_at = index.get("信息资源代码")
    for row_number, row in enumerate(rows, start=2):
        if row_number > MAX_ROWS + 1:
            parsed.errors.append(
                parsed._error(
                    row_number,
                    HEADERS["序号"],
                    "file",
                    "too_many_rows",
                    f"一次最多导入 {MAX_ROWS} 行。",
                    f"At most {MAX_ROWS} rows per upload.",
                )
            )
            return
        if not any(_text(v) for v in row):
            continue

        def cell(i: int | None, row: tuple[Any, ...] = row) -> Any:
            return row[i] if i is not None and i < len(row) else None

        name = _text(cell(name_at))
        code = _text(cell(code_at))
        continues = current is not None and (
            not name or (name == current.raw.get("name") and code in ("", current.code or ""))
        )
        if not continues:
            current = SheetResource(first_row=row_number, code=code or None)
            parsed.resources.append(current)
            for column in RESOURCE_COLUMNS:
                if column.header not in index:
                    continue
                raw = cell(index[column.header])
                current.raw[column.field] = _text(raw)
                try:
                    value = _convert(column, raw)
                except _CellError as e:
                    parsed.errors.append(parsed._error(row_number, column, column.field, e.code, e.zh, e.en))
                    continue
                if value is not None and column.field != "code":
                    current.values[column.field] = value
            if not current.values.get("provider_code") and department:
                current.values["provider_code"] = department
        else:
            assert current is not None
            for column in RESOURCE_COLUMNS:
                if column.header not in index:
                    continue
                raw = _text(cell(index[column.header]))
                if raw and raw != current.raw.get(column.field, ""):
                    parsed.errors.append(
                        parsed._error(
                            row_number,
                            column,
                            column.field,
                            "inconsistent",
                            f"「{column.header}」与本资源第 {current.first_row} 行不一致"
                            f"（「{current.raw.get(column.field, '')}」）；同一资源的各行须相同或留空。",
                            f"{column.header} differs from the resource's first row ({current.first_row}).",
                        )
                    )
        item: dict[str, Any] = {}
        for column in ITEM_COLUMNS:
            try:
                value = _convert(column, cell(index[column.header]))
            except _CellError as e:
                parsed.errors.append(
                    parsed._error(row_number, column, f"data_items.{column.field}", e.code, e.zh, e.en)
                )
                continue
            if value is not None:
                item[column.field] = value
        if item:
            current.items.append(item)
            current.item_rows.append(row_number)


def check_contents(parsed: ParsedSheet) -> None:
    """Build each resource's content; problems of the model's own validation join parsed.errors."""
    for r in parsed.resources:
        try:
            r.content = ResourceContent.model_validate({**r.values, "data_items": r.items})
        except ValidationError as exc:
            for p in _pydantic_problems(exc):
                parsed.errors.append(parsed.locate(r, p.field, p.code, f"「{_header_for(p.field)}」{p.zh}", p.en))


def _header_for(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "data_items" and len(parts) > 2:
        column = _BY_FIELD.get(("item", parts[2]))
    else:
        column = _BY_FIELD.get(("resource", parts[0]))
    return column.header if column else path


def refuse_if_errors(errors: list[SheetError]) -> None:
    if errors:
        unique: dict[tuple[int, str], SheetError] = {}
        for e in errors:
            unique.setdefault((e.row, e.header), e)
        raise ImportRefused(list(unique.values()))


# --- export -------------------------------------------------------------------------------------------------


def _cell_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "enum":
        assert column.vocab is not None
        return column.vocab.get(value, value)
    if column.kind == "bool":
        return "是" if value else "否"
    if column.kind == "list":
        return "、".join(value)
    return value


def write(resources: Iterable[dict[str, Any]]) -> bytes:
    """A workbook in the upload layout: one row per data item, resource cells repeated on each of its rows.

    Each resource is its content plus `code` and `publish_date` where it has them.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_NAME)
    for i, column in enumerate(COLUMNS):
        sheet.column_dimensions[_letter(i)].width = column.width
    sheet.freeze_panes = "A2"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    header_cells = []
    for column in COLUMNS:
        c = WriteOnlyCell(sheet, value=column.header)
        c.font, c.fill, c.alignment = (
            bold,
            fill,
            Alignment(horizontal="center", vertical="center", wrap_text=True),
        )
        header_cells.append(c)
    sheet.append(header_cells)
    serial = 0
    for resource in resources:
        serial += 1
        items = resource.get("data_items") or [{}]
        for item in items:
            row = []
            for column in COLUMNS:
                if column.level == "info":
                    value = serial if column.field == "serial" else resource.get(column.field)
                elif column.level == "item":
                    value = _cell_value(column, item.get(column.field))
                else:
                    value = _cell_value(column, resource.get(column.field))
                row.append(value)
            sheet.append(row)
    codes = workbook.create_sheet(CODES_SHEET)
    codes.append(["列", "代码", "填写值"])
    for column in COLUMNS:
        if column.vocab:
            for key, label in column.vocab.items():
                codes.append([column.header, key, label])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
