"""The files actor: receipts and other attachments of an expense (JPEG, PNG, WebP, PDF),
and the images people send in chat messages (JPEG, PNG, WebP), processed and stored alike.

Its parts:

- `messages` — the whole public interface: commands, replies, errors and the limits;
- `rules` — with no IO: the type sniffed from the first bytes (never the name), the size
  limits, safe names and the Content-Disposition header;
- `processing` — CPU work with no IO, run in a thread: decompression-bomb guard, EXIF
  orientation applied, images encoded again without metadata (EXIF, GPS, XMP, ICC,
  comments), PDFs checked with PDFium, thumbnails;
- `storage` — the storage port (`Storage`: put, get, delete) and its adapters: a local
  folder (the default) and an S3-compatible store (SigV4 over aiohttp);
- `store` — its SQL, over its own table (`attachments`);
- `conversations` — the `chat` part: a conversation's files, the message that carries
  them, their deletion with it, and the upkeep of files never sent;
- `actor` — the `Files` actor (mailbox and handlers), composed of its `attachments` and
  `chat` parts, given the runtime's `Context` and the storage.

Who may see an attachment is not decided here: the HTTP edge asks splits whether the caller
is a member of the group first, or chat whether they are in the conversation.
"""
