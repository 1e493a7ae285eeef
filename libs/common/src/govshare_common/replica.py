"""Which process of a service this is: the name its replica leaves on the cursors and job ticks it moves, so the
platform office sees which replica handles which partition and which ran a job's last tick."""

from __future__ import annotations

import os
import socket


def replica_name() -> str:
    """host:pid — on Kubernetes the host is the pod; asked each time, since a worker is forked after import."""
    return f"{socket.gethostname()}:{os.getpid()}"
