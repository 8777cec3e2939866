"""Sends over workers: shards of the subscriber store, a real procrastinate queue in a real
PostgreSQL, `syndicate worker` processes killed with SIGKILL mid-shard, and two daemons of which
one leads. Every count is the SMTP sink's: what the server received, per reader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from syndicate.config import config_from_dict
from syndicate.errors import ConfigError
from syndicate.leader import Leadership
from syndicate.ledger import Ledger
from syndicate.queue import conninfo
from syndicate.recipients import Recipient
from syndicate.subscribers import Span, SubscriberStore

from .conftest import child_env, loopback_smtp
from .test_daemon import soon, wait_for, write

READERS = "newsletter"


def add_readers(store: SubscriberStore, count: int) -> list[str]:
    addresses = [f"reader{n:05d}@example.org" for n in range(count)]
    store.add_missing(READERS, [Recipient(a) for a in addresses], source="import")
    return addresses


def test_shards_cover_every_subscribed_reader_once(tmp_path: Path):
    store = SubscriberStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    addresses = add_readers(store, 2345)
    for gone in addresses[::7]:
        store.remove(READERS, gone)
    mailed = {a for n, a in enumerate(addresses) if n % 7}
    bounds = store.boundaries(READERS, ("subscribed",), 250)
    spans = [Span(after, upto) for after, upto in zip([0, *bounds], [*bounds, None], strict=True)]
    seen: list[str] = []
    sizes = []
    for span in spans:
        rows = [s.email for page in store.pages(READERS, ("subscribed",), 100, span) for s in page]
        assert store.count(READERS, ("subscribed",), span) == len(rows)
        sizes.append(len(rows))
        seen.extend(rows)
    store.close()
    assert sorted(seen) == sorted(mailed)  # each once: no gap, no overlap
    assert sizes[:-1] == [250] * (len(spans) - 1) and 0 < sizes[-1] <= 250


def test_workers_need_the_ledger_on_postgresql(site):
    site.data["workers"] = {"shard_size": 100}
    with pytest.raises(ConfigError, match="workers: the queue lives in the ledger's database"):
        config_from_dict(site.data, site.config_path)


@pytest.fixture
def database(pg_database: str) -> str:
    """The queue, ledger, store and jobs of one test: a database of its own."""
    return pg_database


def test_one_leader_and_the_standby_takes_over_when_it_closes(database):
    first, second = Leadership(database, "news"), Leadership(database, "news")
    other_queue = Leadership(database, "other")
    try:
        assert first.try_lead() and first.holds()
        assert not second.try_lead() and not second.holds()
        assert other_queue.try_lead()  # another publication's daemons lead their own queue
        first.close()
        assert second.try_lead() and second.holds()
        assert not first.try_lead()
    finally:
        for lead in (first, second, other_queue):
            lead.close()


class Process:
    """A `syndicate` command running in the background, its JSON log lines collected as they come."""

    def __init__(self, config: Path, *args: str) -> None:
        command = [sys.executable, "-m", "syndicate", "--config", str(config), *args, "--log-format", "json"]
        env = child_env(PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.events: list[dict] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.popen.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.popen.stderr, False), daemon=True).start()

    def _read(self, stream, events: bool) -> None:
        for line in stream:
            if events and line.startswith("{"):
                self.events.append(json.loads(line))
            else:
                self.errors.append(line)

    def said(self, event: str) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == event]

    def kill(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def queue_site(site, database: str, port: int, state: str = ".syndicate", **workers) -> Path:
    """A single-article email channel to the store list `newsletter` through an SMTP target,
    sent by workers over `database`; the config written as `config-<state>.yaml`."""
    data = dict(site.data)
    data["database_url"] = database
    data["state_dir"] = state
    data["schedule"] = {"jobstore_url": database, "rescan_seconds": 0.2}
    data["workers"] = {
        "shard_size": 100,
        "stalled_seconds": 2,
        "standby_poll_seconds": 0.2,
        "queue": "news",
        **workers,
    }
    data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    data["targets"] = {"newsletter": loopback_smtp(port, {"list": READERS}, rate=60)}
    path = site.root / f"config-{state.strip('.')}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_worker_killed_mid_shard_leaves_every_reader_mailed_once(site, smtp_sink, database, capsys):
    """A daemon and 3 workers over one PostgreSQL, 1,500 readers in 15 shards paced at 60
    messages a second per worker; one worker gets SIGKILL once the sink has 250. Its shard is
    handed to another worker when its heartbeat stops, and the sink gets every reader once: only
    a message whose data had all reached the server at the kill may be in doubt (`unknown`),
    and it is never sent twice."""
    sink, port = smtp_sink
    config = queue_site(site, database, port)
    with SubscriberStore(database) as store:
        addresses = add_readers(store, 1500)
    write(site, "tide-tables", soon(2))
    daemon = Process(config, "daemon")
    workers = [Process(config, "worker", "--name", f"w{n}") for n in range(3)]
    processes = [daemon, *workers]
    try:
        wait_for(lambda: len(sink.received) >= 250, timeout=90, log=daemon.events)
        victim = workers[0]
        victim.kill()
        wait_for(lambda: len(sink.received) >= 1500 - 1, timeout=120, log=workers[1].events)
        wait_for(lambda: _draft_state(database) == "finished", timeout=60, log=_why(database, workers))
    finally:
        for process in processes:
            process.stop()
    copies = sink.copies()
    with Ledger(database) as ledger:
        counts = ledger.counts()[("letters", "newsletter")]
        doubt = {d.key.recipient for d in ledger.unknowns()}
    assert len(doubt) <= 1, doubt
    assert all(copies[a] == 1 for a in addresses if a not in doubt), {
        a: copies[a] for a in addresses if copies[a] != 1
    }
    assert all(copies[a] <= 1 for a in doubt)
    assert set(copies) <= set(addresses)
    assert counts.get("sent", 0) == 1500 - len(doubt)
    assert sum(len(w.said("reclaimed")) for w in workers[1:]) >= 1  # the dead worker's shard went back
    assert daemon.said("queued")[0]["shards"] == 15
    with capsys.disabled():
        print(
            f"\n3 workers, one killed after 250 of 1500 arrived: {sum(copies.values())} received, "
            f"{len(doubt)} in doubt"
        )


def _why(database: str, workers: list[Process]) -> str:
    with Ledger(database, read_only=True) as ledger:
        counts = ledger.message_counts(("letters", "newsletter", "letters:tide-tables"))
        rows = ledger.drafts()
    errors = [line for w in workers for line in w.errors][-20:]
    return f"{counts} {rows} {errors} {[w.events[-5:] for w in workers]}"


def _draft_state(database: str) -> str | None:
    with Ledger(database, read_only=True) as ledger:
        return ledger.draft_state(("letters", "newsletter", "letters:tide-tables"))


def test_two_daemons_one_leads_and_the_standby_takes_over_when_it_is_killed(site, smtp_sink, database):
    """Two daemons (two state folders, one database): only the leader schedules, so an article
    goes out once; SIGKILL the leader and the standby leads, and the next article goes out once."""
    sink, port = smtp_sink
    first = queue_site(site, database, port, ".first")
    second = queue_site(site, database, port, ".second")
    with SubscriberStore(database) as store:
        addresses = add_readers(store, 40)
    leader = Process(first, "daemon")
    wait_for(lambda: leader.said("leading"), timeout=30, log=leader.errors)
    standby = Process(second, "daemon")
    worker = Process(first, "worker")
    processes = [leader, standby, worker]
    try:
        wait_for(lambda: standby.said("standby"), timeout=30, log=standby.errors)
        write(site, "harbour-notice", soon(2))
        wait_for(lambda: len(sink.received) >= 40, timeout=60, log=worker.events)
        assert not standby.said("leading")
        leader.kill()
        wait_for(lambda: standby.said("leading"), timeout=30, log=standby.errors)
        write(site, "pilot-notice", soon(2))
        wait_for(lambda: len(sink.received) >= 80, timeout=60, log=standby.events)
        wait_for(lambda: standby.said("queued"), timeout=30)
    finally:
        for process in processes:
            process.stop()
    assert sink.copies() == {a: 2 for a in addresses}
    assert [e["draft"] for e in leader.said("queued")] == ["letters:harbour-notice"]
    assert [e["draft"] for e in standby.said("queued")] == ["letters:pilot-notice"]


def test_a_leader_that_loses_its_lock_stops_and_says_so(site, smtp_sink, database):
    """The leader's session ended by the database (a network cut, a failover): it may no longer
    hold the lock, so it stops scheduling and exits non-zero for its supervisor to restart it."""
    import psycopg

    _, port = smtp_sink
    leader = Process(queue_site(site, database, port), "daemon")
    try:
        wait_for(lambda: leader.said("leading"), timeout=30, log=leader.errors)
        with psycopg.connect(conninfo(database), autocommit=True) as conn:
            ended = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ).fetchall()
        assert ended == [(True,)]
        code = leader.popen.wait(timeout=30)
    finally:
        leader.stop()
    assert code != 0
    assert any("lost the leader lock" in e.get("reason", "") for e in leader.said("failed"))
    assert not any("Traceback" in line for line in leader.errors)


def test_a_worker_whose_database_is_down_says_so_in_one_line(site):
    from click.testing import CliRunner

    from syndicate.cli import cli

    from .conftest import free_port

    site.data["database_url"] = f"postgresql+psycopg://syndicate@127.0.0.1:{free_port()}/news"
    site.data["workers"] = {"shard_size": 100}
    site.write_config()
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "worker"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: workers: cannot reach the queue's database")
    assert "Traceback" not in result.output


def test_a_shard_leaves_alone_the_claims_of_shards_running_beside_it_in_its_process(tmp_path: Path):
    """`syndicate worker --concurrency 2` runs two shards in one process, each with a ledger and a
    claimant of its own: one shard's `recover()` must not take the other's live claim for an
    ended run's (it would send that message too). A plain run of this process still does."""
    from syndicate.keys import MessageKey
    from syndicate.ledger import sqlite_url

    url = sqlite_url(tmp_path / "ledger.sqlite")
    draft = ("letters", "newsletter", "letters:tide-tables")
    key = MessageKey(*draft, "reader@example.org")
    with Ledger(url, folder="worker-a") as sending, Ledger(url, folder="worker-b") as beside:
        sending.runs_beside = beside.runs_beside = True
        assert sending.mark_in_flight(key, "h")
        beside.recover()
        assert beside.statuses_of(*draft, [key.recipient])[key.recipient][0] == "in_flight"
        with Ledger(url, folder="plain") as alone:
            alone.recover()  # the one run of this process: a claim of this pid is an ended run's
            assert alone.statuses_of(*draft, [key.recipient])[key.recipient][0] == "pending"
