"""End-to-end tests: a real node process over HTTP."""
