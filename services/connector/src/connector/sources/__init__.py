"""Where changes come from: a PostgreSQL write-ahead log, a watermark column in any database, a 前置库 table."""
