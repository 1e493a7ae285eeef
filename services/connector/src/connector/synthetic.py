"""Synthetic people for demo and test department databases: resident ID numbers with valid check characters
(GB 11643), Chinese names and addresses. No real person is described."""

from __future__ import annotations

from datetime import date, timedelta

from govshare_common.identifiers import resident_id_check_char

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英"]
STREETS = ["南大街", "西新桥二村", "五星路", "广化街", "延陵西路", "清潭路", "勤业路", "怀德南路"]


def resident_id(i: int, *, area: str = "320404") -> str:
    born = date(1950, 1, 1) + timedelta(days=i % 20000)
    body = f"{area}{born:%Y%m%d}{(i // 20000) % 1000:03d}"
    return body + resident_id_check_char(body)


def person(i: int) -> dict[str, str]:
    return {
        "sfzh": resident_id(i),
        "xm": SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)],
        "hjdz": f"江苏省常州市钟楼区{STREETS[i % len(STREETS)]}{i % 300 + 1}号",
        "mz": "01",
    }


PEOPLE_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    sfzh varchar(18) PRIMARY KEY,
    xm varchar(50) NOT NULL,
    hjdz varchar(200),
    mz varchar(2),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""
