"""splitgo's test suites."""
