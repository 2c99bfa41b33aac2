"""Where a notice goes, and the one send over a delivery's channel: a feature part of the
Notifications actor.

A notice goes over the channels it may use, that this node has, that the user left on
(security notices ignore that), where the user can be reached (contacts asked of auth).
Channels: email, Telegram, in-app (the feed), SMS and Web Push (the user's browsers).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import structlog

from actors.auth.messages import (
    NAMES_MAX,
    Contacts,
    GetContacts,
    GetNames,
    Names,
    UserNotFound,
)
from actors.notifications.channels import DeliveryFailed
from actors.notifications.channels.email import EmailChannel
from actors.notifications.channels.sms import SmsChannel
from actors.notifications.feed import Feed
from actors.notifications.notices import AUTH_MAILS, CHANNELS, USER_ID, Notice, with_names
from actors.notifications.preferences import UserPreferences
from actors.notifications.push_devices import PushDevices
from actors.notifications.replies import ChatReplies
from actors.notifications.store import Claimed
from actors.notifications.templates import render_email, simple_mail
from actors.runtime import Context, DomainError, Message

if TYPE_CHECKING:
    from actors.notifications.channels.telegram import TelegramChannel  # aiogram: slow to import

log = structlog.get_logger("actors.notifications")

EMAIL, TELEGRAM, INAPP, SMS, WEBPUSH = CHANNELS
# the bot (of the channel's, from 0) whose answers the node's bot edge hears: a notice that
# can be answered goes through it
LISTENING_BOT = 0
# where a user is reached, by user id (None: no such user)
ContactsLookup = Callable[[str], Awaitable[Contacts | None]]


class Routing:
    """Picks each notice's (channel, recipient) pairs and sends a claimed delivery.

    `context` is the Notifications shard's (it asks auth for contacts);
    `email`, `telegram` and `sms` are the node's channels (None: off on this node);
    `feed` is the in-app channel; `devices` the Web Push one; `preferences` the users'
    switches; `replies` remembers the chat notices sent over Telegram; `contacts` finds
    where a user is reached (default: ask auth); `public_url` starts the links in auth's
    mails.
    """

    def __init__(
        self,
        context: Context,
        *,
        email: EmailChannel,
        telegram: TelegramChannel | None,
        sms: SmsChannel | None,
        feed: Feed,
        devices: PushDevices,
        preferences: UserPreferences,
        replies: ChatReplies,
        contacts: ContactsLookup | None,
        public_url: str,
    ) -> None:
        self._context = context
        self._email = email
        self._telegram = telegram
        self._sms = sms
        self._feed = feed
        self._devices = devices
        self._preferences = preferences
        self._replies = replies
        self._contacts_lookup = contacts
        self._public_url = public_url

    async def reach(self, notices: Sequence[Notice]) -> list[list[tuple[str, str]]]:
        """`targets` of every notice given (one event's, or a batch's), with the users'
        switches and Web Push subscriptions read in ONE query for all of them."""
        # security notices ignore the switches: their users' are read only if needed
        switched = list(dict.fromkeys(n.user_id for n in notices if not n.security))
        # with no Web Push on this node, nobody is reached by it: no devices to read
        users = list(dict.fromkeys(n.user_id for n in notices)) if self._devices.available else []
        chosen, pushable = await self._preferences.switches_and_devices(switched, users)
        return list(
            await asyncio.gather(
                *(self.targets(notice, chosen=chosen, pushable=pushable) for notice in notices)
            )
        )

    async def targets(
        self,
        notice: Notice,
        *,
        chosen: Mapping[str, dict[str, dict[str, bool]]] | None = None,
        pushable: set[str] | None = None,
    ) -> list[tuple[str, str]]:
        """(channel, recipient) pairs for one notice. An address named by the event
        (verification) beats the account's. `chosen` (switches by user) and `pushable`
        (users with Web Push devices) are read here when not given."""
        allowed = notice.only or CHANNELS
        switches = None
        if not notice.security:
            own = chosen.get(notice.user_id) if chosen is not None else None
            if own is None:
                own = await self._preferences.switches(notice.user_id)
            switches = own[notice.category]
        wanted = [c for c in allowed if switches is None or switches.get(c, False)]
        contacts = None
        if any(
            c != WEBPUSH and self._recipient(c, notice, None) is None and self._reachable(c)
            for c in wanted
        ):
            contacts = await self._contacts(notice.user_id)
        targets: list[tuple[str, str]] = []
        for channel in wanted:
            if channel == WEBPUSH:
                # its recipient is the user's devices, found when it is sent
                if pushable is not None:
                    reachable = notice.user_id in pushable
                else:
                    reachable = await self._devices.reachable(notice.user_id)
                if reachable:
                    targets.append((channel, notice.user_id))
                continue
            recipient = self._recipient(channel, notice, contacts)
            if recipient:
                targets.append((channel, recipient))
        return targets

    async def send(self, claimed: Claimed, event: Message, notices: dict[str, Notice]) -> str:
        """One try over the delivery's channel; the provider's answer, or DeliveryFailed."""
        notice = notices.get(claimed.user_id)
        if notice is None:
            raise DeliveryFailed("the event no longer concerns this user", permanent=True)
        if claimed.channel == EMAIL:
            if claimed.event_type in AUTH_MAILS:
                mail = render_email(event, public_url=self._public_url)  # type: ignore[arg-type]
                mail = dataclasses.replace(mail, to=claimed.recipient)
            else:
                mail = simple_mail(
                    claimed.recipient, notice.title, notice.text, kind=notice.kind, link=notice.link
                )
            return await self._email.send(mail)
        if claimed.channel == TELEGRAM and self._telegram is not None:
            chat_id = int(claimed.recipient)
            if notice.conversation_id is None:
                return await self._telegram.send(chat_id, notice.telegram)
            # Answerable: remembered by the message Telegram made. Should remembering fail,
            # the try fails and the notice is sent again (at least once, as every send).
            sent = await self._telegram.send_message(chat_id, notice.telegram, bot=LISTENING_BOT)
            await self._replies.remember(chat_id, sent.message_id, notice)
            return sent.answer
        if claimed.channel == SMS and self._sms is not None:
            return await self._sms.send(claimed.recipient, f"{notice.title}: {notice.text}")
        if claimed.channel == INAPP:
            return await self._feed.add(claimed.id, notice)
        if claimed.channel == WEBPUSH and self._devices.available:
            return await self._devices.send(claimed.id, notice)
        raise DeliveryFailed(f"no channel {claimed.channel!r} on this node", permanent=True)

    async def named(self, notices: list[Notice]) -> list[Notice]:
        """The notices with the people they mention by id named instead (asked of auth in
        one go); as they were when auth cannot say."""
        return (await self.named_all([notices]))[0]

    async def named_all(self, events: Sequence[list[Notice]]) -> list[list[Notice]]:
        """`named` for the notices of several events, with ONE ask of auth for everybody
        they mention (a batch of events)."""
        ids = {
            found
            for notices in events
            for n in notices
            if not n.quotes  # someone's own words are left as they wrote them
            for found in USER_ID.findall(f"{n.title} {n.text}")
        }
        if not ids:
            return [list(notices) for notices in events]
        wanted = sorted(ids)
        names: dict[str, str] = {}
        try:
            for start in range(0, len(wanted), NAMES_MAX):
                chunk = wanted[start : start + NAMES_MAX]
                reply: Names = await self._context.ask("auth", GetNames(user_ids=chunk))
                names.update((person.user_id, person.name) for person in reply.people)
        except DomainError as error:
            log.warning("notice_names_unavailable", code=error.code)
            return [list(notices) for notices in events]
        return [[with_names(notice, names) for notice in notices] for notices in events]

    async def _contacts(self, user_id: str) -> Contacts | None:
        if self._contacts_lookup is not None:
            return await self._contacts_lookup(user_id)
        try:
            contacts: Contacts = await self._context.ask("auth", GetContacts(user_id=user_id))
        except UserNotFound:
            return None
        return contacts

    def _reachable(self, channel: str) -> bool:
        """Whether this node has the channel at all."""
        return {TELEGRAM: self._telegram, SMS: self._sms}.get(channel, True) is not None

    def _recipient(self, channel: str, notice: Notice, contacts: Contacts | None) -> str | None:
        if channel == EMAIL:
            return notice.email_to or (contacts.email if contacts else None)
        if channel == TELEGRAM and self._telegram is not None:
            chat = notice.telegram_chat_id or (contacts.telegram_chat_id if contacts else None)
            return None if chat is None else str(chat)
        if channel == SMS and self._sms is not None and contacts and contacts.phone_verified:
            return contacts.phone
        if channel == INAPP:
            return notice.user_id
        return None
