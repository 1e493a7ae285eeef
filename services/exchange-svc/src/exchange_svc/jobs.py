"""exchange-svc's periodic jobs; each reads time from the unit of work's clock (tests call run_once)."""

from __future__ import annotations

from govshare_common.jobs import Job
from govshare_common.peer_register import forget_old_nonces

from exchange_svc import batch_runs, disputes, freshness

FRESHNESS_JOB = "exchange-freshness"
DISPUTES_JOB = "exchange-disputes-overdue"
NONCE_JOB = "exchange-federation-nonces"  # the peer calls' nonces past twice the replay window
# A replica killed mid-batch is found by the others too (and by itself when it starts again).
INTERRUPTED_BATCHES_JOB = "exchange-interrupted-batches"
INTERRUPTED_INTERVAL_SECONDS = 60.0
# Cycles are a day or longer; checking every ten minutes flags a missed one promptly.
INTERVAL_SECONDS = 600.0

JOBS: list[Job] = [
    Job(FRESHNESS_JOB, INTERVAL_SECONDS, freshness.mark_stale),
    Job(DISPUTES_JOB, INTERVAL_SECONDS, disputes.mark_overdue),
    Job(NONCE_JOB, INTERVAL_SECONDS, forget_old_nonces),
    Job(INTERRUPTED_BATCHES_JOB, INTERRUPTED_INTERVAL_SECONDS, batch_runs.mark_interrupted),
]
