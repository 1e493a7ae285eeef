"""Chinese full-text search over the published catalog, with facets, sorting and pagination.

Owns: word segmentation (jieba, loaded on first use), the weighted search document of a published resource
(A name, B summary, C data item labels), the postings and word counts derived from it, and the queries that
search, rank and count the live catalog.

PostgreSQL has no Chinese parser, so the text is segmented here and handed over as ready-made tsvector and
tsquery literals: the database never re-parses them, so what is indexed and what is asked are the same
tokens. A query is read strictly first — every word (户籍人口 -> 户籍 & 人口) — and, when that finds less
than a page, relaxed: any word or a shorter word inside one, those with every word first. Name hits always
rank above hits only in the summary or the data items.

Where each reading runs: several words, strictly, on the GIN-indexed tsvector (the index intersects them);
one word, a relaxed reading, or a browse without words, on the postings (index-only scans, in rank order) and
the stored word counts — those are the readings that can match most of the catalog."""

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
# Function words, and the words nearly every catalog entry's name carries (…信息, …数据): they only dilute.
STOPWORDS = frozenset("的 了 和 与 及 或 等 之 其 在 对 为 是 并 由 向 按 从 以 于 中 各 个 信息 数据 资源".split())
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

    def query_words(self, value: str) -> list[tuple[str, list[str]]]:
        """Each word of a query (jieba's precise mode, per space-separated part), with its shorter words."""
        tokenizer = self._load()
        words: dict[str, list[str]] = {}
        for part in value.split():
            for word in _clean(tokenizer.cut(part)):
                inner = [t for t in _clean(tokenizer.cut_for_search(word)) if t != word]
                words.setdefault(word, list(dict.fromkeys(inner)))
        return list(words.items())


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
    return document_from_tokens(seg.index_tokens(name), seg.index_tokens(summary), seg.index_tokens(" ".join(labels)))


def document_from_tokens(name: list[str], summary: list[str], labels: list[str]) -> str:
    positions: dict[str, list[str]] = {}
    pos = 0
    for weight, tokens in (("A", name), ("B", summary), ("C", labels)):
        for token in tokens:
            pos = min(pos + 1, MAX_POSITION)
            slots = positions.setdefault(token, [])
            if len(slots) < MAX_POSITIONS_PER_LEXEME:
                slots.append(f"{pos}{weight}")
    return " ".join(f"{_quote(lex)}:{','.join(slots)}" for lex, slots in positions.items())


@dataclass(frozen=True)
class TextQuery:
    """A search box's text as tsquery literals.

    every_word: each word must match (the strict reading). any_word: any word or a shorter word inside one
    (the relaxed reading, used when the strict one finds less than a page). The *_in_name forms match only
    in the name (weight A), which decides the first ranking tier.
    """

    every_word: str
    any_word: str
    every_word_in_name: str
    any_word_in_name: str
    words: list[str]
    alternatives: list[str]


def text_query(value: str | None, seg: Segmenter = segmenter) -> TextQuery | None:
    if not value or not value.strip():
        return None
    words = seg.query_words(value[:200])
    if not words:
        return None
    every = [[w] for w, _ in words]
    alternatives = list(dict.fromkeys(t for w, inner in words for t in (w, *inner)))

    def build(groups: list[list[str]], op: str, suffix: str) -> str:
        return f" {op} ".join(
            "(" + " | ".join(_quote(t) + suffix for t in g) + ")" if len(g) > 1 else _quote(g[0]) + suffix
            for g in groups
        )

    return TextQuery(
        every_word=build(every, "&", ""),
        any_word=build([[t] for t in alternatives], "|", ""),
        every_word_in_name=build(every, "&", ":A"),
        any_word_in_name=build([[t] for t in alternatives], "|", ":A"),
        words=[w for w, _ in words],
        alternatives=alternatives,
    )


