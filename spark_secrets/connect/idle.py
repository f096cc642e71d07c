"""When a user's Connect server is idle: no client call, no running operation, Spark job or streaming query.

Spark 4.3 has no idle exit of its own (SPARK-50613 was closed unmerged); only its sessions expire. The server's
program (:mod:`.server`) reads these facts from the Connect service every few seconds and ends the application
once it has been idle for the timeout, so that its tokens are cancelled rather than kept alive for nobody."""

from __future__ import annotations

from dataclasses import dataclass

#: Execution states after which an operation holds nothing (``ExecuteStatus`` of Spark's Connect service). An
#: execution the client never released stays listed, Finished, until ``spark.connect.execute.manager.detachedTimeout``.
ENDED_OPERATIONS = frozenset({"Finished", "Failed", "Canceled", "Closed"})


@dataclass(frozen=True)
class Activity:
    """What the server was doing at ``now_ms`` (epoch ms)."""

    now_ms: int
    started_ms: int
    last_call_ms: int = 0  # the latest call of any client session (its ``lastAccessTimeMs``)
    running_operations: int = 0
    active_jobs: int = 0
    active_streams: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.running_operations or self.active_jobs or self.active_streams)

    def idle_ms(self) -> int:
        """How long nothing has happened; 0 while anything runs (a long query is not idleness)."""
        if self.busy:
            return 0
        return max(0, self.now_ms - max(self.started_ms, self.last_call_ms))


def running(statuses: list[str]) -> int:
    """How many of the operations' statuses are of operations still at work."""
    return sum(1 for status in statuses if status not in ENDED_OPERATIONS)
