"""The chat actor's whole public interface: commands, replies, events, errors and limits.

People talk about their money in conversations: one per group, one per expense or
settlement ("about this payment"), and direct ones between two people who share a group.
A conversation's id is derived from what it is about (`conversation_id_for`), so opening
one twice finds the first, and every command names it: the shard key. Messages are
ordered per conversation by `seq` (1, 2, 3, ...); history pages go back by `seq`.

Who is in a conversation: the members of its group for a group, expense or settlement
conversation (a member who leaves the group leaves them; their messages stay), the two
people for a direct one. To anyone else a conversation does not exist
(`ConversationNotFound`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from msgspec import Meta

from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id, Limit, check_bounds

CHAT = "chat"  # the actor type's name

TEXT_MAX = 4_000  # characters of a message, after trimming
TEXT_INPUT_MAX = 2 * TEXT_MAX  # what a command may carry before trimming
EDIT_SECONDS = 15 * 60  # an author may edit or delete a message this long after posting
QUIET_SECONDS = 30 * 60  # a message after this long a silence notifies every participant
ATTACHMENTS_MAX = 4  # files one message carries
LISTED_PARTICIPANTS = 10  # participants a conversation list names (the count says the rest)
RATE_BURST = 20  # messages a person may post at once...
RATE_PER_SECOND = 1.0  # ...and then this many a second, across all conversations

ConversationKind = Literal["group", "expense", "settlement", "direct"]
KINDS: tuple[str, ...] = ("group", "expense", "settlement", "direct")
Via = Literal["app", "telegram"]
Text = Annotated[str, Meta(max_length=TEXT_INPUT_MAX)]
Filename = Annotated[str, Meta(max_length=200)]

# uuid5 namespace of conversation ids (fixed: ids must come out the same on every node)
_NAMESPACE = uuid.UUID("7b0f3c1e-5d0a-4e55-9a5e-2f3c8c6a9d21")


def conversation_id_for(kind: str, subject_id: str, caller_id: str | None = None) -> str:
    """The id of the conversation of `kind` about `subject_id` (the group, expense or
    settlement; for `direct`, the other person, with `caller_id` the one asking): the same
    for everyone who opens it."""
    if kind == "direct":
        if caller_id is None:
            raise ValueError("a direct conversation's id needs both people")
        subject_id = "|".join(sorted((caller_id, subject_id)))
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{subject_id}"))


def chat_key(message: Any) -> str | None:
    """Shard key: the conversation; the group for membership changes (so one group's
    changes apply in order); the user for reads across conversations."""
    for field in ("conversation_id", "group_id", "user_id"):
        value = getattr(message, field, None)
        if value:
            return str(value)
    return None


# ── errors ─────────────────────────────────────────────────────────────────────────────


class InvalidChatMessage(DomainError):
    """A field is outside its bounds: an empty or oversized text, too many attachments;
    `details["field"]` names it (`$.text`)."""

    code = "invalid_chat_message"
    category = "invalid"


class ConversationNotFound(DomainError):
    """No such conversation, or the caller is not in it (the same answer: it does not
    exist for them)."""

    code = "conversation_not_found"
    category = "not_found"


class ChatMessageNotFound(DomainError):
    """No such message in this conversation."""

    code = "chat_message_not_found"
    category = "not_found"


class NoSharedGroup(DomainError):
    """A direct conversation with someone the caller shares no group with."""

    code = "no_shared_group"
    category = "invalid"


class NotYourMessage(DomainError):
    """Only a message's author may edit or delete it."""

    code = "not_your_message"
    category = "forbidden"


class EditWindowClosed(DomainError):
    """A message may be edited or deleted for EDIT_SECONDS after it was posted."""

    code = "edit_window_closed"
    category = "conflict"


class MessageDeleted(DomainError):
    """The message was deleted: there is nothing left to edit."""

    code = "chat_message_deleted"
    category = "conflict"


class ChatRateLimited(DomainError):
    """The person posts faster than RATE_BURST at once and RATE_PER_SECOND after;
    `details["retry_after"]` is the seconds to wait."""

    code = "chat_rate_limited"
    category = "rate_limited"


# ── commands ───────────────────────────────────────────────────────────────────────────


