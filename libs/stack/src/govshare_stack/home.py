"""The data folder of a local platform ($GOVSHARE_HOME, default ./.govshare): where everything lives,
the secrets kept there, and stack.json, the record of a running stack that `govshare status` reads."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StackHome:
    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackHome:
        env = os.environ if environ is None else environ
        return cls(Path(env.get("GOVSHARE_HOME") or ".govshare").expanduser().absolute())

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def demo_credentials(self) -> Path:
        return self.root / "demo-credentials.json"

    @property
    def demo_state(self) -> Path:
        return self.root / "demo-state.json"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.secrets.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.secrets, 0o700)

    def secret(self, name: str, generate: Callable[[], str] | None = None) -> tuple[str, bool]:
        """The secret kept in secrets/<name> (mode 0600), generated on first use.

        Returns (value, created): created is True only on the call that generated it.
        """
        path = self.secrets / name
        if path.exists():
            return path.read_text().strip(), False
        value = (generate or new_secret)()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its value
            return path.read_text().strip(), False
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value, True

    def read_stack(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_stack(self, data: Mapping[str, Any]) -> None:
        write_json(self.stack_file, data)

    def clear_stack(self, owner_pid: int) -> None:
        """Remove stack.json if it records the stack run by `owner_pid` (not someone else's)."""
        stack = self.read_stack()
        if stack is None or stack.get("supervisor_pid") == owner_pid:
            self.stack_file.unlink(missing_ok=True)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_password() -> str:
    # The gateway owns the password rules; its generator always satisfies them.
    from gateway.passwords import generate_password

    return generate_password()


def write_json(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)
