"""The rates actor: exchange rates through a port, resolved before an expense reaches the
splits actor (a shard never waits on the network).

Its parts:

- `messages` — the whole public interface: `GetRate`, `RateQuote`, the refusals
  (`rate_unavailable`, `invalid_rate`), `rates_key`, and the exact arithmetic edges and
  other actors share (`parse_rate`, `format_rate`, `convert`);
- `rules` — no IO: reading the ECB's XML safely, the TARGET calendar (which day's rate a
  day gets), cross rates through the euro, what to ask the feed for, the fixed table;
- `feed` — the port (`RatesFeed`), the ECB adapter (`EcbFeed`) and `SingleFlightFeed`
  (one fetch for concurrent asks, a cool-down after a failure);
- `store` — its SQL: rates per day, and the nearest day held on or before one;
- `actor` — the `Rates` actor, whose part `quotes` answers from the cache, the feed, then
  the fallbacks (the nearest day held, then the fixed table).
"""
