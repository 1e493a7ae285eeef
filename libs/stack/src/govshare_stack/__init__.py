"""govshare_stack: the `govshare` command, which runs the whole platform on one machine, and the embedded
PostgreSQL + Tansu API that test fixtures use (`start_postgres`, `start_broker`)."""

from govshare_stack.embedded import Broker, EmbeddedError, EmbeddedPostgres, start_broker, start_postgres

__all__ = ["Broker", "EmbeddedError", "EmbeddedPostgres", "start_broker", "start_postgres"]
