"""Accounts, a feature part of the auth actor: sign-up, profiles, contacts and roles."""

from __future__ import annotations

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, new_id, user_view
from actors.auth.messages import (
    Contacts,
    EmailTaken,
    FindUserByEmail,
    GetContacts,
    GetNames,
    GetUser,
    GrantRole,
    InvalidField,
    MakeAdmin,
    Names,
    Person,
    ProfileChanged,
    Register,
    UpdateUser,
    UserNotFound,
    UserRegistered,
    UserView,
    normalise_email,
)
from actors.auth.rules import check_role, normalise_name, normalise_phone
from actors.auth.store import UserRow
from actors.auth.verification import Verification
from actors.runtime import Message, Transaction
from actors.splits.messages import PlaceholderAdded

log = structlog.get_logger("actors.auth")


class Accounts:
    """Creates accounts (publishing UserRegistered), reads and changes them."""

    def __init__(self, context: AuthContext, *, verification: Verification) -> None:
        self._context = context
        self._verification = verification

    async def register(self, message: Register) -> UserView:
        """A new local account."""
        replayed = await self._context.replayed(message, UserView)
        if replayed is not None:  # a client's retry: the first answer, not "taken"
            return replayed
        redelivered = self._redelivered()
        email = normalise_email(message.email)
        name = normalise_name(message.name)
        await self._context.check_password(message.password, email, name)
        # A cheap refusal before the costly hash; the insert below is the real guard. A
        # redelivery skips it: if its first delivery committed, the inbox says so below and
        # the answer is that account, not "taken".
        if not redelivered and await store.user_by_email(self._context.pool, email) is not None:
            raise EmailTaken("An account with this email already exists.")
        created = await self._create(email, name, message.password, ["user"], message)
        if isinstance(created, UserView):
            return created
        if created is None:
            raise EmailTaken("An account with this email already exists.")
        log.info("user_registered", user_id=created.id, ip=message.ip)
        return user_view(created)

    async def _create(
        self, email: str, name: str, password: str, roles: list[str], message: Message
    ) -> UserRow | UserView | None:
        """A new local account and its welcome, in one transaction with the inbox mark.

        Returns the new row; the earlier answer (a view) when this message was handled
        before; None when another request took the email meanwhile.
        """
        password_hash = await self._context.passwords.hash(password)
        now = self._context.clock()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return await self._existing_view(tx, email)
            user = await store.insert_user(
                tx,
                user_id=new_id(),
                email=email,
                name=name,
                password_hash=password_hash,
                email_verified=False,
                roles=roles,
                now=now,
            )
            if user is not None:
                await self.welcome(tx, user, now)
                await self._context.remember(tx, message, user_view(user))
        return user

    def _redelivered(self) -> bool:
        """Whether the message in hand was delivered before (its handler may have run)."""
        envelope = self._context.envelope
        return envelope is not None and envelope.attempt > 0

    async def welcome(self, tx: Transaction, user: UserRow, now: float) -> None:
        """What every new account causes: a verification mail (if needed) and the event."""
        if not user.email_verified:
            await self._verification.send(tx, user, now)
        await tx.publish(UserRegistered(user_id=user.id, email=user.email, name=user.name))

    async def _existing_view(self, tx: Transaction, email: str) -> UserView:
        # a redelivery of a message already handled: answer what the first answer was
        user = await store.user_by_email(tx, email)
        if user is None:
            raise UserNotFound("No account has this email.")
        return user_view(user)

    async def names(self, message: GetNames) -> Names:
        """Display names only: never an email. The users this shard owns and keeps are
        named from memory; the rest (and placeholders) by one query. In the order asked,
        unknown ids left out."""
        wanted = list(dict.fromkeys(message.user_ids))
        found = self._context.profiles.kept_names(wanted)
        if len(found) < len(wanted):
            missing = [user_id for user_id in wanted if user_id not in found]
            found.update(await store.names(self._context.pool, missing))
        return Names(
            people=[
                Person(user_id=user_id, name=found[user_id])
                for user_id in wanted
                if user_id in found
            ]
        )

    async def placeholder_added(self, message: PlaceholderAdded) -> None:
        """A group gained a member with no account: name them like anyone."""
        name = normalise_name(message.name)
        now = self._context.now()
        await store.add_placeholder(self._context.pool, message.placeholder_id, name, now)

    async def get(self, message: GetUser) -> UserView:
        """The user, as the API shows it (from the shard's memory after the first read)."""
        user = await self._context.profiles.get(message.user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user_view(user)

    async def contacts(self, message: GetContacts) -> Contacts:
        """Where the user can be reached (for the notifier); a deleted account is reached
        nowhere."""
        user = await self._context.profiles.get(message.user_id)
        if user is None or user.deleted_at is not None:
            raise UserNotFound("No such user.")
        return Contacts(
            user_id=user.id,
            email=user.email,
            email_verified=user.email_verified,
            name=user.name,
            telegram_chat_id=user.telegram_chat_id,
            phone=user.phone,
            phone_verified=user.phone_verified,
        )

    async def find_by_email(self, message: FindUserByEmail) -> UserView:
        """The user with this email address."""
        user = await store.user_by_email(self._context.pool, normalise_email(message.email))
        if user is None:
            raise UserNotFound("No user has this email.")
        return user_view(user)

    async def update(self, message: UpdateUser) -> UserView:
        """Change the name and/or the phone number (a new number is unverified); a new name
        is told to every node (ProfileChanged), so it shows everywhere at once."""
        name = normalise_name(message.name) if message.name is not None else None
        phone = normalise_phone(message.phone) if message.phone is not None else None
        profiles = self._context.profiles
        async with profiles.writing(message.user_id), self._context.transaction() as tx:
            before = await store.user_by_id(tx, message.user_id, lock=True)
            user = await store.update_profile(
                tx,
                message.user_id,
                self._context.clock(),
                name=name,
                phone=phone,
                set_phone=message.phone is not None,
            )
            if before is not None and user is not None and before.name != user.name:
                await tx.publish(ProfileChanged(user_id=user.id, name=user.name))
        # a redelivery's transaction was rolled back: what it returned was never committed
        await profiles.wrote(message.user_id, None if tx.duplicate else user)
        if user is None:
            raise UserNotFound("No such user.")
        log.info("user_updated", user_id=user.id)
        return user_view(user)

    async def make_admin(self, message: MakeAdmin) -> UserView:
        """Make the account with this email an admin, creating it when a password is given."""
        email = normalise_email(message.email)
        existing = await store.user_by_email(self._context.pool, email)
        if existing is not None:
            return await self._promote(existing.id)
        if message.password is None:
            raise InvalidField(
                "There is no account with this email; give a password to create one.",
                details={"field": "$.password"},
            )
        name = normalise_name(message.name or email.split("@", 1)[0])
        await self._context.check_password(message.password, email, name)
        created = await self._create(email, name, message.password, ["user", "admin"], message)
        if isinstance(created, UserView):
            return created
        if created is None:  # created meanwhile by a sign-up on another shard
            raced = await store.user_by_email(self._context.pool, email)
            if raced is None:
                raise UserNotFound("No account has this email.")
            return await self._promote(raced.id)
        log.info("admin_created", user_id=created.id)
        return user_view(created)

    async def _promote(self, user_id: str) -> UserView:
        profiles = self._context.profiles
        # routed by email: the owner of the id may be another shard, told of the change
        async with profiles.writing(user_id), self._context.transaction(dedupe=False) as tx:
            user = await store.add_role(tx, user_id, "admin", self._context.clock())
            await profiles.changing(tx, user_id)
        await profiles.wrote(user_id, user)
        if user is None:
            raise UserNotFound("No such user.")
        log.info("role_granted", user_id=user.id, role="admin")
        return user_view(user)

    async def grant_role(self, message: GrantRole) -> UserView:
        """Give the user one more role."""
        role = check_role(message.role)
        profiles = self._context.profiles
        async with profiles.writing(message.user_id):
            user = await store.add_role(
                self._context.pool, message.user_id, role, self._context.clock()
            )
        await profiles.wrote(message.user_id, user)
        if user is None:
            raise UserNotFound("No such user.")
        log.info("role_granted", user_id=user.id, role=role)
        return user_view(user)
