"""The chat actor: conversations between people about their money (issue 18).

Its parts:

- `messages` — the whole public interface: commands, replies, the `ChatMessagePosted`
  event, errors, limits, `chat_key` and `conversation_id_for`;
- `rules` — with no IO: a message's text, mentions (`@Name`), who hears of a message in a
  quiet conversation, the edit window, the rate limit's token bucket;
- `store` — its SQL over its own tables (`chat_*`);
- `views` — rows as replies and live frames;
- `people` — names asked of auth, kept a minute;
- `conversations` — opening, finding, listing; the members of groups from splits' events;
- `posting` — messages, read markers, typing, live pushes;
- `actor` — the `Chat` actor composed of those parts.
"""
