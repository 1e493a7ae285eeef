"""The gateway's access journal: an append-only file of every access record, written before it reaches the
database, so that no record is lost when PostgreSQL is down, when records arrive faster than they are written,
or when the gateway is killed.

Appending is one `write(2)` of one line to the current segment, no fsync: a killed process loses nothing that
was written (the kernel holds it), and a request does not wait on the disk. The reader hands out complete lines
from a position (segment, byte offset); the recorder stores the position it has written up to in the same
database transaction as the events, so each record reaches the outbox exactly once, across restarts. Segments
the position has passed are deleted. One process owns a journal folder at a time (an exclusive lock).
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("govshare.gateway.access")

SEGMENT_BYTES = 64 * 1024 * 1024
_SUFFIX = ".jsonl"


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class JournalBusy(RuntimeError):
    pass


class AccessJournal:
    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise JournalBusy(f"another gateway process writes the access journal in {folder}") from None
        # A new segment per start: whatever a killed writer left half-written stays at the end of an old one.
        self._segment = max(self.segments(), default=0) + 1
        self._fd = self._open(self._segment)
        self._size = 0

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.folder.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def _path(self, segment: int) -> Path:
        return self.folder / f"{segment:012d}{_SUFFIX}"

    def _open(self, segment: int) -> int:
        return os.open(self._path(segment), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)

    def append(self, line: bytes) -> None:
        if self._size >= self.segment_bytes:
            os.close(self._fd)
            self._segment += 1
            self._fd = self._open(self._segment)
            self._size = 0
        os.write(self._fd, line)
        self._size += len(line)

    @property
    def end(self) -> Position:
        return Position(self._segment, self._size)

    def first_position(self) -> Position:
        return Position(min(self.segments(), default=self._segment), 0)

    def read(self, start: Position, *, max_lines: int) -> tuple[list[bytes], Position]:
        """Up to `max_lines` complete lines from `start`, and the position after them. A segment the writer has
        left is read to its end; an incomplete last line there (a crash mid-write) is logged and passed over."""
        lines: list[bytes] = []
        pos = start
        while len(lines) < max_lines:
            path = self._path(pos.segment)
            try:
                with path.open("rb") as f:
                    f.seek(pos.offset)
                    chunk = f.read(max(64 * 1024, 512 * (max_lines - len(lines))))
            except FileNotFoundError:
                chunk = b""
            cut = chunk.rfind(b"\n") + 1
            if cut:
                for line in chunk[:cut].splitlines():
                    if line:
                        lines.append(line)
                pos = Position(pos.segment, pos.offset + cut)
                continue
            if pos.segment >= self._segment:
                break  # the writer's own segment: the rest has not been written yet
            if chunk:
                log.error("access journal segment %s ends in an incomplete line of %d bytes", path, len(chunk))
            later = [s for s in self.segments() if s > pos.segment]
            pos = Position(later[0] if later else self._segment, 0)
        return lines, pos

    def release_before(self, pos: Position) -> None:
        """Delete the segments wholly before `pos` (their every line is in the database)."""
        for segment in self.segments():
            if segment < pos.segment and segment != self._segment:
                self._path(segment).unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock)
