"""Retention: a month past the profile's log_retention_years is dropped only behind a signed checkpoint, and
what remains still verifies from that checkpoint; the checkpoint verifies with the published public key."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from govshare_common.clock import FrozenClock
from govshare_common.settings import to_async_url

sys.path.insert(0, str(Path(__file__).parent))

from contracts import ExchangeAccess, envelope


def access(i: int, at: datetime) -> tuple[str, str, ExchangeAccess]:
    return (
        "exchange.access",
        f"a-{i}",
        ExchangeAccess(
            access_id=f"a-{i}",
            kind="feed",
            department_code="11320404MB1234502X",
            principal="connector-1",
            grant_id="g-1",
            resource_code="101001/000001",
            purpose="business_collaboration",
            rows=10,
            subjects_hashed=[],
            at=at,
        ),
    )


async def test_an_expired_month_is_dropped_only_behind_a_signed_checkpoint_and_the_rest_verifies(
    audit, database_url
) -> None:
    january, february = datetime(2019, 1, 15, 2, tzinfo=UTC), datetime(2019, 2, 10, 2, tzinfo=UTC)
    clock = FrozenClock(january)
    async with audit(clock=clock, peers=()) as a:
        await a.deliver("exchange", [envelope("exchange", i, *access(i, january), at=january) for i in range(1, 301)])
        clock.set(february)
        await a.deliver(
            "exchange", [envelope("exchange", i, *access(i, february), at=february) for i in range(301, 501)]
        )
        assert await a.scalar("SELECT count(*) FROM audit_checkpoint") == 0

        # Not yet five years: nothing goes.
        clock.set(datetime(2023, 12, 31, 2, tzinfo=UTC))
        assert await a.app.state.jobs.run_once("audit-retention")
        assert await a.scalar("SELECT count(*) FROM audit_entry") == 500

        # Five years after January 2019 ended (zhonglou keeps logs 5 years): January goes, February stays.
        clock.set(datetime(2024, 2, 5, 2, tzinfo=UTC))
        assert await a.app.state.jobs.run_once("audit-retention")
        assert await a.scalar("SELECT min(position) FROM audit_entry") == 301
        assert await a.scalar("SELECT to_regclass('audit_entry_y2019m01')") is None
        checkpoint = (await a.http.get("/api/v1/audit/checkpoints", headers=a.auditor())).json()["items"][0]
        assert checkpoint["position"] >= 300
        dropped = (await a.http.get("/api/v1/audit/retention", headers=a.auditor())).json()["dropped"]
        assert [(d["first_position"], d["last_position"], d["checkpoint_id"]) for d in dropped] == [
            (1, 300, checkpoint["id"])
        ]
        assert (await a.http.get("/api/v1/audit/entries/1", headers=a.auditor())).status_code == 404

        # The signed head checks out with the published key, by the published message format.
        jwk = (await a.http.get("/api/v1/audit/keys", headers=a.auditor())).json()["keys"][0]
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
        message = (
            f"govshare-audit-checkpoint:v1|{checkpoint['position']}|{checkpoint['hash']}|{checkpoint['recorded_at']}"
        )
        public.verify(bytes.fromhex(checkpoint["signature"]), message.encode())

        report = (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()
        assert report["ok"] is True, report
        assert report["from"] == 301 and report["anchor"] == "retention" and report["checkpoints_matched"] >= 1

        # What remains is still protected: a rewritten entry after the cut is found.
        owner = create_async_engine(
            to_async_url(database_url), connect_args={"server_settings": {"search_path": "audit"}}
        )
        try:
            async with owner.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE audit_entry SET body = convert_to(replace(convert_from(body, 'UTF8'), "
                        "'\"feed\"', '\"peek\"'), 'UTF8') WHERE position = 420"
                    )
                )
        finally:
            await owner.dispose()
        report = (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()
        assert report["ok"] is False and report["problem"]["position"] == 420
