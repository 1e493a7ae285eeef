"""The cyclic garbage collector, settled for a long-running service once it has started.

A started service holds a million or so objects that live as long as the process (modules, the app, the
engine, the registries). Python's collector walks all of them again in every full collection, and the event
pipeline triggers full collections often: a consumer keeps thousands of envelopes alive across a batch, the
relay thousands of rows, and every survivor counts towards the next full pass. Measured in
bench/outbox_throughput.py, the collector took ≈ 30 % of the consumer's CPU and ≈ 15 % of the writer's
and relay's, most of it re-walking the startup heap. Freezing that heap (gc.freeze: moved to a generation
the collector never scans) and collecting the young generation less often leaves only the objects of the
work itself to scan. Reference counting still frees nearly everything at once; cycles are still found.
"""

from __future__ import annotations

import gc

# Allocations between young collections (Python's default is 700): a batch of 1,000 events allocates tens of
# thousands of objects that die with it, so a bigger young generation lets most die before any scan.
YOUNG_GENERATION_THRESHOLD = 20_000


_settled = False


def settle_after_startup() -> None:
    """Collect what startup left behind, freeze the rest out of the collector's sight, and space the young
    collections further apart. Called when a service has started; done once per process, since a process that
    starts service after service (the tests, one platform in one process) would otherwise pay a full collection
    of its whole heap at every start and freeze every earlier service's garbage for good."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
