"""The door's access journal: the JSON lines nginx appends, one per request, read from a position.

nginx writes `current.jsonl` in the journal folder, one `write(2)` per line, unbuffered: a killed nginx or
gateway loses nothing that was written. The shipper (`access_log`) reads complete lines from a position
(segment, byte offset) and stores the position it has shipped up to in the same transaction as the records.
`current.jsonl` is the segment after the highest numbered one; when it has grown past `SEGMENT_BYTES` and is
shipped, it is renamed to its number and nginx is told to reopen its log (SIGUSR1), so a position stays valid
across the rename. A numbered segment is passed over only when it is read to its end and has not changed for
`SETTLE_SECONDS` (nginx workers write to the old file until they have reopened). Shipped segments are deleted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("govshare.gateway.access")

SEGMENT_BYTES = 64 * 1024 * 1024
SETTLE_SECONDS = 5.0
CURRENT = "current.jsonl"
_NGINX_PIDS = "nginx.*.pid"


def nginx_pid_file(folder: Path, pid: int) -> Path:
    """Where an nginx writing into the journal in `folder` leaves its pid: one file per nginx, since several
    may share a journal, and every one of them must reopen its log after a rotation."""
    return folder / f"nginx.{pid}.pid"


_SUFFIX = ".jsonl"


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class DoorJournal:
    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock: int | None = None

    def try_lock(self) -> bool:
        """Become the one shipper of this folder (of however many gateway processes run); False if another is."""
        if self._lock is not None:
            return True
        fd = os.open(self.folder / ".shipper.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.folder.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def current_segment(self) -> int:
        return max(self.segments(), default=0) + 1

    def _path(self, segment: int) -> Path:
        numbered = self.folder / f"{segment:012d}{_SUFFIX}"
        if segment >= self.current_segment() and not numbered.exists():
            return self.folder / CURRENT
        return numbered

    def first_position(self) -> Position:
        return Position(min(self.segments(), default=self.current_segment()), 0)

    def end(self) -> Position:
        try:
            size = (self.folder / CURRENT).stat().st_size
        except FileNotFoundError:
            size = 0
        return Position(self.current_segment(), size)

    def read(self, start: Position, *, max_lines: int) -> tuple[list[bytes], Position]:
        """Up to `max_lines` complete lines from `start`, and the position after them."""
        lines: list[bytes] = []
        pos = start
        while len(lines) < max_lines:
            path = self._path(pos.segment)
            try:
                with path.open("rb") as f:
                    f.seek(pos.offset)
                    chunk = f.read(max(64 * 1024, 1024 * (max_lines - len(lines))))
                    settled = path.name != CURRENT and time.time() - os.fstat(f.fileno()).st_mtime > SETTLE_SECONDS
            except FileNotFoundError:
                chunk, settled = b"", path.name != CURRENT
            cut = chunk.rfind(b"\n") + 1
            if cut:
                lines.extend(line for line in chunk[:cut].splitlines() if line)
                pos = Position(pos.segment, pos.offset + cut)
                continue
            if not settled:
                break  # the segment nginx writes (or wrote a moment ago): the rest is not there yet
            if chunk:
                log.error("access journal segment %s ends in an incomplete line of %d bytes", path, len(chunk))
            later = [s for s in self.segments() if s > pos.segment]
            pos = Position(later[0] if later else self.current_segment(), 0)
        return lines, pos

    def release_before(self, pos: Position) -> None:
        """Delete the numbered segments wholly before `pos` (their every line is in the database)."""
        for segment in self.segments():
            if segment < pos.segment:
                (self.folder / f"{segment:012d}{_SUFFIX}").unlink(missing_ok=True)

    def rotate_if_due(self, shipped: Position) -> None:
        """Start a new current segment when the current one is large and shipped to its end."""
        current = self.folder / CURRENT
        try:
            size = current.stat().st_size
        except FileNotFoundError:
            return
        if size < self.segment_bytes or shipped != Position(self.current_segment(), size):
            return
        pids = {}
        for pid_file in self.folder.glob(_NGINX_PIDS):
            try:
                pids[pid_file] = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
        if not pids:
            return  # no nginx to reopen its log: keep writing where it writes
        number = self.current_segment()
        current.rename(self.folder / f"{number:012d}{_SUFFIX}")
        for pid_file, pid in pids.items():
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pid_file.unlink(missing_ok=True)  # an nginx killed before it could remove its file

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
