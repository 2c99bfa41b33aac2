"""Reading wallets: each currency's balance and what holds reserve, and the statement."""

from __future__ import annotations

from actors.payments import store
from actors.payments.ledger import STATEMENT_MAX
from actors.payments.messages import (
    Balance,
    GetStatement,
    GetWallet,
    InvalidPayment,
    StatementPage,
    WalletView,
)
from actors.payments.views import statement_entry
from actors.runtime import Context, row_cursor


class Wallets:
    """Answers what a user holds and what moved, from the ledger's tables."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def wallet(self, message: GetWallet) -> WalletView:
        rows = await store.wallet(self._pool, message.user_id)
        return WalletView(
            balances=[
                Balance(currency=row.currency, available=row.available, held=row.held)
                for row in rows
            ]
        )

    async def statement(self, message: GetStatement) -> StatementPage:
        limit = message.limit
        if type(limit) is not int or not 1 <= limit <= STATEMENT_MAX:
            raise InvalidPayment(
                f"A page holds 1 to {STATEMENT_MAX} entries.", details={"field": "$.limit"}
            )
        before = row_cursor(message.cursor)
        # one more than asked: whether there is a next page, without a count
        rows = await store.statement(self._pool, message.user_id, limit=limit + 1, before=before)
        page = rows[:limit]
        items = [statement_entry(row, message.user_id) for row in page]
        more = len(rows) > limit
        return StatementPage(items=items, next_cursor=str(page[-1].entry_id) if more else None)
