"""Integration tests: the runtime and the shell against a real (embedded) PostgreSQL."""
