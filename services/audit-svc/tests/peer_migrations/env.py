from alembic import context

from govshare_common.migrations import run_env

run_env(context)
