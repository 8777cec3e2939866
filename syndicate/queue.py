"""Sends over a task queue: the daemon splits each send into shards, `syndicate worker`s send them.

With `workers:` in the config, a send the daemon runs is not delivered by the daemon: `enqueue()`
composes its draft once, stores it in the ledger (as every run does, `send.draft_for`), records
the draft `started` with the number of messages planned, and defers one job per shard on a
procrastinate queue kept in the ledger's own PostgreSQL (no other server). A shard of a store
list is a keyset range of `subscribers.seq` (`SubscriberStore.boundaries`), about `shard_size`
readers; a CSV or inline list, and a post, is one shard.

A worker (`run_worker`) takes shards and sends each exactly as `syndicate send` would
(`dispatch()`, through the ledger), so the guarantees are the ledger's, not the queue's:
- every message is claimed by compare-and-set before it goes out, so a shard run twice (the
  queue delivers at least once) or by two workers sends each message once;
- a worker killed mid-shard stops sending its heartbeat; after `stalled_seconds` another
  worker hands its shard back to the queue (`_reclaim`), and whoever runs it recovers the dead
  worker's claims first (`Ledger.recover`: a process of this machine that is gone, or a claim of
  another machine older than `lease_seconds`): `pending` again if its data never all reached
  the server, else `unknown` (in doubt, never sent twice);
- a shard that leaves messages (a server down, a claim still held elsewhere) fails its job,
  which the queue retries later; the draft is `finished` when its last message is settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import make_url

from .config import Config
from .continuity import open_ledger
from .deliver import make_target
from .dispatch import Report, dispatch
from .dkim import check_keys
from .errors import ConfigError, DeliveryError, StateError
from .ledger import Ledger
from .plan import Send
from .readers import Readers
from .recipients import SubscriberList, address_key
from .send import Kept, Outcome, draft_for, mail_target, messages_of
from .subscribers import Span, Status, SubscriberStore

__all__ = [
    "TASK",
    "Queued",
    "Shard",
    "ShardLeft",
    "enqueue",
    "make_app",
    "run_shard",
    "run_worker",
    "shards_of",
]

TASK = "syndicate.send_shard"
_MAILED: tuple[Status, ...] = ("subscribed",)  # as readers.py mails

Say = Callable[..., None]  # `say(event, **fields)`: one log event


class ShardLeft(DeliveryError):
    """A shard ended with messages still to send: its job fails and the queue runs it again."""


@dataclass(frozen=True)
class Shard:
    """One job of a send: draft (channel, target, draft key) and its readers `after < seq <= upto`
    in the store (`after` None: every reader, as for a CSV list or a post)."""

    channel: str
    target: str
    draft_key: str
    index: int
    after: int | None = None
    upto: int | None = None

    @property
    def lock(self) -> str:
        """Its name on the queue: one job per shard waits there at a time, and runs at a time."""
        return json.dumps([self.channel, self.target, self.draft_key, self.index])

    @property
    def span(self) -> Span | None:
        return None if self.after is None else Span(self.after, self.upto)


@dataclass(frozen=True)
class Queued:
    """What `enqueue` did for one send: its messages and its shards."""

    send: Send
    messages: int
    shards: int


def _settings(config: Config):
    if config.workers is None:
        raise ConfigError(
            "workers: not set (expected a workers: section, and database_url on PostgreSQL, "
            "for sends to go through workers)"
        )
    return config.workers


def conninfo(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it (no driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(config: Config):
    """The procrastinate app over the ledger's database, with the shard task bound to `config`.
    Its tables are made on first use (`_ensure_schema`)."""
    procrastinate = _procrastinate()
    settings = _settings(config)
    assert config.database_url is not None
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(config.database_url)))

    def send_shard(**fields: Any) -> None:
        run_shard(config, Shard(**fields))

    # Retries: a server down or a claim still held elsewhere (ShardLeft), every 10 s more, for
    # about half a day; after that the draft stays `started` and the daemon enqueues it again.
    retry = procrastinate.RetryStrategy(max_attempts=40, linear_wait=10)
    app.task(name=TASK, queue=settings.queue, retry=retry)(send_shard)
    return app


def _procrastinate() -> Any:
    """The queue's library, which only `workers:` needs (the `workers` extra)."""
    try:
        import procrastinate
    except ImportError:
        raise ConfigError(
            "workers: the queue library is not installed (expected pip install 'syndicate[workers]')"
        ) from None
    return procrastinate


