"""The notifications actor: delivers what other actors' events say to their users.

`messages.py` is its public interface. The pure parts: `notices.py` (who hears about an
event, and what each channel says), `templates.py` (the mails) and `batching.py` (how a
batch of messages is cut into runs of events recorded together). `store.py` holds its
SQL; `channels/` the ways out (email, Telegram, SMS). `actor.py` is the `Notifications`
actor, composed of feature parts it holds as attributes, each in its own module and each
given the shard's runtime `Context`: `deliveries` (an event's deliveries, their tries and
retries, the admin listing), `routing` (who is told over which channel, and the send),
`feed` (the in-app feed) and `preferences` (each user's switches).
"""
