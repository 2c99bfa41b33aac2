-- Issue 17: exchange rates, owned by actors/rates. The cache of what the rates feed
-- published: one row per currency per day, as units of `currency` per 1 EUR (the ECB's
-- reference rates; `source` names the feed). The actor answers from it, and falls back to
-- the nearest day it holds when the feed cannot be reached. `fetched_at` is when the rate
-- was first fetched (a corrected rate replaces it, with its own time).
CREATE TABLE exchange_rates (
    source     text NOT NULL,
    day        date NOT NULL,
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    rate       numeric NOT NULL CHECK (rate > 0),
    fetched_at timestamptz NOT NULL,
    -- also the index of "the latest day of a source on or before a day"
    PRIMARY KEY (source, day, currency)
);