def _reachable(config: Config) -> None:
    """One line, not a traceback, when the queue's database cannot be reached."""
    import psycopg

    assert config.database_url is not None
    try:
        psycopg.connect(conninfo(config.database_url), connect_timeout=10).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeliveryError(f"workers: cannot reach the queue's database ({first})") from None


def _ensure_schema(app: Any) -> None:
    """procrastinate's tables, made once (its schema script is not idempotent)."""
    connector = app.connector.get_sync_connector()
    found = connector.execute_query_one(query="SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS made")
    if not found["made"]:
        with contextlib.suppress(Exception):  # another process made them at the same moment
            app.schema_manager.apply_schema()


def shards_of(config: Config, planned: Send) -> list[Shard]:
    """A send's shards: keyset ranges of about `shard_size` readers for a list of the store, else
    one shard. The ranges come from one query over the list (`boundaries`), never the list."""
    size = _settings(config).shard_size
    ids = (planned.channel, planned.target, planned.draft_key)
    settings = mail_target(config, planned.channel, planned.target)
    if settings is None or not isinstance(settings.recipients, SubscriberList):
        return [Shard(*ids, 0)]
    with SubscriberStore.from_config(config) as store:
        bounds = store.boundaries(settings.recipients.name, _MAILED, size)
        if bounds and len(bounds) * size == store.count(settings.recipients.name, _MAILED):
            bounds.pop()  # the last row ends the list: the open last shard starts a row earlier
    starts = [0, *bounds]
    ends: list[int | None] = [*bounds, None]
    return [Shard(*ids, n, after, upto) for n, (after, upto) in enumerate(zip(starts, ends, strict=True))]


def enqueue(config: Config, sends: Sequence[Send], *, app: Any = None) -> list[Queued]:
    """Put each send on the queue, shard by shard, after storing its draft and recording it
    `started` (with the messages it plans): what a worker needs is then in the ledger. A shard
    already waiting on the queue is not added twice; one that ran is added again and finds its
    messages sent (the ledger's claims make a second run harmless)."""
    app = app or make_app(config)
    already = _procrastinate().exceptions.AlreadyEnqueued
    queued: list[Queued] = []
    outcome = Outcome()
    with open_ledger(config) as ledger, app.open():
        _ensure_schema(app)
        for planned in sends:
            draft = draft_for(config, planned, outcome, ledger, ledger)
            if draft is None:  # not composable: the problem is in `outcome.problems`
                continue
            settings = mail_target(config, planned.channel, planned.target)
            count = 1 if settings is None else len(Readers(planned.target, settings, config, write=True))
            ids = (planned.channel, planned.target, planned.draft_key)
            ledger.set_draft_state(ids, "started", planned=count, articles=[s for s, _ in draft.sources])
            shards = shards_of(config, planned)
            for shard in shards:
                task = app.configure_task(TASK, queueing_lock=shard.lock, lock=shard.lock)
                with contextlib.suppress(already):
                    task.defer(**asdict(shard))
            queued.append(Queued(planned, count, len(shards)))
    if outcome.problems:
        raise DeliveryError("; ".join(str(p) for p in outcome.problems))
    return queued


def run_shard(config: Config, shard: Shard) -> Report:
    """Send one shard as `syndicate send` would, through the ledger. Raises ShardLeft when
    messages are left (the queue retries the job); marks the draft `finished` when this shard
    settled its last message."""
    ids = (shard.channel, shard.target, shard.draft_key)
    with open_ledger(config) as ledger:  # the DKIM key: checked by the worker's start, loaded by make_target
        _as_worker(ledger, config)
        stored = ledger.draft_body(shard.channel, shard.draft_key)
        if stored is None:
            raise StateError(f"{shard.draft_key}: no stored draft in the ledger (enqueue stores it first)")
        draft = Kept.loads(stored)
        settings = mail_target(config, shard.channel, shard.target)
        readers = None
        if settings is not None:
            readers = Readers(shard.target, settings, config, write=True, span=shard.span)
        _, messages = messages_of(config, ids, draft, readers)
        report = dispatch(
            messages, make_target(shard.target, config), ledger, unknown=config.schedule.unknown
        )
        held = _held_elsewhere(ledger, ids, readers) if report.skipped else 0
        if report.pending or report.paused or held:
            why = report.why_pending or report.error or f"{held} message(s) still claimed by another worker"
            raise ShardLeft(f"{shard.draft_key} shard {shard.index}: {why}")
        _finish_if_settled(ledger, ids)
    return report


