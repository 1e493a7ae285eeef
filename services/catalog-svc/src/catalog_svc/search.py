"""Chinese full-text search over the published catalog, with facets, sorting and pagination.

Owns: word segmentation (jieba, loaded on first use), the weighted search document of a published resource
(A name, B summary, C data item labels) and the queries that search, rank and count the live catalog.

PostgreSQL has no Chinese parser, so the text is segmented here and handed over as ready-made tsvector and
tsquery literals: the database never re-parses them, so what is indexed and what is asked are the same
tokens. A query is read like most search boxes: words separated by spaces must all match; the segments of
one unspaced run of characters (户籍人口 -> 户籍, 人口) are alternatives, ranked by how many match. Name hits
always rank above hits only in the summary or the data items.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import pickle
import re
import sys
import threading
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

log = logging.getLogger("govshare.catalog.search")

# Words of the government-data domain that jieba's general dictionary lacks or splits the wrong way.
DOMAIN_WORDS = (
    "户籍",
    "常住人口",
    "户籍人口",
    "流动人口",
    "法人单位",
    "统一社会信用代码",
    "居民身份证",
    "身份证号码",
    "社会保险",
    "参保",
    "最低生活保障",
    "低保",
    "不动产",
    "营业执照",
    "电子证照",
    "行政许可",
    "行政处罚",
    "公积金",
    "残疾人",
    "特困人员",
    "婚姻登记",
    "出生医学证明",
    "死亡医学证明",
    "机动车",
    "驾驶证",
    "失信被执行人",
    "政务服务",
    "网格员",
)
STOPWORDS = frozenset("的 了 和 与 及 或 等 之 其 在 对 为 是 并 由 向 按 从 以 于 中 各 个".split())
_WORDLIKE = re.compile(r"\w", re.UNICODE)
MAX_POSITION = 16383  # PostgreSQL's limit for tsvector positions
MAX_POSITIONS_PER_LEXEME = 8  # more occurrences add nothing useful to the rank


class Segmenter:
    """jieba with a trimmed dictionary, built on first use.

    The full dictionary (349k words) costs about 60 MB and 2-4 s to load; words seen fewer than MIN_FREQ
    times in jieba's corpus (rare names and idioms) add nothing to a catalog search, and leaving them out
    keeps the prefix dictionary near 13 MB and the load under a second. HMM still segments unknown words.
    """

    MIN_FREQ = 20

    def __init__(self) -> None:
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._tokenizer is not None

    def _load(self) -> Any:
        with self._lock:
            if self._tokenizer is not None:
                return self._tokenizer
            _preload_hmm_tables()
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
            freq: dict[str, int] = {}
            total = 0
            with open(path, encoding="utf-8") as f:
                for line in f:
                    word, count, *_ = line.split(" ")
                    n = int(count)
                    if n < self.MIN_FREQ:
                        continue
                    freq[word] = n
                    total += n
                    for i in range(1, len(word)):
                        freq.setdefault(word[:i], 0)
            tokenizer.FREQ, tokenizer.total = freq, total
            tokenizer.initialized = True
            for word in DOMAIN_WORDS:
                tokenizer.add_word(word, 2000)
            self._tokenizer = tokenizer
            log.info("jieba loaded: %d dictionary entries", len(freq))
            return tokenizer

    def index_tokens(self, value: str | None) -> list[str]:
        """Tokens for the search document: jieba's search mode (words and the shorter words inside them)."""
        if not value:
            return []
        return _clean(self._load().cut_for_search(value))

    def query_groups(self, value: str) -> list[list[str]]:
        """One group of alternative tokens per space-separated part of the query."""
        tokenizer = self._load()
        groups = []
        for part in value.split():
            tokens = _clean([*tokenizer.cut(part), *tokenizer.cut_for_search(part)])
            unique = list(dict.fromkeys(tokens))
            if unique:
                groups.append(unique)
        return groups


def _preload_hmm_tables() -> None:
    """Load jieba's HMM tables from their pickles instead of importing the 1.3 MB generated .py module.

    Where no bytecode cache can be written (PYTHONDONTWRITEBYTECODE, read-only site-packages) importing
    jieba.finalseg.prob_emit compiles that module on every start and leaves ~65 MB behind; the pickles
    hold the same tables (jieba itself reads them on Jython) for ~10 MB.
    """
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        return
    folder = os.path.join(os.path.dirname(spec.origin), "finalseg")
    for name in ("prob_start", "prob_trans", "prob_emit"):
        module_name = f"jieba.finalseg.{name}"
        if module_name in sys.modules:
            continue
        path = os.path.join(folder, f"{name}.p")
        if not os.path.exists(path):
            return
        module = types.ModuleType(module_name)
        with open(path, "rb") as f:
            module.P = pickle.load(f)  # type: ignore[attr-defined]
        sys.modules[module_name] = module


def _clean(tokens: Iterable[str]) -> list[str]:
    out = []
    for token in tokens:
        t = token.strip().lower()
        if t and t not in STOPWORDS and _WORDLIKE.search(t):
            out.append(t)
    return out


segmenter = Segmenter()


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def document(name: str, summary: str, labels: Iterable[str], seg: Segmenter = segmenter) -> str:
    """The tsvector literal of a resource: name tokens weighted A, summary B, data item labels C."""
    positions: dict[str, list[str]] = {}
    pos = 0
    for weight, value in (("A", name), ("B", summary), ("C", " ".join(labels))):
        for token in seg.index_tokens(value):
            pos = min(pos + 1, MAX_POSITION)
            slots = positions.setdefault(token, [])
            if len(slots) < MAX_POSITIONS_PER_LEXEME:
                slots.append(f"{pos}{weight}")
    return " ".join(f"{_quote(lex)}:{','.join(slots)}" for lex, slots in positions.items())


