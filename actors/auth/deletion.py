"""Account deletion and the data export, a feature part of the auth actor.

`describe` answers DescribeMyAccount: the profile, live sessions and linked social logins
(the edge gathers the rest of the export from each actor that keeps it).

`delete` handles DeleteAccount in one handler: it confirms the person (their password, or
for an account with no password a sign-in in the last FRESH_SIGN_IN_SECONDS), asks
payments for the wallet and splits for the group balances, and refuses (AccountNotEmpty,
each reason in words: what is owed, to whom, in which group, and what to do) unless all are
zero. Then, in one transaction: the user row is anonymised ("Deleted user", an undeliverable
address, no password, phone or Telegram chat), every sign-in factor and link is removed,
every session is revoked (SessionsRevoked: every node's edge refuses their access tokens),
and AccountDeleted (notifications forgets the contacts) and ProfileChanged (every node's
name book says "Deleted user") are published with it. Ledger lines, expenses, comments and
messages stay, pointing at the now anonymous id.

The window that remains: splits and payments are asked before the transaction, and neither
is locked by it, so an expense another member adds (or a transfer to the account) in the
milliseconds between the answers and the commit lands on a deleted account. The handler
asks splits and payments once more after the commit and logs `account_deleted_with_balance`
when that happened, for an operator to settle by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, user_view
from actors.auth.messages import (
    DELETED_NAME,
    FRESH_SIGN_IN_SECONDS,
    SECOND_FACTORS,
    AccountDeleted,
    AccountDeletion,
    AccountNotEmpty,
    DeleteAccount,
    DescribeMyAccount,
    FreshSignInRequired,
    LinkedProvider,
    ListSessions,
    MyAccount,
    ProfileChanged,
    SecondFactorRequired,
    UserNotFound,
    WrongPassword,
)
from actors.auth.passwords import MAX_LENGTH
from actors.auth.sessions import Sessions, publish_revoked
from actors.auth.store import UserRow
from actors.auth.store import deletion as deletion_store
from actors.auth.store import mfa as mfa_store
from actors.payments.messages import Balance, GetWallet, WalletView, format_money
from actors.runtime import rfc3339
from actors.splits.messages import DescribeMySplits, MyDebt, MyGroupBalance, MySplits

log = structlog.get_logger("actors.auth")

ASK_SECONDS = 10.0  # how long payments and splits may take to say what the account holds


def refusal_reasons(
    wallet: Sequence[Balance],
    balances: Sequence[MyGroupBalance],
    debts: Sequence[MyDebt],
    names: Mapping[str, str],
) -> list[str]:
    """What stands between the account and its deletion, each in words with what to do:
    money in the wallet or held on it, and each payment settling up would make to or from
    the person (a group balance with no such payment: the balance itself). Empty: none."""
    reasons: list[str] = []
    for balance in wallet:
        if balance.available:
            money = format_money(balance.available, balance.currency)
            reasons.append(f"Your wallet holds {money}: withdraw or spend it first.")
        if balance.held:
            money = format_money(balance.held, balance.currency)
            reasons.append(
                f"{money} of your wallet is held for a ride: finish or cancel the ride first."
            )
    explained: set[tuple[str, str]] = set()
    for debt in debts:
        explained.add((debt.group_id, debt.currency))
        other = names.get(debt.other_user_id)
        money = format_money(abs(debt.amount), debt.currency)
        if debt.amount > 0:
            whom = other or "another member"
            reasons.append(f"You owe {whom} {money} in {debt.group_name}: settle up first.")
        else:
            who = other or "Another member"
            reasons.append(
                f"{who} owes you {money} in {debt.group_name}: settle up first"
                " (record their payment)."
            )
    for net in balances:
        if (net.group_id, net.currency) not in explained:
            money = format_money(net.net, net.currency)
            reasons.append(f"Your balance in {net.group_name} is {money}: settle up first.")
    return reasons


class Deletion:
    """Exports what auth keeps about a user, and deletes accounts that hold nothing."""

    def __init__(self, context: AuthContext, *, sessions: Sessions) -> None:
        self._context = context
        self._sessions = sessions

    async def describe(self, message: DescribeMyAccount) -> MyAccount:
        user = await self._user(message.user_id)
        sessions = await self._sessions.live(ListSessions(user_id=user.id))
        providers = await deletion_store.linked_providers(self._context.pool, user.id)
        return MyAccount(
            user=user_view(user),
            sessions=sessions.items,
            providers=[
                LinkedProvider(
                    provider=row["provider"],
                    email=row["email"],
                    created_at=rfc3339(row["created_at"], timespec="seconds"),
                )
                for row in providers
            ],
        )

    async def delete(self, message: DeleteAccount) -> AccountDeletion:
        context = self._context
        replayed = await context.replayed(message, AccountDeletion)
        if replayed is not None:
            return replayed
        user = await self._user(message.user_id)
        if user.deleted_at is not None:  # deleted before: the same answer
            return _deletion(user)
        await self._confirm(user, message)
        reasons = await self._obstacles(user.id)
        if reasons:
            log.info("account_deletion_refused", user_id=user.id, reasons=len(reasons))
            raise AccountNotEmpty(
                "Your account cannot be deleted yet. " + " ".join(reasons),
                details={"reasons": reasons},
            )
        now = context.clock()
        async with context.profiles.writing(user.id), context.transaction() as tx:
            if not tx.duplicate and await deletion_store.anonymise_user(tx, user.id, now):
                removed = await deletion_store.forget_factors(tx, user.id)
                revoked = await store.revoke_user_sessions(tx, user.id, now, "account_deleted")
                await publish_revoked(tx, user.id, revoked, "account_deleted", now)
                await tx.publish(AccountDeleted(user_id=user.id))
                await tx.publish(ProfileChanged(user_id=user.id, name=DELETED_NAME))
                log.info("account_deleted", user_id=user.id, sessions=len(revoked), **removed)
            deleted = await store.user_by_id(tx, user.id)
            if deleted is None or deleted.deleted_at is None:
                raise UserNotFound("No such user.")
            reply = _deletion(deleted)
            await context.remember(tx, message, reply)
        await context.profiles.wrote(user.id, deleted)
        await self._recheck(user.id)
        return reply

    async def _user(self, user_id: str) -> UserRow:
        user = await store.user_by_id(self._context.pool, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user

    async def _confirm(self, user: UserRow, message: DeleteAccount) -> None:
        """The person is who they say: their password, or (no password) a fresh sign-in; and
        with two-factor sign-in on, a session that passed the second factor."""
        await self._confirm_identity(user, message)
        pool = self._context.pool
        if not await mfa_store.totp_enabled(pool, user.id):
            return
        factors = await deletion_store.session_factors(pool, user.id, message.session_id)
        if not SECOND_FACTORS.intersection(factors):
            log.info("account_deletion_needs_second_factor", user_id=user.id)
            raise SecondFactorRequired(
                "This sign-in began before two-factor sign-in was turned on: sign out, sign in"
                " again with your code (or a passkey), then delete your account."
            )

    async def _confirm_identity(self, user: UserRow, message: DeleteAccount) -> None:
        """Their password, or (an account with no password) a sign-in moments ago."""
        context = self._context
        if user.password_hash is None:
            started = await deletion_store.session_started(
                context.pool, user.id, message.session_id
            )
            if started is None or context.clock() - started > FRESH_SIGN_IN_SECONDS:
                raise FreshSignInRequired(
                    "Sign out and sign in again, then delete your account within"
                    f" {FRESH_SIGN_IN_SECONDS // 60} minutes."
                )
            return
        password = message.password or ""
        if not password:
            raise WrongPassword("Type your password to confirm.", details={"field": "$.password"})
        ok = len(password) <= MAX_LENGTH and await context.passwords.verify(
            user.password_hash, password
        )
        if not ok:
            log.info("account_deletion_wrong_password", user_id=user.id)
            raise WrongPassword("The password is wrong.", details={"field": "$.password"})

    async def _obstacles(self, user_id: str) -> list[str]:
        """What payments and splits say the account still holds, in words."""
        context = self._context
        wallet: WalletView = await context.ask(
            "payments", GetWallet(user_id=user_id), timeout=ASK_SECONDS
        )
        splits: MySplits = await context.ask(
            "splits", DescribeMySplits(user_id=user_id, records=False), timeout=ASK_SECONDS
        )
        others = sorted({debt.other_user_id for debt in splits.debts})
        names = dict(await store.names(context.pool, others)) if others else {}
        return refusal_reasons(wallet.balances, splits.balances, splits.debts, names)

    async def _recheck(self, user_id: str) -> None:
        """Whether money landed in the window between the check and the commit (logged:
        nobody can act on a deleted account but an operator)."""
        try:
            reasons = await self._obstacles(user_id)
        except Exception as error:  # the deletion stands; only the check is lost
            log.warning("account_deleted_recheck_failed", user_id=user_id, error=repr(error))
            return
        if reasons:
            log.warning("account_deleted_with_balance", user_id=user_id, reasons=len(reasons))


def _deletion(user: UserRow) -> AccountDeletion:
    """The answer about a deleted account (`deleted_at` set)."""
    when = user.deleted_at or user.created_at  # never unset here: the callers checked
    return AccountDeletion(user_id=user.id, deleted_at=rfc3339(when, timespec="seconds"))
