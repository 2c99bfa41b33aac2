"""Reading wallets: each currency's balance and what holds reserve, and the statement.

Hot wallets (issue 20, shared/DESIGN.md "State lives with its owner"): the payments shard a
user's id routes to keeps their wallet view and the first page of their statement in its
memory (the runtime's `Resident`: idle passivation, the node's memory budget, emptied when
the shard stops or its lease came back).

A wallet has more than one writer: a transfer's payee is credited by the PAYER's shard, a
hold is captured on the shard its id routes to, a top-up on its own. So a copy is never
trusted on its own: it carries the marks of the user's wallet rows when it was read (each
row's id and xmin: `store.Marks`), and every read first reads the marks again (one index
scan, no join, no sum) and answers from memory only when they are unchanged. Every change
of a wallet rewrites its row in the changing transaction (a posting updates its balance,
a hold placed or closed touches it: store/holds.py) and a new wallet adds a row, so equal
marks mean nothing committed on the wallet since the copy was read: a copy can be older
than a write still in flight, never older than one that committed before the read began.
A copy is also dropped after `MAX_AGE_SECONDS`, so a row's xmin could never come round to
the same transaction id again while a copy that saw it is still served.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.payments import store
from actors.payments.ledger import STATEMENT_MAX
from actors.payments.messages import (
    Balance,
    GetStatement,
    GetWallet,
    InvalidPayment,
    StatementEntry,
    StatementPage,
    WalletView,
)
from actors.payments.views import statement_entry
from actors.runtime import Context, row_cursor
from actors.runtime.resident import Resident

HOLDER = "payments_wallets"
IDLE_SECONDS = 300.0  # a copy unread this long is dropped
MAX_AGE_SECONDS = 300.0  # and one read this long ago is read again, however often it is used
# what a copy's size is estimated from (tests/bench/wallets_bench.py measures it)
BYTES_PER_COPY = 300
BYTES_PER_BALANCE = 200
BYTES_PER_LINE = 560
# the most statement lines a copy keeps (a first page of the default 50, and one more)
LINES_KEPT_MAX = 51


@dataclass(slots=True)
class WalletCopy:
    """What the owner shard keeps of one user's wallets, and the marks it was read at.

    `lines` are the newest statement lines as shown, with their entry ids (a page's cursor),
    read with LIMIT `asked` (so fewer than `asked` means there are no more); None until a
    first page is read.
    """

    marks: store.Marks
    read_at: float
    view: WalletView | None = None
    lines: tuple[StatementEntry, ...] | None = None
    line_ids: tuple[int, ...] = ()
    asked: int = 0


def copy_size(copy: WalletCopy) -> int:
    """Bytes a copy holds, estimated cheaply (measured by tests/bench/wallets_bench.py)."""
    balances = 0 if copy.view is None else len(copy.view.balances)
    lines = 0 if copy.lines is None else len(copy.lines)
    return BYTES_PER_COPY + BYTES_PER_BALANCE * balances + BYTES_PER_LINE * lines


class Wallets:
    """Answers what a user holds and what moved: from the owner's checked copy, else from
    the ledger's tables."""

    def __init__(self, context: Context, *, hot: bool = True) -> None:
        self._context = context
        self._pool = context.pool
        self._hot = hot

    def _held(self) -> Resident[str, WalletCopy]:
        # made on first use (the shard is running then), the same one after
        return self._context.resident(HOLDER, size=copy_size, idle=IDLE_SECONDS)

    async def _checked(self, user_id: str) -> tuple[WalletCopy | None, store.Marks | None]:
        """The kept copy if it is still the wallet (its marks unchanged); else None and the
        marks read now (None: nothing is kept, or this shard does not own the user)."""
        if not self._hot or not self._context.owns(user_id):
            return None, None
        holder = self._held()
        copy = holder.get(user_id)
        if copy is None:
            return None, None
        marks = await store.wallet_marks(self._pool, user_id)
        if marks == copy.marks and self._context.clock() - copy.read_at < MAX_AGE_SECONDS:
            return copy, marks
        holder.drop(user_id)
        return None, marks

    def _keep(self, user_id: str, copy: WalletCopy) -> None:
        if self._hot and self._context.owns(user_id):
            self._held().put(user_id, copy)

    async def wallet(self, message: GetWallet) -> WalletView:
        user_id = message.user_id
        copy, _marks = await self._checked(user_id)
        if copy is not None and copy.view is not None:
            return copy.view
        marks, rows = await store.marked_wallet(self._pool, user_id)
        view = WalletView(
            balances=[
                Balance(currency=row.currency, available=row.available, held=row.held)
                for row in rows
            ]
        )
        if copy is not None and copy.marks == marks:  # the statement kept is still right
            copy.view = view
            self._keep(user_id, copy)
        else:
            self._keep(user_id, WalletCopy(marks, self._context.clock(), view=view))
        return view

    async def statement(self, message: GetStatement) -> StatementPage:
        limit = message.limit
        if type(limit) is not int or not 1 <= limit <= STATEMENT_MAX:
            raise InvalidPayment(
                f"A page holds 1 to {STATEMENT_MAX} entries.", details={"field": "$.limit"}
            )
        before = row_cursor(message.cursor)
        user_id = message.user_id
        if before is not None:  # later pages: from the tables (append-only, rarely read)
            rows = await store.statement(self._pool, user_id, limit=limit + 1, before=before)
            return self._page(rows, limit, user_id)
        copy, marks = await self._checked(user_id)
        if (
            copy is not None
            and copy.lines is not None
            and (copy.asked > limit or len(copy.lines) < copy.asked)
        ):
            more = len(copy.lines) > limit
            return StatementPage(
                items=list(copy.lines[:limit]),
                next_cursor=str(copy.line_ids[limit - 1]) if more else None,
            )
        if marks is None and self._hot and self._context.owns(user_id):
            # the marks first, then the rows: a write between them changes the marks, so the
            # copy is read again at its next use, never served newer than its marks say
            marks = await store.wallet_marks(self._pool, user_id)
        # one more than asked: whether there is a next page, without a count
        asked = max(limit + 1, copy.asked if copy is not None else 0)
        rows = await store.statement(self._pool, user_id, limit=asked, before=None)
        page = self._page(rows, limit, user_id)
        if marks is not None and asked <= LINES_KEPT_MAX:
            if copy is None:
                copy = WalletCopy(marks, self._context.clock())
            shown = (
                page.items
                if len(rows) <= limit
                else [*page.items, *self._lines(rows[limit:], user_id)]
            )
            copy.lines, copy.line_ids = tuple(shown), tuple(row.entry_id for row in rows)
            copy.asked = asked
            self._keep(user_id, copy)
        return page

    @staticmethod
    def _lines(
        rows: list[store.StatementRow] | tuple[store.StatementRow, ...], user_id: str
    ) -> list[StatementEntry]:
        return [statement_entry(row, user_id) for row in rows]

    @staticmethod
    def _page(
        rows: list[store.StatementRow] | tuple[store.StatementRow, ...], limit: int, user_id: str
    ) -> StatementPage:
        page = rows[:limit]
        items = [statement_entry(row, user_id) for row in page]
        more = len(rows) > limit
        return StatementPage(items=items, next_cursor=str(page[-1].entry_id) if more else None)
