"""Failures the `govshare` command reports as one paragraph for a person, never as a traceback."""

from __future__ import annotations


class StackError(Exception):
    """Something the operator must fix before the stack can start (configuration, a busy port). Exit 2."""

    exit_code = 2


class StartupFailed(StackError):
    """The stack was started but did not come up (a service crashed or was not ready in time). Exit 1."""

    exit_code = 1


class BackupFailed(StackError):
    """A backup or restore began and could not finish (pg_dump or pg_restore failed, positions differ). Exit 1."""

    exit_code = 1
