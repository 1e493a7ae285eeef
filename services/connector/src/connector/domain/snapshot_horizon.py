"""Which logged transactions the initial snapshot already holds, so their changes are not sent twice.

The slot is created first and the table is read after, in one REPEATABLE READ transaction; every transaction
that committed in between is both in the snapshot and in the slot's stream. PostgreSQL's own snapshot
(`txid_current_snapshot()`: xmin, xmax and the transactions still running) says exactly which ones the read
saw; a logged transaction is skipped when its id is visible in that snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

_WRAP = 1 << 32


@dataclass(frozen=True)
class SnapshotHorizon:
    xmin: int
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> SnapshotHorizon:
        """'xmin:xmax:xip,xip,...' as txid_current_snapshot() and pg_current_snapshot() print it."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in sorted(self.running))}"

    def _widen(self, xid32: int) -> int:
        # The log carries 32-bit ids; the snapshot 64-bit ones. The id meant is the one nearest the snapshot.
        candidate = (self.xmax & ~(_WRAP - 1)) | (xid32 & (_WRAP - 1))
        if candidate > self.xmax + _WRAP // 2:
            candidate -= _WRAP
        elif candidate < self.xmax - _WRAP // 2:
            candidate += _WRAP
        return candidate

    def saw(self, xid32: int) -> bool:
        """True when the snapshot read already reflects this committed transaction's changes."""
        xid = self._widen(xid32)
        return xid < self.xmin or (xid < self.xmax and xid not in self.running)
