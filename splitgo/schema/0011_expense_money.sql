-- Issue 17 (items 1 and 2): expenses in another currency than their group's, and itemized
-- bills. Owned by actors/splits.
--
-- An expense in a foreign currency keeps the rate it was converted at (units of the group's
-- currency per 1 unit of its own), where that rate came from, the rate's own day, and the
-- amount in the group's currency. Its lines keep their converted amounts (group_paid,
-- group_owed: each set sums exactly to group_amount). An expense with no rate has NULL
-- there: one in the group's currency counts 1:1, and one in a foreign currency stored
-- before this step (or imported, with no rate) is "not convertible": it stays apart, in
-- its own currency, in the converted balances too.
ALTER TABLE splits_expenses
    ADD COLUMN rate         numeric CHECK (rate > 0),
    ADD COLUMN rate_source  text CHECK (rate_source IN ('given', 'derived', 'ecb', 'cache', 'fixed')),
    ADD COLUMN rate_day     date,
    ADD COLUMN group_amount bigint CHECK (group_amount >= 0),
    -- an itemized bill: the items as given and as priced, its tax, tip and how they spread
    ADD COLUMN items        jsonb,
    ADD COLUMN tax          bigint CHECK (tax >= 0),
    ADD COLUMN tip          bigint CHECK (tip >= 0),
    ADD COLUMN spread       text CHECK (spread IN ('proportional', 'equal')),
    ADD CONSTRAINT splits_expenses_rate_whole
        CHECK ((rate IS NULL) = (rate_source IS NULL) AND (rate IS NULL) = (group_amount IS NULL));

ALTER TABLE splits_expense_lines
    ADD COLUMN group_paid bigint CHECK (group_paid >= 0),
    ADD COLUMN group_owed bigint CHECK (group_owed >= 0);

-- A settlement in a foreign currency carries its rate the same way.
ALTER TABLE splits_settlements
    ADD COLUMN rate         numeric CHECK (rate > 0),
    ADD COLUMN rate_source  text CHECK (rate_source IN ('given', 'derived', 'ecb', 'cache', 'fixed')),
    ADD COLUMN rate_day     date,
    ADD COLUMN group_amount bigint CHECK (group_amount >= 0);

-- Each member's net converted into the group's currency at the stored rates, kept in the
-- same transaction as splits_balances. `currency` is the group's, except for what is not
-- convertible (see above), which stays apart in its own currency.
CREATE TABLE splits_converted (
    group_id text NOT NULL REFERENCES splits_groups (id),
    user_id  text NOT NULL,
    currency text NOT NULL,
    net      bigint NOT NULL,  -- > 0: owed to them
    PRIMARY KEY (group_id, user_id, currency)
);

-- The converted settle plan last shown, as splits_plans keeps the plain one.
CREATE TABLE splits_converted_plans (
    group_id text NOT NULL REFERENCES splits_groups (id),
    currency text NOT NULL,
    plan     jsonb NOT NULL,
    PRIMARY KEY (group_id, currency)
);

-- Existing data: nothing had a rate yet, so what is in the group's currency counts 1:1 and
-- the rest is not convertible: the converted balances are exactly the per-currency ones.
INSERT INTO splits_converted (group_id, user_id, currency, net)
SELECT group_id, user_id, currency, net FROM splits_balances;
