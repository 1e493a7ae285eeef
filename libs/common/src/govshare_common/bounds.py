"""The ranges a caller's numbers and dates must lie in, one rule for every service.

An offset or a position is a PostgreSQL bigint at most; a year and a date are ones the platform can compute
with (working days, time zones and partitions need days on both sides). Outside these the caller gets a 422
naming the parameter instead of an overflow deep in a query. `tests/test_input_refusals.py` checks that every
integer of every OpenAPI document has both bounds and every date and date-time uses these types.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, WithJsonSchema

BIGINT_MAX = 2**63 - 1
# Paging further than this is not browsing: narrow the query instead.
MAX_OFFSET = 10_000_000
FIRST_YEAR = 1900
LAST_YEAR = 2199


def _day_in_range(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _moment_in_range(value: datetime) -> datetime:
    _day_in_range(value.date())
    return value


# The documents say so too, so a test can find a date that does not use these types.
YEARS_KEY = "x-govshare-years"
Day = Annotated[
    date,
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "format": "date", YEARS_KEY: [FIRST_YEAR, LAST_YEAR]}),
]
Moment = Annotated[
    datetime,
    AfterValidator(_moment_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", YEARS_KEY: [FIRST_YEAR, LAST_YEAR]}),
]
AwareMoment = Annotated[
    AwareDatetime,
    AfterValidator(_moment_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", YEARS_KEY: [FIRST_YEAR, LAST_YEAR]}),
]
