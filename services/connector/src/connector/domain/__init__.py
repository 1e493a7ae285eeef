"""The connector's rules, pure: decoding the write-ahead log, cutting batches, mapping rows, reconciling."""
