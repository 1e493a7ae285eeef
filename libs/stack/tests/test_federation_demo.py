"""`govshare up --demo --federation` end to end, as a person runs it: two real platforms on one machine, 常州市
and 钟楼区, each with its own embedded PostgreSQL, broker and services, peered both ways; seen only through
their two public doors.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
from stack_helpers import login, wait_until
from test_up import assert_nothing_left

from govshare_stack.federation_demo import CITY_CIVIL_CODE, CITY_RESOURCES, FEDERATION_READY

CITY, DISTRICT = "320400", "320404"


def catalog(door: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(f"{door}/api/v1/catalog/resources", params={"limit": 200}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def origin_of(item: dict[str, Any]) -> str | None:
    return (item.get("origin") or {}).get("division_code")


def kill_left_over(home: Path) -> None:
    """A child platform of a run that failed midway: its parts, as the runner's cleanup does for its own."""
    try:
        stack = json.loads((home / "stack.json").read_text())
    except (OSError, ValueError):
        return
    for pid in [stack.get("supervisor_pid"), *(s.get("pid") for s in stack.get("services", {}).values())]:
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for pid in [
        stack.get("door", {}).get("pid"),
        stack.get("kafka", {}).get("pid"),
        stack.get("postgres", {}).get("pid"),
    ]:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_two_platforms_peered_both_ways_with_the_catalog_cascading_up_and_down(govshare, real_services):
    root = govshare.data_dir / "home"
    city_door, district_door = f"http://127.0.0.1:{govshare.free_port()}", f"http://127.0.0.1:{govshare.free_port()}"
    env = govshare.env(
        root,
        GOVSHARE_GATEWAY_PORT=city_door.rsplit(":", 1)[1],
        GOVSHARE_DISTRICT_GATEWAY_PORT=district_door.rsplit(":", 1)[1],
    )
    run = govshare.up(env, "--demo", "--federation")
    try:
        run.wait_output(FEDERATION_READY, timeout=600, failed="federation demo failed")
        out = run.output()
        for door in (city_door, district_door):
            assert f"{door}/console/" in out
        assert "stand-in" in out and "xiangyang" in out
        homes = {CITY: root / "changzhou", DISTRICT: root / "zhonglou"}
        stacks = {code: json.loads((home / "stack.json").read_text()) for code, home in homes.items()}
        doors = {CITY: city_door, DISTRICT: district_door}
        assert {code: s["gateway_url"] for code, s in stacks.items()} == doors
        # two platforms: two databases, two brokers, two identities
        assert stacks[CITY]["postgres"]["pgdata"] != stacks[DISTRICT]["postgres"]["pgdata"]
        assert stacks[CITY]["kafka"]["bootstrap_servers"] != stacks[DISTRICT]["kafka"]["bootstrap_servers"]
        ident = {
            code: httpx.get(f"{door}/.well-known/govshare-platform", timeout=30).json() for code, door in doors.items()
        }
        assert {code: i["division_code"] for code, i in ident.items()} == {CITY: CITY, DISTRICT: DISTRICT}
        assert ident[CITY]["public_key"] != ident[DISTRICT]["public_key"]
        admin = {
            code: login(doors[code], "admin", (homes[code] / "secrets" / "admin-password").read_text().strip())
            for code in doors
        }

        # peered both ways, each with the other's real public key
        for here, there, relation in ((CITY, DISTRICT, "child"), (DISTRICT, CITY, "parent")):
            r = httpx.get(f"{doors[here]}/api/v1/catalog/federation/peers", headers=admin[here], timeout=30)
            assert r.status_code == 200, r.text
            [peer] = r.json()["items"]
            assert (peer["division_code"], peer["relation"], peer["base_url"]) == (there, relation, doors[there])
            assert peer["public_key"] == ident[there]["public_key"]

        # up: the district's demo catalog, all of it, at the city with its origin
        own = {i["id"] for i in catalog(district_door, admin[DISTRICT]) if origin_of(i) is None}
        assert len(own) >= 5

        def up_converged() -> bool:
            return {i["id"] for i in catalog(city_door, admin[CITY]) if origin_of(i) == DISTRICT} == own

        wait_until(up_converged, "the district's catalog at the city")

        # down: the city's cross-level resource, and only that one, at the district — found by its departments
        cross_level = [b["name"] for b in CITY_RESOURCES if b["cross_level"]]
        this_level = [b["name"] for b in CITY_RESOURCES if not b["cross_level"]]
        from_city = [i["name"] for i in catalog(district_door, admin[DISTRICT]) if origin_of(i) == CITY]
        assert from_city == cross_level and not set(this_level) & set(from_city)
        users = json.loads((homes[DISTRICT] / "demo-credentials.json").read_text())["users"]
        department = login(district_door, "mzj_admin", users["mzj_admin"]["password"])
        r = httpx.get(
            f"{district_door}/api/v1/catalog/search", params={"q": "最低生活保障"}, headers=department, timeout=30
        )
        assert r.status_code == 200, r.text
        assert [i["name"] for i in r.json()["items"] if origin_of(i) == CITY] == cross_level

        # the demo's cross-level request: made at the district, approved at the city, seen approved at home
        (city_item,) = [i for i in catalog(district_door, admin[DISTRICT]) if origin_of(i) == CITY]
        asked_for = city_item["code"]  # the district's listing shows it by the code a department applies with
        r = httpx.get(f"{district_door}/api/v1/requests", params={"resource_code": asked_for}, headers=department)
        assert r.status_code == 200, r.text
        (home,) = r.json()["items"]
        assert (home["state"], home["provider_code"], home["profile"]) == ("approved", CITY_CIVIL_CODE, "xiangyang")
        assert "holds a grant from" in out

        for code in doors:
            stacks[code] = json.loads((homes[code] / "stack.json").read_text())
        # Ctrl-C (the terminal's SIGINT reaches only this process: each platform runs in its own session)
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(180) == 0, run.output()
        for code, stack in stacks.items():
            assert_nothing_left(govshare, stack)
            assert not (homes[code] / "stack.json").exists()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(30)
        for home in (root / "changzhou", root / "zhonglou"):
            kill_left_over(home)