async def parse_query(value: str | None) -> TextQuery | None:
    """text_query, loading the dictionary off the event loop the first time (about half a second)."""
    if value and value.strip() and not segmenter.loaded:
        await asyncio.to_thread(segmenter.index_tokens, "预热")
    return text_query(value)


# --- queries on the live catalog ---------------------------------------------------------------------------

# Facets and their values, counted in one pass over the matching rows (one FILTER per value, grouped by
# provider): far cheaper than a GROUPING SETS sort or hash per facet when a query matches tens of thousands.
FACET_VALUES: dict[str, list[Any]] = {
    "resource_class": ["base", "thematic", "departmental"],
    "share_type": ["unconditional", "conditional", "not_shared"],
    "share_method_type": ["database", "interface", "file", None],
    "update_cycle": [
        "realtime",
        "daily",
        "weekly",
        "monthly",
        "quarterly",
        "half_yearly",
        "yearly",
        "irregular",
    ],
    "format_category": [
        "electronic_file",
        "spreadsheet",
        "database",
        "image",
        "streaming_media",
        "self_describing",
        "service_interface",
    ],
    "open_to_public": [True, False],
}
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
# What a listed resource shows (from its published snapshot).
LISTED = (
    "code",
    "name",
    "summary",
    "provider_code",
    "provider_name",
    "resource_class",
    "share_type",
    "share_method_class",
    "share_method_type",
    "update_cycle",
    "format_category",
    "open_to_public",
    "publish_date",
    "version",
    "origin",  # a peer platform's resource mirrored here: that platform (None for this platform's own)
    "origin_code",  # … and its code there (`code` is the one used here: `<origin division>:<origin code>`)
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
    engine: Any,
    *,
    query: TextQuery | None,
    filters: Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    fields: tuple[str, ...] = LISTED,
) -> dict[str, Any]:
    """A page of the live catalog, its total, and (when asked) facet counts over the whole result.

    A text query is first read strictly (every word); when that finds less than a page, it is read again
    relaxed (any word) and the answer says so (match: "any"). Reads run outside a transaction (autocommit):
    a search is two statements, and BEGIN/ROLLBACK round trips would cost as much as a narrow query itself.
    """
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        result = await _run_postings(conn, query, filters, sort, limit, offset, facets, fields)
        if result is None:
            result = await _run(conn, query, "every", filters, sort, limit, offset, facets, fields)
        if query is not None and result["total"] < limit and query.any_word != query.every_word:
            relaxed = await _run_relaxed_postings(conn, query, filters, sort, limit, offset, facets, fields)
            result = relaxed or await _run(conn, query, "any", filters, sort, limit, offset, facets, fields)
    return result


async def _run_postings(
    conn: Any,
    query: TextQuery | None,
    filters: Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    fields: tuple[str, ...],
) -> dict[str, Any] | None:
    """A one-word search ranked by relevance, from the postings; None when the request is not one."""
    if query is None or len(query.words) != 1 or SORTS.get(sort) is not None:
        return None
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    clauses = _posting_filters(filters, params)
    if clauses is None:
        return None
    lexeme = query.words[0]
    rows = await _posting_page(conn, lexeme, clauses, params)
    items = []
    for r in rows:
        name_hit = r.score >= NAME_TIER
        rank = r.score - NAME_TIER if name_hit else r.score
        items.append(
            {
                "id": str(r.resource_id),
                **{f: r.snapshot.get(f) for f in fields},
                "rank": round(float(rank), 6),
                "name_hit": name_hit,
            }
        )
    result: dict[str, Any] = {
        "items": items,
        "limit": limit,
        "offset": offset,
        "match": "every",
        "query_words": query.words,
    }
    if facets and not clauses:
        result["total"], result["facets"] = await _stat_facets(conn, lexeme)
    elif facets:
        result["total"], result["facets"] = await _posting_facets(conn, lexeme, clauses, params)
    else:
        count = text(f"SELECT count(*) FROM search_posting WHERE {' AND '.join(['lexeme = :lexeme', *clauses])}")
        result["total"] = int((await conn.execute(count, {**params, "lexeme": lexeme})).scalar_one())
    return result


