"""Stand-in demo steps: count their runs in $GOVSHARE_HOME so tests can see what was skipped."""

from __future__ import annotations

import json

from govshare_stack.demo import DemoContext, demo_step


@demo_step(10, "fake.check-gateway")
async def check_gateway(ctx: DemoContext) -> None:
    response = await ctx.client.get("/readyz")
    response.raise_for_status()
    counter = ctx.home / "fake-demo-runs.json"
    runs = json.loads(counter.read_text()) if counter.exists() else 0
    counter.write_text(json.dumps(runs + 1))
    ctx.credentials["fake-admin"] = {"username": "admin", "password": ctx.admin_password}
