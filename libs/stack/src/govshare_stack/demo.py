"""Demo seeding for `govshare up --demo`: an ordered registry of async steps that fill a fresh platform
with departments, users, resources … through the gateway API, like any client would.

A service package adds its steps in `<module>/demo.py`:

    from govshare_stack.demo import DemoContext, demo_step

    @demo_step(20, "catalog.sample-resources")
    async def sample_resources(ctx: DemoContext) -> None:
        r = await ctx.client.post("/api/catalog/resources", json=..., headers=...)
        ctx.credentials["catalog-demo"] = {...}

Steps run in (order, name) order. Each must be idempotent on its own (look before creating), and the
runner also records finished step names in $GOVSHARE_HOME/demo-state.json and skips them next time. What
steps put in `ctx.credentials` is merged into $GOVSHARE_HOME/demo-credentials.json (mode 0600).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from govshare_stack.home import write_json

StepFn = Callable[["DemoContext"], Awaitable[None]]


@dataclass
class DemoContext:
    gateway_url: str
    client: httpx.AsyncClient  # base_url is the gateway, so steps may use paths like "/api/..."
    admin_password: str
    home: Path
    credentials: dict[str, Any] = field(default_factory=dict)
    service_urls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    fn: StepFn


_REGISTRY: dict[str, DemoStep] = {}


def demo_step(order: int, name: str) -> Callable[[StepFn], StepFn]:
    """Register `async def step(ctx: DemoContext) -> None` to run at position `order` under `name`."""

    def register(fn: StepFn) -> StepFn:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing.fn) != _qualname(fn):
            raise ValueError(f"demo step {name!r} is registered twice: {_qualname(existing.fn)}, {_qualname(fn)}")
        _REGISTRY[name] = DemoStep(order, name, fn)
        return fn

    return register


def registered_steps() -> list[DemoStep]:
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def discover(modules: Iterable[str]) -> list[str]:
    """Import `<module>.demo` for each module that has one; returns the ones imported."""
    found: list[str] = []
    modules = list(modules)
    if "gateway" in modules:  # the real platform (not a stand-in set of services in the stack's own tests)
        importlib.import_module("govshare_stack.demo_steps")
    for module in modules:
        name = f"{module}.demo"
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside the package: let it surface
                raise
            continue  # the service package itself is not installed
        if spec is None:
            continue
        importlib.import_module(name)
        found.append(name)
    return found


class DemoStepFailed(Exception):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"demo step {step!r} failed: {type(cause).__name__}: {cause}")
        self.step = step


@dataclass
class DemoResult:
    ran: list[str]
    skipped: list[str]
    credentials: dict[str, Any]


async def run_demo(
    ctx: DemoContext,
    state_path: Path,
    credentials_path: Path,
    steps: list[DemoStep] | None = None,
    report: Callable[[str], None] = print,
) -> DemoResult:
    """Run every step not yet recorded as done. Raises DemoStepFailed at the first failing step; the steps
    before it stay recorded, so the next run resumes there."""
    state = _read_json(state_path)
    done: dict[str, str] = dict(state.get("completed", {}))
    ctx.credentials = {**_read_json(credentials_path), **ctx.credentials}
    result = DemoResult(ran=[], skipped=[], credentials=ctx.credentials)
    try:
        for step in registered_steps() if steps is None else steps:
            if step.name in done:
                result.skipped.append(step.name)
                continue
            report(f"  demo: {step.name} …")
            try:
                await step.fn(ctx)
            except Exception as exc:
                raise DemoStepFailed(step.name, exc) from exc
            done[step.name] = datetime.now(UTC).isoformat(timespec="seconds")
            write_json(state_path, {"completed": done})
            result.ran.append(step.name)
    finally:
        # Credentials made by the steps that did succeed are worth keeping even when a later one failed.
        write_json(credentials_path, ctx.credentials, mode=0o600)
    return result


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _qualname(fn: StepFn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
