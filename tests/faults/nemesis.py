"""The nemesis: SIGKILLs a replica (and starts it again), SIGSTOPs one past its lease (then SIGCONT), crashes the
private PostgreSQL and the private Redis and starts them again. Faults come in shuffled rounds of every kind, so a
run of a few faults has each kind; the timing is drawn from the suite's seeded generator.

Not responsible for the servers themselves (cluster.py) nor for what the clients do meanwhile (workload.py).
"""

from __future__ import annotations

import asyncio
import enum
import random
import signal
import time

from tests.faults.cluster import PrivatePostgres, PrivateRedis, Replica
from tests.faults.workload import History


class Fault(enum.Enum):
    KILL = "SIGKILL a replica, start it again"
    PAUSE = "SIGSTOP a replica past its lease, then SIGCONT"
    POSTGRES = "crash and restart PostgreSQL"
    REDIS = "crash and restart Redis"


class Nemesis:
    def __init__(self, replicas: list[Replica], postgres: PrivatePostgres, redis: PrivateRedis, rng: random.Random,
                 history: History, lease: float) -> None:
        self.replicas, self.postgres, self.redis, self.rng = replicas, postgres, redis, rng
        self.history, self.lease = history, lease
        self._round: list[Fault] = []

    def _next(self) -> Fault:
        if not self._round:
            self._round = list(Fault)
            self.rng.shuffle(self._round)
        return self._round.pop()

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.5 * interval, 1.5 * interval))
                return
            except TimeoutError:
                pass
            await self.inject(self._next())

    async def inject(self, fault: Fault) -> None:
        self.history.faults[fault.value] += 1
        if fault in (Fault.KILL, Fault.PAUSE):
            # Always leave one replica answering: the faults are the others'.
            up = [r for r in self.replicas if r.alive and not r.paused]
            if len(up) < 2:
                self.history.faults[fault.value] -= 1
                return
            victim = self.rng.choice(up)
            if fault is Fault.KILL:
                victim.signal(signal.SIGKILL)
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                victim.start()
            else:
                victim.signal(signal.SIGSTOP)
                await asyncio.sleep(self.lease + self.rng.uniform(1.0, 3.0))  # its leases lapse; peers take over
                victim.signal(signal.SIGCONT)
        elif fault is Fault.POSTGRES:
            await asyncio.to_thread(self.postgres.crash)
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            await asyncio.to_thread(self.postgres.start)
        else:
            await asyncio.to_thread(self.redis.crash)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await asyncio.to_thread(self.redis.start)


def restore_all(replicas: list[Replica]) -> None:
    """After the faults: resume the paused, start the dead, and wait until every replica answers."""
    for replica in replicas:
        if replica.paused:
            replica.signal(signal.SIGCONT)
        if not replica.alive:
            replica.start()
    deadline = time.monotonic() + 60
    for replica in replicas:
        replica.wait_healthy(max(5.0, deadline - time.monotonic()))
