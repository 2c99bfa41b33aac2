"""Helpers shared by the test suites: servers the tests start themselves."""
