"""The splits actor: groups, expenses, balances and settle-up.

`messages.py` is its public interface. The pure rules: `shares.py` (split modes, payers,
debt simplifying), `rules.py` (validation, recurrence dates), `export.py` (the CSV),
`views.py` (rows as replies). `store/` holds its SQL, one module per feature. `actor.py`
is the `Splits` actor, composed of feature parts it holds as attributes, each in its own
module and each given the shard's runtime `Context`: `groups` (groups, members, invites),
`expenses`, `recurring` (copies of recurring expenses), `settling` (balances, the settle
plan, settlements), `activity` (comments, the activity log, the export), `summary`
(where a user stands across all their groups) and `reminders` (what a member owes, told).
"""