def _as_worker(ledger: Ledger, config: Config) -> None:
    """A shard's claims are its own (`Ledger.claimant`): not its state folder's, which other
    workers on this machine share, nor its process's, whose other shards (`--concurrency`) may
    be sending right now; so `recover()` leaves a live sibling's claims alone. A claim of
    another machine's worker counts as ended once older than the lease."""
    ledger.folder = f"worker-{uuid.uuid4().hex[:12]}"
    ledger.runs_beside = True
    ledger.lease = timedelta(seconds=_settings(config).lease_seconds)


def _held_elsewhere(ledger: Ledger, ids: tuple[str, str, str], readers: Readers | None) -> int:
    """The shard's messages still `in_flight` under another process's claim after the run."""
    chunks = [[""]] if readers is None else ([address_key(r.email) for r in c] for c in readers.chunks())
    held = 0
    for chunk in chunks:
        known = ledger.statuses_of(*ids, chunk)
        held += sum(1 for who in chunk if known.get(who, ("pending", ""))[0] == "in_flight")
    return held


def _finish_if_settled(ledger: Ledger, ids: tuple[str, str, str]) -> None:
    """The draft is `finished` once every message it planned has a settled row."""
    counts = ledger.message_counts(ids)
    if any(counts.get(status, 0) for status in ("pending", "retry", "in_flight")):
        return
    planned = next((row.planned for row in ledger.drafts("started") if row.draft == ids), None)
    if planned is not None and sum(counts.values()) >= planned:
        ledger.set_draft_state(ids, "finished")


def run_worker(config: Config, say: Say, *, concurrency: int = 1, name: str | None = None) -> None:
    """Take shards until SIGTERM or SIGINT (the shard in hand is finished first). Beside the
    worker, `_reclaim` hands the shards of workers that stopped sending heartbeats back to the
    queue."""
    settings = _settings(config)
    check_keys(config)
    app = make_app(config)
    _reachable(config)
    name = name or f"syndicate-{os.uname().nodename}-{os.getpid()}"
    logging.getLogger("procrastinate").setLevel(logging.WARNING)

    async def main() -> None:
        async with app.open_async():
            await asyncio.to_thread(_ensure_schema, app)
            say("worker", name=name, queue=settings.queue, concurrency=concurrency)
            reclaim = asyncio.create_task(_reclaim(app, config, say))
            try:
                await app.run_worker_async(
                    queues=[settings.queue],
                    name=name,
                    concurrency=concurrency,
                    update_heartbeat_interval=settings.stalled_seconds / 3,
                    stalled_worker_timeout=settings.stalled_seconds,
                    fetch_job_polling_interval=min(5.0, settings.stalled_seconds),
                    delete_jobs="successful",
                )
            finally:
                reclaim.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reclaim

    asyncio.run(main())
    say("stopped", name=name)


async def _reclaim(app: Any, config: Config, say: Say) -> None:
    """Every third of `stalled_seconds`: the shards of workers silent for longer go back to the
    queue. Every worker does this; a shard two of them hand back at once is handed back once
    (the second finds it no longer `doing`)."""
    settings = _settings(config)
    while True:
        await asyncio.sleep(settings.stalled_seconds / 3)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                queue=settings.queue, seconds_since_heartbeat=settings.stalled_seconds
            )
        except Exception as exc:  # the database away for a moment: try again at the next tick
            say("waiting", reason=f"cannot look for stalled shards: {exc}")
            continue
        for job in stalled:
            try:
                await app.job_manager.retry_job(job)
            except Exception:  # another worker handed it back first
                continue
            say("reclaimed", shard=job.queueing_lock or str(job.id))
