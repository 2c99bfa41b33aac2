"""`python -m tests.load` (`make load`): a node under a realistic mix of traffic.

A node is started on the embedded default (`run.py`, a fresh data folder), a population is
set up through the HTTP API (users signed up and logged in, groups, funded wallets, drivers
online near a city centre), and then a load generator in a process of its own drives a
weighted mix for a fixed time (reads, expenses, transfers, ride requests and cancels,
driver pings, with logins and sign-ups at a low steady rate), then the reads alone.
Per route: requests, rate, p50/p99 and every error; results in tests/load/results/.

population.py  the set-up (no load measured)
mix.py         routes, weights and one action per kind of request (used by the generator)
generator.py   the load-generating process: `python -m tests.load.generator --plan FILE`
report.py      tables
"""
