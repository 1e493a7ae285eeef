"""First start: one platform administrator, `admin`, whose password is configured or generated once."""

from __future__ import annotations

import logging
import sys
import uuid

from sqlalchemy import text

from govshare_common.db import UnitOfWork

from gateway.passwords import complexity_problems, generate_password, hash_password

log = logging.getLogger("govshare.gateway.bootstrap")

ADMIN_USERNAME = "admin"


async def ensure_admin(uow: UnitOfWork, configured_password: str | None) -> None:
    await uow.execute(text("SELECT pg_advisory_xact_lock(7106)"))
    exists = (
        await uow.execute(text("SELECT 1 FROM app_user WHERE username = :u"), {"u": ADMIN_USERNAME})
    ).scalar_one_or_none()
    if exists:
        return
    if configured_password:
        problems = complexity_problems(configured_password)
        if problems:
            raise SystemExit(
                "GOVSHARE_ADMIN_PASSWORD 不符合密码复杂度要求（" + "；".join(problems) + "）/ "
                "GOVSHARE_ADMIN_PASSWORD does not meet the password rules"
            )
        password = configured_password
    else:
        password = generate_password()
        # Printed once, to the terminal only — never through the logger, whose output is kept.
        print(
            f"govshare: 已创建平台管理员 admin，初始密码 / initial admin password: {password}",
            file=sys.stdout,
            flush=True,
        )
    await uow.execute(
        text(
            "INSERT INTO app_user (id, username, display_name, roles, password_hash) "
            "VALUES (:id, :u, '平台管理员', ARRAY['platform_admin'], :h)"
        ),
        {"id": uuid.uuid4(), "u": ADMIN_USERNAME, "h": hash_password(password)},
    )
    log.info("created the platform administrator account 'admin'")
