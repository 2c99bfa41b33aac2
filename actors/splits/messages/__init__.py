"""The splits actor's whole public interface: commands, replies, events and errors.

Every command names the group it is about (the shard key) and the acting user
(`user_id`), who must be a member of that group: to anyone else the group does not exist
(`GroupNotFound`). Amounts are integer minor units with an ISO 4217 currency.

Import from here (`actors.splits.messages`); the parts only split it by feature:

- `fields` — field bounds, the shard key (`splits_key`), the settlement reference and
  `SplitsInput`, the base of commands and events;
- `groups` — groups, members, join links and invitations;
- `expenses` — expenses (currencies, items), balances, settlements and comments;
- `insight` — search and insight, recurring expenses and settling, import and export, a
  chat's subject;
- `events` — what the actor publishes;
- `personal` — a user's data across groups (the export, whether they may leave).

Errors (`actors.splits.errors`), replies (`actors.splits.replies`) and the import's report
(`actors.splits.importing`) are re-exported here too. A message's tag is its class name
alone, so which part defines it changes nothing on the wire; the codec registers every
message this package re-exports (`register_module`).
"""

from __future__ import annotations

from actors.splits.errors import *  # noqa: F403 (re-exported: the public interface)
from actors.splits.import_reading import read_report as read_report  # the public interface
from actors.splits.importing import *  # noqa: F403 (re-exported: the public interface)
from actors.splits.messages.events import *  # noqa: F403
from actors.splits.messages.expenses import *  # noqa: F403
from actors.splits.messages.fields import *  # noqa: F403
from actors.splits.messages.groups import *  # noqa: F403
from actors.splits.messages.insight import *  # noqa: F403
from actors.splits.messages.personal import *  # noqa: F403
from actors.splits.replies import *  # noqa: F403 (re-exported: the public interface)
