"""The fills process's mark in Redis: whether Redis lost position writes it had acknowledged.

Redis restarted from an AOF written every second forgets up to a second of acknowledged writes:
positions, the applied fill ids and the backfill cursor roll back together, and until the REST
backfill finds the lost fills again the executor computes its limits on positions missing fills
that happened at the exchange. So, as each executor does in its ledger (``common.ledger``), every
fills transaction also writes the process's mark, ``mark:fills`` = ``token:seq`` in the fills
meta hash (the newest of its transactions applied; ``seq`` counts them), and the process
remembers the newest one Redis acknowledged. A mark behind that means Redis lost acknowledged
writes. It is read with the restore marker at every step (every ``CHECK_S`` when idle) and by
every transaction before it writes, each compared with what was acknowledged before its read was
sent (a transaction answered while the read was on its way may have run after it).

The token is new at every start: a new process has acknowledged nothing and is never judged by
its predecessor's mark (which its first write replaces); a mark of another token once ours was
acknowledged is Redis gone back to the predecessor's (or a second fills process: either way
wrong). What was acknowledged counts for one restore only (``dora:restored``'s
``ts_ms``): a Redis that lost all its data is the restore's business (``common.restore``).

The fills applied in the last ``RECENT_MS`` are kept, so a loss is healed at once from memory
(the REST backfill may not list the newest fills for seconds) before the backfill runs.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from common.domain import Fill
from common.keys import Keys
from common.restore import restore_id

CHECK_S = 0.2  # how long an idle step waits for the socket's events: the mark is read as often
MARK = "mark:fills"
RECENT_MS = 10_000  # fills kept to apply again (the AOF loses about a second)


@dataclass(slots=True)
class FillsMark:
    token: str = field(default_factory=lambda: secrets.token_hex(6))
    seq: int = 0  # transactions sent with the mark
    acked: int = 0  # the newest of them Redis acknowledged (within ``restore``)
    restore: int | None = None  # the restore the acknowledgements count in
    lost: str = ""  # a loss found and not yet handled: why
    held: int = 0  # then: the step of ours Redis held
    expected: int = 0  # and the one it had acknowledged
    recent: deque[tuple[float, Fill]] = field(default_factory=deque)

    name: str = MARK  # the mark's field in the fills meta hash

    def next(self) -> tuple[int, str]:
        """The seq of a transaction about to be sent, and the mark's value it writes."""
        self.seq += 1
        return self.seq, f"{self.token}:{self.seq}"

    def answered(self, seq: int, restore: int | None) -> None:
        """Redis acknowledged the transaction ``seq`` (sent while ``restore`` held)."""
        if restore == self.restore:
            self.acked = max(self.acked, seq)

    def check(self, raw: str | None, restore: int | None, acked: int) -> bool:
        """Whether Redis still holds every transaction of ours it had acknowledged when the mark
        was read: ``raw`` the mark's value, ``restore`` the restore marker's id read with it,
        ``acked`` what ``self.acked`` was before that read was sent. When not, ``lost`` says so
        (once: what Redis holds is taken as acknowledged from then on)."""
        if restore != self.restore:  # the first look, or Redis lost all its data: the restore's
            self.restore, self.acked, self.lost = restore, 0, ""
            return True
        acked = min(acked, self.acked)  # a read sent before a loss was taken in: judged already
        if acked == 0:
            return True
        token, _, seq = (raw or "").partition(":")
        held = int(seq) if token == self.token and seq.isdigit() else 0
        if held >= acked:
            return True
        self.lost = f"Redis holds fills transaction {held} of ours, it had acknowledged {acked}"
        self.held, self.expected, self.acked = held, acked, held
        return False

    def applied(self, fill: Fill, now_ms: float) -> None:
        """``fill`` was applied: kept a while, to apply again should Redis lose it."""
        self.recent.append((now_ms, fill))
        while self.recent and self.recent[0][0] < now_ms - RECENT_MS:
            self.recent.popleft()

    def to_replay(self, now_ms: float) -> list[Fill]:
        return [fill for at, fill in self.recent if at >= now_ms - RECENT_MS]


async def read_restore_and_mark(
    redis: aioredis.Redis, keys: Keys, mark: FillsMark
) -> tuple[int | None, bool]:
    """The restore Redis holds (``restore_id``, None: its data was lost), and whether the mark
    is where it should be (``FillsMark.check``); one round trip."""
    acked = mark.acked  # before the read is sent
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.restored)
    pipe.hget(keys.fills_meta, mark.name)
    marker, raw = await pipe.execute()
    restored = restore_id(marker)
    if restored is None:
        mark.restore, mark.acked = None, 0
        return None, True
    return restored, mark.check(raw, restored, acked)
