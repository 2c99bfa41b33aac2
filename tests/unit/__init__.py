"""Unit tests: no server, no database, no network."""
