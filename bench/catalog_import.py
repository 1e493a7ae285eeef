"""Catalog spreadsheet import: a 10,000-row .xlsx through the real service (issue 3). Goal: ≤ 20 s.

The workbook is the guide's layout (one row per data item) as a department would upload it: 1,000 resources
of 10 data items each, written with openpyxl. The catalog service runs for real (embedded PostgreSQL and
Tansu, a local token issuer); the clock runs from the POST of the file until the answer (every row checked,
every resource written as a draft in one transaction). A second upload of the same size with one bad cell in
every hundredth row measures the refusal path: all errors reported, nothing imported.

    uv run python bench/catalog_import.py [--rows 10000] [--items 10]
Result: bench/results/catalog_import.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

NAME = "catalog_import"
GOAL_SECONDS = 20.0
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABELS = [
    "姓名",
    "公民身份号码",
    "地址",
    "联系电话",
    "登记日期",
    "有效期",
    "状态",
    "类别",
    "金额",
    "编号",
    "备注",
    "所属街道",
]


def workbook(department: str, rows: int, items: int, *, bad_every: int = 0) -> bytes:
    from openpyxl import Workbook

    from catalog_svc.spreadsheet import COLUMNS

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("信息资源目录")
    ws.append([c.header for c in COLUMNS])
    for r in range(rows):
        n, i = divmod(r, items)
        resource = {
            "类": "部门信息资源",
            "项编码": "01",
            "项名称": "综合",
            "目编码": f"{n % 900 + 100:03d}",
            "目名称": "业务",
            "信息资源名称": f"业务办理信息{n:05d}",
            "信息资源摘要": f"第{n}类业务办理过程中形成的记录，供相关部门核验。",
            "信息资源提供方": "常州市钟楼区示例局",
            "提供方代码": department,
            "信息资源格式分类": "数据库",
            "信息资源格式类型": "MySQL",
            "共享类型": "有条件共享" if n % 3 == 0 else "无条件共享",
            "共享条件": "仅限核验使用" if n % 3 == 0 else None,
            "共享方式分类": "共享平台方式",
            "共享方式类型": "接口",
            "是否向社会开放": "否",
            "更新周期": "每日",
        }
        item = {
            "信息项名称": LABELS[i % len(LABELS)] + (str(i) if i >= len(LABELS) else ""),
            "字段名": f"F{i:02d}",
            "数据类型": "C 字符型",
            "数据长度": 50,
            "是否必填": "是" if i == 0 else "否",
            "标识类型": "无",
            "敏感级别": "内部",
            "脱敏规则": "不脱敏",
        }
        if bad_every and r % bad_every == bad_every - 1:
            item["数据类型"] = "文本"  # not in the code list
        values = {**resource, **item, "序号": n + 1}
        ws.append([values.get(c.header) for c in COLUMNS])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def run(rows: int, items: int) -> dict[str, Any]:
    import httpx
    import psutil
    from sqlalchemy import text

    from govshare_common.identifiers import uscc_check_char
    from govshare_common.settings import Settings
    from govshare_common.testing import TokenIssuer, free_port, serve
    from govshare_stack.embedded import start_broker, start_postgres

    from catalog_svc.app import create_app

    department = "11320404MB9999999" + uscc_check_char("11320404MB9999999")
    t0 = time.perf_counter()
    good = workbook(department, rows, items)
    bad = workbook(department, rows, items, bad_every=100)
    build_s = time.perf_counter() - t0

    root = Path(tempfile.mkdtemp(prefix="govshare-bench-import-"))
    pg = start_postgres(root / "pgdata")
    broker = start_broker(log_path=root / "tansu.log")
    try:
        port = free_port()
        settings = Settings(
            master_secret="bench-master-secret-0123456789abcdef-0123",
            database_url=pg.create_database("bench"),
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix="bench",
            log_json=False,
            log_level="WARNING",
            service_urls={
                "catalog": f"http://127.0.0.1:{port}",
                "gateway": f"http://127.0.0.1:{free_port()}",
            },
        )
        issuer = TokenIssuer()
        async with issuer.running():
            settings.jwks_url = issuer.jwks_url
            app = create_app(settings)
            async with serve(app, port) as base:
                headers = issuer.headers(roles=["dept_admin"], department=department)
                async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as http:
                    t0 = time.perf_counter()
                    refused = await http.post("/api/v1/catalog/import", files={"file": ("有误.xlsx", bad, XLSX)})
                    refused_s = time.perf_counter() - t0
                    assert refused.status_code == 422, refused.text[:500]
                    errors = len(refused.json()["details"]["errors"])

                    t0 = time.perf_counter()
                    resp = await http.post("/api/v1/catalog/import", files={"file": ("目录.xlsx", good, XLSX)})
                    import_s = time.perf_counter() - t0
                    assert resp.status_code == 201, resp.text[:500]
                    imported = resp.json()["imported"]
                async with app.state.db.engine.connect() as conn:
                    drafts = (await conn.execute(text("SELECT count(*) FROM resource WHERE status = 'draft'"))).scalar()
                    items_stored = (
                        await conn.execute(
                            text("SELECT sum(jsonb_array_length(content->'data_items')) FROM resource_version")
                        )
                    ).scalar()
                rss = psutil.Process().memory_info().rss / 2**20
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {
        "rows": rows,
        "resources": imported,
        "data_items_stored": int(items_stored or 0),
        "drafts_in_database": int(drafts or 0),
        "file_mb": round(len(good) / 2**20, 2),
        "import_seconds": round(import_s, 2),
        "rows_per_second": round(rows / import_s),
        "goal_seconds": GOAL_SECONDS,
        "goal_met": import_s <= GOAL_SECONDS,
        "refused_upload": {
            "bad_rows": rows // 100,
            "errors_reported": errors,
            "seconds": round(refused_s, 2),
        },
        "workbook_build_seconds": round(build_s, 2),
        "process_rss_mb_after": round(rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args()
    info = machine_info()
    result = asyncio.run(run(args.rows, args.items))
    path = write_result(NAME, {"machine": info, **result})
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"result: {path}")


if __name__ == "__main__":
    main()
