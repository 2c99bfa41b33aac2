-- Issue 17 (items 5 and 6): recurring expenses that end, and the simplify switch. Owned by
-- actors/splits.
--
-- A recurring expense may end on a day (`until`: no copy is dated after it) or after a
-- number of times (`times`: the original and its copies together), never both. An expense
-- with no row here recurs until it is stopped (or 2099-12-31, where every series ends).
CREATE TABLE splits_recurring_ends (
    expense_id text PRIMARY KEY REFERENCES splits_expenses (id),
    until      date,
    times      integer CHECK (times BETWEEN 1 AND 1000),
    CHECK ((until IS NULL) <> (times IS NULL))
);

-- The copies of one recurring expense (counted against `times`; listed beside it).
CREATE INDEX splits_expenses_copies ON splits_expenses (recurring_from)
    WHERE recurring_from IS NOT NULL;

-- The settle plan of a group: simplified (the fewest transfers, the default, as before) or
-- who owes whom directly (each pays back the people who paid for them).
ALTER TABLE splits_groups ADD COLUMN simplify boolean NOT NULL DEFAULT true;