async def _run(
    conn: Any,
    query: TextQuery | None,
    match: str,
    filters: Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    fields: tuple[str, ...],
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = filters.where(params)
    rank_cols, order = "", SORTS.get(sort)
    if query is not None:
        params["q"] = query.every_word if match == "every" else query.any_word
        params["qa"] = query.every_word_in_name if match == "every" else query.any_word_in_name
        where.append("document @@ CAST(:q AS tsquery)")
        rank_cols = ", (document @@ CAST(:qa AS tsquery)) AS name_hit, ts_rank(document, CAST(:q AS tsquery)) AS rank"
        if match == "any":
            params["qe"] = query.every_word
            rank_cols += ", (document @@ CAST(:qe AS tsquery)) AS every_hit"
        if order is None:
            order = "name_hit DESC, " + ("every_hit DESC, " if match == "any" else "") + "rank DESC, code ASC"
    order = order or "publish_date DESC, code ASC"
    where_sql = " AND ".join(where) or "true"
    # The page is chosen on the narrow table; only its rows' snapshots are read.
    rows = (
        await conn.execute(
            text(
                "SELECT h.*, (SELECT snapshot FROM published_snapshot s WHERE s.resource_id = h.resource_id) "
                f"AS snapshot FROM (SELECT resource_id, code, name, publish_date{rank_cols} "
                f"FROM published_resource WHERE {where_sql} ORDER BY {order} LIMIT :limit OFFSET :offset) h "
                f"ORDER BY {order}"
            ),
            params,
        )
    ).all()
    items = []
    for r in rows:
        item = {"id": str(r.resource_id), **{f: r.snapshot.get(f) for f in fields}}
        if query is not None:
            item["rank"] = round(float(r.rank), 6)
            item["name_hit"] = bool(r.name_hit)
        items.append(item)
    result: dict[str, Any] = {"items": items, "limit": limit, "offset": offset}
    posting_clauses = _posting_filters(filters, params) if query is None else None
    given = _single_given(filters, params) if query is None else None
    if facets and given is not None:
        result["total"], result["facets"] = await _stat_facets(conn, "", given, params)
    elif facets and posting_clauses is not None:
        result["total"], result["facets"] = await _posting_facets(conn, "", posting_clauses, params)
    elif facets:
        result["total"], result["facets"] = await _facets(conn, where_sql, params)
    elif given is not None:
        result["total"], _ = await _stat_facets(conn, "", given, params)
    else:
        count = text(f"SELECT count(*) FROM published_resource WHERE {where_sql}")
        result["total"] = int((await conn.execute(count, params)).scalar_one())
    if query is not None:
        result["match"] = match
        result["query_words"] = query.words
    return result


# --- postings: one-word searches and filter-only browsing -------------------------------------------

NAME_TIER = 10.0  # added to a posting's score when the word is in the name: name hits always rank first
_CODED = ("resource_class", "share_type", "share_method_type", "update_cycle", "format_category")


def _code_sql(column: str) -> str:
    """A facet's text value as its small code: its position in FACET_VALUES (None last)."""
    values = [v for v in FACET_VALUES[column] if v is not None]
    array = "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"
    fallback = len(values) + 1 if None in FACET_VALUES[column] else "NULL"
    return f"coalesce(array_position({array}, p.{column}), {fallback}) - 1"


def _postings_sql(where: str) -> str:
    facets = ", ".join(_code_sql(c) for c in _CODED)
    columns = (
        "resource_id, resource_class, share_type, share_method_type, update_cycle, format_category, "
        "open_to_public, provider, publish_date"
    )
    return (
        f"INSERT INTO search_posting (lexeme, score, {columns}) "
        "SELECT u.lexeme, ts_rank(p.document, CAST(quote_literal(u.lexeme) AS tsquery)) "
        f"+ CASE WHEN 'A' = ANY(u.weights) THEN {NAME_TIER} ELSE 0 END, p.resource_id, {facets}, "
        "p.open_to_public, v.id, p.publish_date "
        "FROM published_resource p JOIN provider v ON v.code = p.provider_code, unnest(p.document) AS u "
        f"WHERE {where} "
        f"UNION ALL SELECT '', 0, p.resource_id, {facets}, p.open_to_public, v.id, p.publish_date "
        f"FROM published_resource p JOIN provider v ON v.code = p.provider_code WHERE {where}"
    )


async def index_postings(conn: Any, resource_ids: list[str] | None = None) -> None:
    """Rebuild the postings and word counts of these published resources (all when None)."""
    if resource_ids is None:
        await conn.execute(text("TRUNCATE search_posting, search_stat"))
        await conn.execute(text(_postings_sql("true")))
        await conn.execute(text(_STAT_DELTA.format(sign=1, where="true")))
        return
    await remove_postings(conn, resource_ids)
    await conn.execute(text(_postings_sql("p.resource_id = ANY(CAST(:ids AS uuid[]))")), {"ids": resource_ids})
    await conn.execute(text(_STAT_DELTA.format(sign=1, where=_BY_IDS)), {"ids": resource_ids})


async def remove_postings(conn: Any, resource_ids: list[str]) -> None:
    await conn.execute(text(_STAT_DELTA.format(sign=-1, where=_BY_IDS)), {"ids": resource_ids})
    await conn.execute(
        text("DELETE FROM search_posting WHERE resource_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": resource_ids},
    )


_BY_IDS = "p.resource_id = ANY(CAST(:ids AS uuid[]))"
_SLOTS = (
    "('resource_class', p.resource_class), ('share_type', p.share_type), "
    "('share_method_type', p.share_method_type), ('update_cycle', p.update_cycle), "
    "('format_category', p.format_category), ('open_to_public', CASE WHEN p.open_to_public THEN 0 ELSE 1 END), "
    "('provider', p.provider)"
)
# Ordered, so concurrent publications take the shared counters' row locks in the same order.
_STAT_DELTA = (
    "INSERT INTO search_stat (lexeme, given_facet, given_value, facet, value, n) "
    "SELECT p.lexeme, g.facet, g.value, s.facet, s.value, {sign} * count(*) FROM search_posting p "
    f"CROSS JOIN LATERAL (VALUES ('total', 0), {_SLOTS}) AS s(facet, value) "
    "CROSS JOIN LATERAL (SELECT '' AS facet, 0 AS value UNION ALL SELECT * FROM "
    f"(VALUES {_SLOTS}) AS v(facet, value) WHERE p.lexeme = '') AS g "
    "WHERE {where} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 "
    "ON CONFLICT (lexeme, given_facet, given_value, facet, value) DO UPDATE SET n = search_stat.n + excluded.n"
)


def _single_given(filters: Filters, params: dict[str, Any]) -> str | None:
    """The given_* condition for a browse filtered by at most one facet value; None when it is more."""
    if filters.code is not None or filters.share_types is not None:
        return None
    set_ = [c for c in (*_CODED, "open_to_public", "provider_code") if getattr(filters, c) is not None]
    if not set_:
        return "s.given_facet = '' AND s.given_value = 0"
    if len(set_) > 1:
        return None
    column = set_[0]
    value = getattr(filters, column)
    if column == "provider_code":
        params["g_provider"] = value
        return "s.given_facet = 'provider' AND s.given_value = (SELECT id FROM provider WHERE code = :g_provider)"
    params["g_facet"], params["g_value"] = column, FACET_VALUES[column].index(value)
    return "s.given_facet = :g_facet AND s.given_value = :g_value"


async def _stat_facets(
    conn: Any,
    lexeme: str,
    given: str = "s.given_facet = '' AND s.given_value = 0",
    params: dict[str, Any] | None = None,
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    rows = await conn.execute(
        text(
            "SELECT s.facet, s.value, s.n, v.code, v.name FROM search_stat s LEFT JOIN provider v "
            f"ON s.facet = 'provider' AND v.id = s.value WHERE s.lexeme = :lexeme AND {given} AND s.n > 0"
        ),
        {**(params or {}), "lexeme": lexeme},
    )
    facets: dict[str, list[dict[str, Any]]] = {f: [] for f in FACETS}
    total = 0
    for r in rows:
        if r.facet == "total":
            total = int(r.n)
        elif r.facet == "provider":
            facets["provider_code"].append({"value": r.code, "count": int(r.n), "label": r.name})
        else:
            facets[r.facet].append({"value": FACET_VALUES[r.facet][r.value], "count": int(r.n)})
    for entries in facets.values():
        entries.sort(key=lambda e: (-e["count"], str(e["value"])))
    return total, facets


async def _run_relaxed_postings(
    conn: Any,
    query: TextQuery,
    filters: Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    fields: tuple[str, ...],
) -> dict[str, Any] | None:
    """The relaxed reading (any word) ranked by relevance, from the postings: name hits, then resources with
    every word, then the sum of the words' ranks. None when the request cannot be served there."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    clauses = _posting_filters(filters, params)
    if clauses is None or SORTS.get(sort) is not None:
        return None
    params.update(words=query.alternatives, every=query.words, n_every=len(query.words), tier=NAME_TIER)
    where = " AND ".join(["lexeme = ANY(:words)", *clauses])
    matched = (
        "SELECT resource_id, bool_or(score >= :tier) AS name_hit, "
        "count(*) FILTER (WHERE lexeme = ANY(:every)) = :n_every AS every_hit, "
        "sum(CASE WHEN score >= :tier THEN score - :tier ELSE score END) AS rank, "
        "min(resource_class) AS resource_class, min(share_type) AS share_type, "
        "min(share_method_type) AS share_method_type, min(update_cycle) AS update_cycle, "
        "min(format_category) AS format_category, bool_or(open_to_public) AS open_to_public, "
        f"min(provider) AS provider FROM search_posting WHERE {where} GROUP BY resource_id"
    )
    rows = (
        await conn.execute(
            text(
                "SELECT h.*, (SELECT snapshot FROM published_snapshot s WHERE s.resource_id = h.resource_id) "
                f"AS snapshot FROM ({matched} ORDER BY name_hit DESC, every_hit DESC, rank DESC, resource_id "
                "LIMIT :limit OFFSET :offset) h ORDER BY h.name_hit DESC, h.every_hit DESC, h.rank DESC, h.resource_id"
            ),
            params,
        )
    ).all()
    items = [
        {
            "id": str(r.resource_id),
            **{f: r.snapshot.get(f) for f in fields},
            "rank": round(float(r.rank), 6),
            "name_hit": bool(r.name_hit),
        }
        for r in rows
    ]
    result: dict[str, Any] = {
        "items": items,
        "limit": limit,
        "offset": offset,
        "match": "any",
        "query_words": query.words,
    }
    if facets:
        result["total"], result["facets"] = await _posting_facets(conn, "", [], params, source=f"({matched})")
    else:
        count = text(f"SELECT count(*) FROM ({matched}) m")
        result["total"] = int((await conn.execute(count, params)).scalar_one())
    return result


def _posting_filters(filters: Filters, params: dict[str, Any]) -> list[str] | None:
    """Filters as conditions on postings' codes; None when one cannot be expressed there."""
    if filters.code is not None:
        return None
    clauses = []
    for column in _CODED:
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"{column} = :p_{column}")
            params[f"p_{column}"] = FACET_VALUES[column].index(value)
    if filters.share_types is not None:
        clauses.append("share_type = ANY(:p_share_types)")
        params["p_share_types"] = [FACET_VALUES["share_type"].index(v) for v in filters.share_types]
    if filters.open_to_public is not None:
        clauses.append("open_to_public = :p_open")
        params["p_open"] = filters.open_to_public
    if filters.provider_code is not None:
        clauses.append("provider = (SELECT id FROM provider WHERE code = :p_provider)")
        params["p_provider"] = filters.provider_code
    return clauses


async def _posting_page(conn: Any, lexeme: str, clauses: list[str], params: dict[str, Any]) -> list[Any]:
    where = " AND ".join(["lexeme = :lexeme", *clauses])
    return (
        await conn.execute(
            text(
                "SELECT h.resource_id, h.score, (SELECT snapshot FROM published_snapshot s "
                "WHERE s.resource_id = h.resource_id) AS snapshot FROM (SELECT resource_id, score "
                f"FROM search_posting WHERE {where} ORDER BY score DESC, resource_id LIMIT :limit OFFSET "
                ":offset) h "
                "ORDER BY h.score DESC, h.resource_id"
            ),
            {**params, "lexeme": lexeme},
        )
    ).all()


async def _posting_facets(
    conn: Any, lexeme: str, clauses: list[str], params: dict[str, Any], *, source: str | None = None
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Facet counts over a word's postings (after filters), or over `source`: one row per resource."""
    slots = [(facet, i, value) for facet, values in FACET_VALUES.items() for i, value in enumerate(values)]
    counters = ", ".join(
        f"count(*) FILTER (WHERE {'open_to_public' if value is True else 'NOT open_to_public'}) AS c{n}"
        if facet == "open_to_public"
        else f"count(*) FILTER (WHERE {facet} = {i}) AS c{n}"
        for n, (facet, i, value) in enumerate(slots)
    )
    if source is None:
        where = " AND ".join(["lexeme = :lexeme", *clauses])
        source = f"(SELECT * FROM search_posting WHERE {where})"
    rows = (
        await conn.execute(
            text(
                "SELECT v.code AS provider_code, v.name AS provider_name, f.* FROM (SELECT provider, "
                f"count(*) AS n, {counters} FROM {source} AS m GROUP BY provider) f "
                "JOIN provider v ON v.id = f.provider"
            ),
            {**params, "lexeme": lexeme},
        )
    ).all()
    return _fold_facets(rows, [(facet, value) for facet, _i, value in slots])


def _value_sql(column: str, value: Any) -> str:
    if value is None:
        return f"{column} IS NULL"
    if isinstance(value, bool):
        return column if value else f"NOT {column}"
    return f"{column} = '{value}'"  # values come from FACET_VALUES, never from the request


async def _facets(conn: Any, where_sql: str, params: dict[str, Any]) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    slots = [(facet, value) for facet, values in FACET_VALUES.items() for value in values]
    counters = ", ".join(f"count(*) FILTER (WHERE {_value_sql(f, v)}) AS c{i}" for i, (f, v) in enumerate(slots))
    rows = (
        await conn.execute(
            text(
                f"SELECT f.*, p.name AS provider_name FROM (SELECT provider_code, count(*) AS n, {counters} "
                f"FROM published_resource WHERE {where_sql} GROUP BY provider_code) f "
                "LEFT JOIN provider p ON p.code = f.provider_code"
            ),
            params,
        )
    ).all()
    return _fold_facets(rows, slots)


def _fold_facets(rows: list[Any], slots: list[tuple[str, Any]]) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Per-provider rows of per-value counters -> the total and each facet's values with counts."""
    sums = [0] * len(slots)
    for r in rows:
        m = r._mapping
        for i in range(len(slots)):
            sums[i] += m[f"c{i}"]
    facets: dict[str, list[dict[str, Any]]] = {f: [] for f in FACETS}
    for (facet, value), n in zip(slots, sums, strict=True):
        if n:
            facets[facet].append({"value": value, "count": n})
    facets["provider_code"] = [{"value": r.provider_code, "count": int(r.n), "label": r.provider_name} for r in rows]
    for entries in facets.values():
        entries.sort(key=lambda e: (-e["count"], str(e["value"])))
    return sum(int(r.n) for r in rows), facets
