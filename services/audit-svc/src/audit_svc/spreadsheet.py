"""The yearly evaluation report as .xlsx: one row per department with every indicator, its deductions and
score, and a sheet stating the formula."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from audit_svc.domain import DEDUCTIONS

COLUMNS: list[tuple[str, str]] = [
    ("resources_published", "新发布资源"),
    ("resources_updated", "更新资源"),
    ("catalog_overdue", "目录逾期未更新"),
    ("data_stale", "未按周期提供数据"),
    ("requests_received", "收到共享申请"),
    ("requests_answered", "已答复申请"),
    ("requests_answered_on_time", "按时答复申请"),
    ("requests_overdue", "逾期申请"),
    ("disputes_received", "收到数据疑义"),
    ("disputes_answered", "已处理疑义"),
    ("disputes_overdue", "逾期疑义"),
    ("grants_issued", "签发授权"),
    ("queries", "查询次数"),
    ("exports", "导出次数"),
    ("subscriptions", "订阅推送次数"),
    ("use_beyond_purpose", "超用途使用"),
    ("notices_opened", "整改通知（期内）"),
    ("notices_unresolved", "整改通知未办结"),
]


def yearly_workbook(report: dict[str, Any]) -> bytes:
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = "评估结果"
    sheet.append([f"政务信息资源共享工作评估 {report['period']}"])
    sheet["A1"].font = Font(bold=True, size=14)
    header = ["部门代码", "部门名称", *[label for _, label in COLUMNS], "扣分合计", "得分"]
    sheet.append(header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for dept in report["departments"]:
        ind = dept["indicators"]
        deducted = sum(line["deducted"] for line in dept["deductions"])
        sheet.append(
            [
                dept["department_code"],
                dept["department_name"] or "",
                *[ind[k] for k, _ in COLUMNS],
                deducted,
                dept["score"],
            ]
        )
    totals = report["totals"]
    sheet.append(["合计", "", *[totals[k] for k, _ in COLUMNS], "", report["average_score"]])
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 28

    formula = wb.create_sheet("评分公式")
    formula.append([report["formula"]])
    formula.append([report["formula_en"]])
    formula.append([])
    formula.append(["扣分项", "每项扣分"])
    for points, label in DEDUCTIONS.values():
        formula.append([label, points])
    formula.column_dimensions["A"].width = 40

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