@dataclass(frozen=True)
class TextQuery:
    """A search box's text as tsquery literals: `match` anywhere, `in_name` only in the name (weight A)."""

    match: str
    in_name: str
    tokens: list[list[str]]


def text_query(value: str | None, seg: Segmenter = segmenter) -> TextQuery | None:
    if not value or not value.strip():
        return None
    groups = seg.query_groups(value[:200])
    if not groups:
        return None

    def build(suffix: str) -> str:
        return " & ".join("(" + " | ".join(_quote(t) + suffix for t in g) + ")" for g in groups)

    return TextQuery(build(""), build(":A"), groups)


async def parse_query(value: str | None) -> TextQuery | None:
    """text_query, loading the dictionary off the event loop the first time (about half a second)."""
    if value and value.strip() and not segmenter.loaded:
        await asyncio.to_thread(segmenter.index_tokens, "预热")
    return text_query(value)


# --- queries on the live catalog ---------------------------------------------------------------------------

FACETS = (
    "resource_class",
    "provider_code",
    "share_type",
    "share_method_type",
    "update_cycle",
    "format_category",
    "open_to_public",
)
SORTS = {
    "relevance": None,
    "name": "name ASC, code ASC",
    "-name": "name DESC, code ASC",
    "publish_date": "publish_date ASC, code ASC",
    "-publish_date": "publish_date DESC, code ASC",
    "code": "code ASC",
    "-code": "code DESC",
}
LISTED = (
    "resource_id::text AS id, code, name, summary, provider_code, provider_name, resource_class, "
    "share_type, share_method_class, share_method_type, update_cycle, format_category, open_to_public, "
    "publish_date, version"
)


@dataclass
class Filters:
    resource_class: str | None = None
    provider_code: str | None = None
    share_type: str | None = None
    share_types: tuple[str, ...] | None = None
    share_method_type: str | None = None
    update_cycle: str | None = None
    format_category: str | None = None
    open_to_public: bool | None = None
    code: str | None = None

    def where(self, params: dict[str, Any]) -> list[str]:
        clauses = []
        for name in (
            "resource_class",
            "provider_code",
            "share_type",
            "share_method_type",
            "update_cycle",
            "format_category",
            "open_to_public",
            "code",
        ):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = :f_{name}")
                params[f"f_{name}"] = value
        if self.share_types is not None:
            clauses.append("share_type = ANY(:f_share_types)")
            params["f_share_types"] = list(self.share_types)
        return clauses


async def search(
    conn: Any,
    *,
    query: TextQuery | None,
    filters: Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    columns: str = LISTED,
) -> dict[str, Any]:
    """A page of the live catalog, its total, and (when asked) facet counts over the whole result."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = filters.where(params)
    rank_cols = ""
    if query is not None:
        params["q"] = query.match
        params["qa"] = query.in_name
        where.append("document @@ CAST(:q AS tsquery)")
        rank_cols = (
            ", (document @@ CAST(:qa AS tsquery)) AS name_hit, ts_rank(document, CAST(:q AS tsquery)) AS rank"
        )
    where_sql = " AND ".join(where) or "true"
    order = SORTS.get(sort)
    if order is None:
        order = "name_hit DESC, rank DESC, code ASC" if query is not None else "publish_date DESC, code ASC"
    rows = await conn.execute(
        text(
            f"SELECT {columns}{rank_cols} FROM published_resource WHERE {where_sql} "
            f"ORDER BY {order} LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    items = []
    for r in rows:
        item = dict(r._mapping)
        if "rank" in item:
            item["rank"] = round(float(item["rank"]), 6)
        items.append(item)
    result: dict[str, Any] = {"items": items, "limit": limit, "offset": offset}
    if facets:
        result["facets"], result["total"] = await _facets(conn, where_sql, params)
    else:
        result["total"] = (
            await conn.execute(text(f"SELECT count(*) FROM published_resource WHERE {where_sql}"), params)
        ).scalar_one()
    return result


async def _facets(
    conn: Any, where_sql: str, params: dict[str, Any]
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    sets = ", ".join(f"({f})" for f in FACETS)
    rows = await conn.execute(
        text(
            f"SELECT {', '.join(FACETS)}, GROUPING({', '.join(FACETS)}) AS g, count(*) AS n, "
            f"max(provider_name) AS provider_name FROM published_resource WHERE {where_sql} "
            f"GROUP BY GROUPING SETS ({sets}, ())"
        ),
        params,
    )
    facets: dict[str, list[dict[str, Any]]] = {f: [] for f in FACETS}
    total = 0
    width = len(FACETS)
    for r in rows:
        m = r._mapping
        if m["g"] == (1 << width) - 1:  # the grand total row: every column rolled up
            total = int(m["n"])
            continue
        for i, name in enumerate(FACETS):
            if not m["g"] & (1 << (width - 1 - i)):  # this column is the one grouped in this row
                entry: dict[str, Any] = {"value": m[name], "count": int(m["n"])}
                if name == "provider_code":
                    entry["label"] = m["provider_name"]
                facets[name].append(entry)
                break
    for entries in facets.values():
        entries.sort(key=lambda e: (-e["count"], str(e["value"])))
    return facets, total
