"""The small pieces of the stack: demo runner, table, URL masking, ports, secrets."""

from __future__ import annotations

import json
import socket
import stat

import httpx
import pytest

from govshare_stack import demo, table
from govshare_stack.home import StackHome
from govshare_stack.ports import pick_ports, port_is_free, split_host_port
from govshare_stack.preflight import describe_database, mask_url


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(demo, "_REGISTRY", {})
    return demo._REGISTRY


def make_ctx(tmp_path, client):
    return demo.DemoContext(gateway_url="http://127.0.0.1:1", client=client, admin_password="pw", home=tmp_path)


async def test_demo_steps_run_in_order_once_and_credentials_accumulate(tmp_path, registry):
    calls: list[str] = []

    @demo.demo_step(20, "second")
    async def second(ctx: demo.DemoContext) -> None:
        calls.append("second")
        ctx.credentials["b"] = 2

    @demo.demo_step(10, "first")
    async def first(ctx: demo.DemoContext) -> None:
        calls.append("first")
        ctx.credentials["a"] = {"password": ctx.admin_password}

    state, creds = tmp_path / "state.json", tmp_path / "creds.json"
    async with httpx.AsyncClient() as client:
        result = await demo.run_demo(make_ctx(tmp_path, client), state, creds, report=lambda _: None)
        assert calls == ["first", "second"]
        assert result.ran == ["first", "second"]
        assert json.loads(creds.read_text()) == {"a": {"password": "pw"}, "b": 2}
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600

        again = await demo.run_demo(make_ctx(tmp_path, client), state, creds, report=lambda _: None)
    assert calls == ["first", "second"]
    assert again.skipped == ["first", "second"]
    assert again.credentials == {"a": {"password": "pw"}, "b": 2}


async def test_a_failed_step_is_retried_next_time_and_earlier_ones_are_not(tmp_path, registry):
    attempts = {"ok": 0, "flaky": 0}

    @demo.demo_step(1, "ok")
    async def ok(ctx: demo.DemoContext) -> None:
        attempts["ok"] += 1
        ctx.credentials["ok"] = True

    @demo.demo_step(2, "flaky")
    async def flaky(ctx: demo.DemoContext) -> None:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise RuntimeError("gateway said no")

    state, creds = tmp_path / "state.json", tmp_path / "creds.json"
    async with httpx.AsyncClient() as client:
        with pytest.raises(demo.DemoStepFailed, match="flaky"):
            await demo.run_demo(make_ctx(tmp_path, client), state, creds, report=lambda _: None)
        assert json.loads(creds.read_text()) == {"ok": True}
        result = await demo.run_demo(make_ctx(tmp_path, client), state, creds, report=lambda _: None)
    assert attempts == {"ok": 1, "flaky": 2}
    assert result.ran == ["flaky"] and result.skipped == ["ok"]


def test_a_step_name_cannot_be_taken_twice(registry):
    @demo.demo_step(1, "same")
    async def one(ctx: demo.DemoContext) -> None: ...

    with pytest.raises(ValueError, match="same"):

        @demo.demo_step(2, "same")
        async def two(ctx: demo.DemoContext) -> None: ...


def test_discover_skips_missing_packages_and_modules_without_demo():
    assert demo.discover(["no_such_package_here", "json"]) == []


def test_table_aligns_chinese_labels():
    rows = [["gateway", "http://x", "1", table.READY], ["中文名", "url-2", "22", table.DOWN]]
    lines = table.render(rows).splitlines()
    columns = {table.cell_width(line[: line.index(row[1])]) for line, row in zip(lines[2:], rows, strict=True)}
    assert len(columns) == 1


def test_mask_url_hides_only_the_password():
    assert mask_url("postgresql://app:s3cret@db:5432/govshare") == "postgresql://app:***@db:5432/govshare"
    assert mask_url("postgresql://postgres@/govshare?host=/tmp/x") == "postgresql://postgres@/govshare?host=/tmp/x"
    assert describe_database("postgresql://app:s3cret@db:6543/gs") == "database 'gs' at db:6543 as user 'app'"
    assert "socket /tmp/x" in describe_database("postgresql://postgres@/govshare?host=/tmp/x")


def test_pick_ports_prefers_the_given_ones_and_skips_busy_ones():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not port_is_free(taken)
        ports = pick_ports(3, [taken], exclude=[])
    assert taken not in ports and len(set(ports)) == 3
    assert split_host_port("kafka:19092", 9092) == ("kafka", 19092)
    assert split_host_port("[::1]:9093", 9092) == ("::1", 9093)
    assert split_host_port("kafka", 9092) == ("kafka", 9092)


def test_secrets_are_generated_once_with_mode_0600(tmp_path):
    home = StackHome(tmp_path / "home")
    home.prepare()
    value, created = home.secret("s", lambda: "generated")
    assert (value, created) == ("generated", True)
    assert home.secret("s", lambda: "other") == ("generated", False)
    assert stat.S_IMODE((home.secrets / "s").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.secrets.stat().st_mode) == 0o700


def test_home_defaults_to_dot_govshare_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert StackHome.from_env({}).root == tmp_path / ".govshare"
    assert StackHome.from_env({"GOVSHARE_HOME": "rel"}).root == tmp_path / "rel"
