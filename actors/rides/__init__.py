"""The rides actor: drivers, live locations, dispatch with offers, fares held and captured.

Its parts:

- `messages` — the whole public interface: commands, replies, events, errors;
- `fares` — prices, distances and surge with no IO;
- `dispatch` — the geo index of drivers with no IO (nearest, count within);
- `store` — its SQL (drivers, rides, the timeline, ratings);
- `actor` — the `Rides` actor (mailbox and handlers), composed of its feature parts,
  each given one `context` (the runtime's `Context` — pool, clock, transactions, messages,
  timers — with the fare table): `drivers` (the live map, who is free), `dispatcher`
  (estimates and requests) on its base `offers` (offers one driver at a time), `trips`
  (arrive, start, complete, cancel, rate, and reading rides);
- `state` — what the parts keep in memory, and the RideUpdated a step publishes;
- `views` — a ride as the API shows it;
- `regions` — rides by region with no IO: the region owning a point, border membership,
  the route's key (SPLITGO_RIDE_REGIONS; empty: one shard as before);
- `regional` — with regions, a region shard's pings, handovers and border feed, and the
  desks that hand messages naming no place to the owning region (issue 20).
"""
