"""An actor group: all shards of one actor type, and the supervisor they escalate to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import structlog

from actors.runtime.actor import Actor
from actors.runtime.shard import ShardWorker, describe
from actors.runtime.supervision import RestartPolicy, RestartWindow

if TYPE_CHECKING:
    from actors.runtime.system import ActorSystem, Route

log = structlog.get_logger("actors.runtime")

GroupState = Literal["running", "restarting", "failed", "stopped"]

# A shard escalates to its group; the group restarts it at most this often, then gives up.
DEFAULT_GROUP_POLICY = RestartPolicy(
    max_restarts=3, within=60.0, backoff_initial=1.0, backoff_max=30.0
)


class ActorGroup:
    """All shards of one actor type, and the supervisor they escalate to."""

    def __init__(
        self,
        system: ActorSystem,
        route: Route,
        factory: Callable[[], Actor],
        *,
        policy: RestartPolicy,
        group_policy: RestartPolicy,
        max_attempts: int,
        mailbox_size: int,
    ) -> None:
        self.system = system
        self.route = route
        self.name = route.name
        self.policy = policy
        self.max_attempts = max_attempts
        self.mailbox_size = mailbox_size
        self.state: GroupState = "running"
        self.restarts = 0
        self._window = RestartWindow(group_policy)
        self._restart_tasks: set[asyncio.Task[None]] = set()
        self.workers = [
            ShardWorker(
                self, shard, system.transport.open_mailbox(self.name, shard, mailbox_size), factory
            )
            for shard in range(route.shards)
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def child_escalated(self, worker: ShardWorker, error: BaseException) -> None:
        """A shard passed its restart intensity: restart it afresh, or give up on the type."""
        delay = self._window.next_delay()
        if delay is None:
            self.fail(error)
            return
        self.restarts += 1
        log.error(
            "shard_escalated",
            actor=self.name,
            shard=worker.shard,
            delay_s=delay,
            error=describe(error),
        )
        task = asyncio.get_running_loop().create_task(self._restart_later(worker, delay))
        self._restart_tasks.add(task)
        task.add_done_callback(self._restart_tasks.discard)

    async def _restart_later(self, worker: ShardWorker, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.state == "running" and not self.system.closed:
            worker.stats.restarts += 1
            worker._window.reset()
            worker.start()

    def fail(self, error: BaseException) -> None:
        """Past the group's own intensity: stop every shard; the node itself keeps running."""
        self.state = "failed"
        log.critical("actor_type_failed", actor=self.name, error=describe(error))
        for worker in self.workers:
            worker.request_stop()
            worker.state = "failed"

    def revive(self) -> None:
        """An operator's restart of a failed type: fresh windows, every stopped shard started."""
        self._window.reset()
        self.state = "running"
        for worker in self.workers:
            if worker.stopped:
                worker._window.reset()
                worker.state = "starting"
                worker.start()
            else:
                # still finishing the message it held when fail() asked it to stop: skipping
                # it would leave this shard down while the type (and the node) says running
                task = asyncio.get_running_loop().create_task(self._start_when_stopped(worker))
                self._restart_tasks.add(task)
                task.add_done_callback(self._restart_tasks.discard)

    async def _start_when_stopped(self, worker: ShardWorker) -> None:
        await worker.wait_stopped()
        if self.state == "running" and not self.system.closed and worker.stopped:
            worker._window.reset()
            worker.state = "starting"
            worker.start()

    def stop_restarts(self) -> None:
        for task in self._restart_tasks:
            task.cancel()