class ChatInput(Message, frozen=True):
    """What the chat actor handles: the fields' bounds hold wherever one is made or
    decoded, or it is InvalidChatMessage naming the field (`$.text`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidChatMessage)


class OpenConversation(ChatInput, frozen=True):
    """Open (or find) the conversation of `kind` about `subject_id`: a group, an expense
    or a settlement the caller can see, or a person the caller shares a group with.
    `conversation_id` is `conversation_id_for(kind, subject_id, user_id)`. `group_id`
    may name the group of an expense or settlement (found otherwise)."""

    conversation_id: Id
    user_id: Id
    kind: ConversationKind
    subject_id: Id
    group_id: Id | None = None


class ChatMessageDeleted(ChatInput, frozen=True):
    """A message that carried files was deleted (`user_id` deleted it): the files actor
    deletes them, for everyone."""

    conversation_id: Id
    message_id: Id
    user_id: Id
    attachment_ids: list[Id]


class GetConversation(ChatInput, frozen=True):
    conversation_id: Id
    user_id: Id


class ListConversations(ChatInput, frozen=True):
    """The caller's conversations with unread counts, the latest message first; `before`
    is the cursor a page gave (`next_cursor`)."""

    user_id: Id
    limit: Limit = 50
    before: Annotated[str, Meta(max_length=100)] | None = None


class CountUnread(ChatInput, frozen=True):
    """How many messages the caller has not read, over all their conversations."""

    user_id: Id


class AttachmentRef(Message, frozen=True):
    """A file a message carries: one the files actor keeps (uploaded first)."""

    id: Id
    filename: Filename
    content_type: Annotated[str, Meta(max_length=100)]
    size: Annotated[int, Meta(ge=0)]


class PostMessage(ChatInput, frozen=True):
    """Post `text` (and maybe files) as `user_id`. `message_id` is the caller's (a UUID):
    a retry with the same id and text answers the first message; the same id with
    another text is `IdempotencyConflict`."""

    conversation_id: Id
    user_id: Id
    message_id: Id
    text: Text
    attachments: Annotated[list[AttachmentRef], Meta(max_length=ATTACHMENTS_MAX)] = []
    via: Via = "app"


class ListMessages(ChatInput, frozen=True):
    """History, newest first: `before` a seq (the page's `next_cursor`), or the newest."""

    conversation_id: Id
    user_id: Id
    before: Annotated[int, Meta(ge=1)] | None = None
    limit: Limit = 50


class EditMessage(ChatInput, frozen=True):
    conversation_id: Id
    user_id: Id
    message_id: Id
    text: Text


class DeleteMessage(ChatInput, frozen=True):
    """Deleted for everyone: the message stays in the history as deleted, its text and
    files gone. Deleting one deleted already answers the same (a retry)."""

    conversation_id: Id
    user_id: Id
    message_id: Id


class MarkChatRead(ChatInput, frozen=True):
    """The caller has read up to and including `message_id` (a marker never goes back)."""

    conversation_id: Id
    user_id: Id
    message_id: Id


class ShowTyping(ChatInput, frozen=True):
    """The caller is typing: the other participants' open sessions hear it. Never stored."""

    conversation_id: Id
    user_id: Id


# ── replies ────────────────────────────────────────────────────────────────────────────


class ChatMessageView(Message, frozen=True):
    id: str
    conversation_id: str
    seq: int
    author_id: str
    text: str  # "" once deleted
    created_at: str  # RFC 3339, UTC
    edited_at: str | None = None
    deleted: bool = False
    attachments: list[AttachmentRef] = []
    via: str = "app"
    mentions: list[str] = []  # user ids of the people the text mentions


class ChatMessagePage(Message, frozen=True):
    items: list[ChatMessageView]
    next_cursor: str | None = None


class Participant(Message, frozen=True):
    user_id: str


class ConversationView(Message, frozen=True):
    id: str
    kind: str
    subject_id: str
    title: str  # the group's name, the expense's description, ...
    participants: list[Participant]
    participant_count: int
    group_id: str | None = None
    unread: int = 0
    last_read_seq: int = 0
    last_message: ChatMessageView | None = None
    created: bool = False  # this ask made it (201), rather than found it (200)


class ConversationList(Message, frozen=True):
    items: list[ConversationView]
    next_cursor: str | None = None


class UnreadCount(Message, frozen=True):
    total: int
    conversations: int  # how many of the caller's conversations have unread messages


class ReadMarker(Message, frozen=True):
    conversation_id: str
    last_read_seq: int
    unread: int


class ChatDone(Message, frozen=True):
    """A command with nothing to return did what it was asked."""


# ── events ─────────────────────────────────────────────────────────────────────────────


class ChatMessagePosted(ChatInput, frozen=True):
    """A message was posted that someone should hear of beyond the open app: `mentioned`
    are the people it names (`@Name`), `notify` the others to tell because the
    conversation had been quiet for QUIET_SECONDS. The notifications actor sends both in
    the `chat` category; a Telegram notice can be answered, and the answer is posted here.
    `text` is the message as posted (at most TEXT_MAX characters)."""

    conversation_id: Id
    message_id: Id
    kind: ConversationKind
    title: Annotated[str, Meta(max_length=400)]
    author_id: Id
    author_name: Annotated[str, Meta(max_length=400)]
    text: Text
    mentioned: list[Id]
    notify: list[Id]
    group_id: Id | None = None


# ── personal data: a user's export (issue 19) ─────────────────────────────────────────

MY_MESSAGES_MAX = 5_000  # messages one DescribeMyChat answers at most


class DescribeMyChat(ChatInput, frozen=True):
    """The messages the user wrote, in every conversation, oldest first (at most
    MY_MESSAGES_MAX; `truncated` says more were left out), for their data export.
    Replies MyChat."""

    user_id: Id


class MyChatMessage(Message, frozen=True):
    message_id: str
    conversation_id: str
    conversation_kind: str
    conversation_title: str
    text: str  # "" once deleted
    created_at: str
    edited_at: str | None = None
    deleted: bool = False


class MyChat(Message, frozen=True):
    messages: list[MyChatMessage]
    truncated: bool = False
