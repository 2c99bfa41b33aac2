-- Issue 17 (item 4): search and insight over a group's expenses. Owned by actors/splits.
-- A search pages newest date first by keyset on (spent_on, created_at, id) and the sums
-- group a filter's rows by category or month: this index answers both from the group's
-- live rows alone, the columns the sums read carried in it (an index-only scan for them).
CREATE INDEX IF NOT EXISTS splits_expenses_by_day
    ON splits_expenses (group_id, spent_on, created_at, id)
    INCLUDE (currency, category, amount)
    WHERE deleted_at IS NULL;
-- "Expenses of this person" and "this person's own shares": a member's lines, by expense.
CREATE INDEX IF NOT EXISTS splits_expense_lines_user ON splits_expense_lines (user_id, expense_id);
