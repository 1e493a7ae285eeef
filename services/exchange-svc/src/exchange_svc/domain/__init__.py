"""exchange-svc's rules, pure: no web framework, database or broker here (checked by the import rules)."""
