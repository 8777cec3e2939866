"""A draft is one draft: a digest stopped part-way (SIGTERM, kill -9) is finished by the next
daemon start as it was first composed, whatever was edited meanwhile; `send --all` names its
digest by the window, so `--all` then `--due`, or `--all` resumed after midnight, is one draft;
an address is one reader whatever its case. Real processes, 500 readers on a loopback SMTP
sink, every figure counted at the sink."""

from __future__ import annotations

import email
import hashlib
import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from syndicate import clock
from syndicate.deliver import MessageKey
from syndicate.keys import digest_key
from syndicate.ledger import Ledger
from syndicate.schedule import latest_digest_end

from .conftest import SmtpSink, child_env, free_port, loopback_smtp, running_sink
from .test_daemon import daemon_process, wait_for, write

READERS = 500
STOP_AT = 150


def readers_csv(site, upper: bool = False) -> str:
    path = site.root / "readers.csv"
    lines = [f"r{n:04d}@example.org" for n in range(READERS)]
    path.write_text("email\n" + "".join(f"{line.upper() if upper else line}\n" for line in lines))
    return str(path)


def everyone() -> set[str]:
    return {f"r{n:04d}@example.org" for n in range(READERS)}


def digest_site(site, port: int, *, every: str = "day", at: str = "08:00", **settings) -> None:
    """One digest channel to 500 readers over a loopback sink, its subject naming its lead article
    (so an edit to it would show in the subject), sent at 150 messages a second."""
    site.data["site"]["timezone"] = "UTC"
    schedule = {"every": every, "at": at} if every == "day" else {"every": "week", "weekday": "mon", "at": at}
    site.data["channels"] = {
        "digest": {
            "kind": "email",
            "mode": "digest",
            "schedule": schedule,
            "subject": "{{ articles[0].title }}: {{ articles|length }} new",
            "targets": ["newsletter"],
        }
    }
    site.data["targets"] = {"newsletter": loopback_smtp(port, readers_csv(site), rate=150)}
    site.data.update(settings)
    site.write_config()


class Log:
    """The JSON log lines of a daemon process, read as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.events: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def named(self, event: str) -> list[dict]:
        return [e for e in self.events if e["event"] == event]

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=60)
        self.thread.join(10)
        assert self.process.returncode == 0 and "Traceback" not in err, err
        return err


def start_daemon(site) -> Log:
    return Log(daemon_process(site))


def due_in_a_few_seconds(clock_at) -> str:
    """Move the clock to 3 s before a minute's start and return that minute as `HH:MM`: a daily
    digest at that time fires 3 s into the test."""
    start = (clock.now() + timedelta(minutes=2)).replace(second=0, microsecond=0)
    clock_at(start - timedelta(seconds=3))
    return f"{start:%H:%M}"


def body_hash(raw: bytes, reader: str) -> str:
    """The plain-text part with what is personal to the reader (the address, the unsubscribe
    link) taken out: the same for every reader of one version of a draft."""
    message = email.message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    kept = [line.replace(reader, "") for line in text.splitlines() if "nsubscribe" not in line]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def versions(sink) -> Counter[tuple[str, str]]:
    """(subject, body hash) -> copies at the sink."""
    with sink.lock:
        received = list(sink.received)
    found: Counter[tuple[str, str]] = Counter()
    for reader, raw in received:
        subject = str(email.message_from_bytes(raw, policy=policy.default)["Subject"])
        found[(subject, body_hash(raw, reader))] += 1
    return found


def stop_digest_part_way(site, sink, how: signal.Signals) -> int:
    """Start the daemon, let the digest fire, stop it `how` once 150 readers have it. Returns how
    many messages the ledger left in flight (only a kill -9 leaves any)."""
    first = start_daemon(site)
    wait_for(lambda: len(sink.received) >= STOP_AT, timeout=60, log=first.events)
    first.process.send_signal(how)
    first.process.communicate(timeout=60)
    first.thread.join(10)
    assert len(sink.received) < READERS  # stopped part-way
    with Ledger.from_config(site.config()) as ledger:
        counts = ledger.counts()[("digest", "newsletter")]
        [draft] = ledger.drafts("started")
    assert draft.draft[:2] == ("digest", "newsletter")
    return counts.get("in_flight", 0)


@pytest.mark.parametrize(
    ("how", "unknown"),
    [(signal.SIGTERM, "skip"), (signal.SIGKILL, "skip"), (signal.SIGKILL, "resend")],
    ids=["sigterm", "kill-9-skip", "kill-9-resend"],
)
def test_a_digest_stopped_part_way_is_finished_by_the_next_start(
    site, smtp_sink, clock_at, capsys, how, unknown
):
    sink, port = smtp_sink
    at = due_in_a_few_seconds(clock_at)
    digest_site(site, port, at=at, schedule={"unknown": unknown})
    write(site, "harbour-lights", clock.now() - timedelta(hours=1), title="Harbour lights")
    in_flight = stop_digest_part_way(site, sink, how)
    stopped_at = len(sink.received)
    restarted = start_daemon(site)
    wait_for(lambda: restarted.named("sent") or restarted.named("failed"), timeout=60, log=restarted.events)
    restarted.stop()
    [resumed] = restarted.named("resumed")
    assert resumed["drafts"] == 1 and "digest:" in resumed["reason"]
    copies = sink.copies()
    lost = sorted(everyone() - set(copies))
    doubled = sorted(r for r, n in copies.items() if n > 1)
    assert set(copies) <= everyone()
    if how == signal.SIGTERM:
        assert in_flight == 0 and copies == dict.fromkeys(everyone(), 1)
    elif unknown == "skip":  # the one in flight may be lost, never doubled
        assert in_flight <= 1 and doubled == [] and len(lost) <= in_flight
    else:  # resent: never lost, at most the one in flight doubled
        assert in_flight <= 1 and lost == [] and len(doubled) <= in_flight
    assert len(versions(sink)) == 1  # one draft, one version
    with capsys.disabled():
        print(
            f"\n{how.name} (unknown: {unknown}) after {stopped_at} of {READERS}: {in_flight} in flight; "
            f"after the restart {sum(copies.values())} copies, {len(lost)} lost, {len(doubled)} doubled"
        )


def test_a_digest_resumed_after_an_edit_goes_out_as_it_started(site, smtp_sink, clock_at):
    """The lead article retitled and another article published into the window between the stop
    and the restart: every reader still gets the one version the first 150 got."""
    sink, port = smtp_sink
    at = due_in_a_few_seconds(clock_at)
    digest_site(site, port, at=at)
    published = clock.now() - timedelta(hours=1)
    write(site, "harbour-lights", published, title="Harbour lights")
    write(site, "pilot-boats", published - timedelta(hours=1), title="Pilot boats")
    stop_digest_part_way(site, sink, signal.SIGTERM)
    [(first_subject, _)] = versions(sink)
    assert first_subject == "Harbour lights: 2 new"
    write(site, "harbour-lights", published, title="Harbour lights, corrected")
    write(site, "night-ferry", published + timedelta(minutes=30), title="Night ferry")
    restarted = start_daemon(site)
    wait_for(lambda: restarted.named("sent") or restarted.named("failed"), timeout=60, log=restarted.events)
    restarted.stop()
    assert sink.copies() == dict.fromkeys(everyone(), 1)
    [(subject, _)] = versions(sink)  # one subject and one body for all 500
    assert subject == first_subject
    assert not any(b"corrected" in raw or b"Night ferry" in raw for _, raw in sink.received)
    [changed] = restarted.named("changed")  # said once, as one line
    assert "harbour-lights" in changed["reason"] and "night-ferry" in changed["reason"]


def run_send(site, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", *args]
    env = child_env(PYTHONUNBUFFERED="1")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, codes: tuple[int, ...] = (0,)) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode in codes and "Traceback" not in err, out + err
    return out + err


def test_send_all_then_send_due_is_one_draft(site, smtp_sink):
    """`--all` sends the week's digest under its window's key; `--due` (catch_up: send, which
    would send a draft it did not know of) then finds it sent."""
    sink, port = smtp_sink
    digest_site(site, port, every="week", schedule={"catch_up": "send"})
    write(site, "harbour-lights", clock.now() - timedelta(days=8))
    finished(run_send(site, "--all"))
    assert sink.copies() == dict.fromkeys(everyone(), 1)
    output = finished(run_send(site, "--due"))
    assert sink.copies() == dict.fromkeys(everyone(), 1), output


def test_send_all_stopped_before_midnight_and_resumed_after_is_one_draft(site, smtp_sink, clock_at):
    """`send --all` at 23:59:58 stopped (SIGTERM) after 150 readers; the article retitled; `send
    --all` again at 00:00:01, a new day: the same draft, as it started, finished for the other
    350, and one warning that the edit is not in it."""
    sink, port = smtp_sink
    digest_site(site, port, every="week")
    midnight = datetime(2026, 11, 25, tzinfo=UTC)  # Tuesday to Wednesday; the week began Monday 08:00
    write(site, "harbour-lights", midnight - timedelta(days=4))
    clock_at(midnight - timedelta(seconds=2))
    first = run_send(site, "--all")
    wait_for(lambda: len(sink.received) >= STOP_AT, timeout=60)
    first.send_signal(signal.SIGTERM)
    finished(first, codes=(143,))
    stopped_at = len(sink.received)
    assert stopped_at < READERS
    write(site, "harbour-lights", midnight - timedelta(days=4), title="Harbour lights, corrected")
    clock_at(midnight + timedelta(seconds=1))
    output = finished(run_send(site, "--all"))
    assert sink.copies() == dict.fromkeys(everyone(), 1)
    [(subject, _)] = versions(sink)
    assert subject == "harbour-lights: 1 new"
    [warning] = [line for line in output.splitlines() if "started before" in line]
    assert warning.startswith("warning: ") and "harbour-lights was edited" in warning
    with Ledger.from_config(site.config()) as ledger:
        assert {d.draft[2] for d in ledger.drafts()} == {"digest:2026-11-23"}


def test_a_list_re_exported_in_upper_case_mails_nobody_again(site, smtp_sink):
    sink, port = smtp_sink
    digest_site(site, port, every="week")
    write(site, "harbour-lights", clock.now() - timedelta(days=2))
    finished(run_send(site, "--all"))
    assert sink.copies() == dict.fromkeys(everyone(), 1)
    readers_csv(site, upper=True)  # R0000@EXAMPLE.ORG, ...
    output = finished(run_send(site, "--all"))
    assert len(sink.received) == READERS, output  # 0 new copies


def test_rows_written_before_keys_were_normalised_still_count(site, smtp_sink):
    """A ledger from before: rows keyed by the address as the list spelled it (`R0007@Example.org`).
    The list now spells them in lower case: those readers are not mailed again."""
    sink, port = smtp_sink
    digest_site(site, port, every="week")
    write(site, "harbour-lights", clock.now() - timedelta(days=2))
    config = site.config()
    end = latest_digest_end(config.channels["digest"].schedule, config.site.tz, clock.now())
    key = digest_key("digest", end, config.site.tz)
    old = [f"R{n:04d}@Example.org" for n in range(0, READERS, 7)]
    with Ledger.from_config(config) as ledger:
        for address in old:
            row = MessageKey("digest", "newsletter", key, address)
            ledger.mark_in_flight(row, "hash-of-an-older-version")
            ledger.mark(row, "sent")
    finished(run_send(site, "--all"))
    copies = sink.copies()
    assert set(copies) == everyone() - {a.lower() for a in old}
    assert set(copies.values()) == {1}


def test_address_key_folds_case_and_spells_the_domain_in_ascii():
    from syndicate.recipients import address_key, check_address

    assert address_key("R0001@EXAMPLE.org") == address_key("r0001@example.org") == "r0001@example.org"
    assert address_key(check_address("Anna@Bücher.example")) == "anna@xn--bcher-kva.example"
    assert address_key("anna@xn--bcher-kva.example") == "anna@xn--bcher-kva.example"


def test_a_draft_nobody_has_yet_goes_out_as_edited(site):
    """The server was down for the first run, so no reader has the draft: the article fixed in
    between goes out fixed, without a warning (the stored draft binds only once a message of it
    may have reached someone)."""
    port = free_port()
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    site.data["targets"] = {"newsletter": loopback_smtp(port, ["reader@example.org"])}
    site.write_config()
    write(site, "harbour-lights", clock.now() - timedelta(hours=1), title="Harbour ligths")
    output = finished(run_send(site, "harbour-lights"), codes=(1,))
    assert "cannot connect" in output
    write(site, "harbour-lights", clock.now() - timedelta(hours=1), title="Harbour lights")
    sink = SmtpSink()
    with running_sink(sink, port=port):
        output = finished(run_send(site, "harbour-lights"))
    [(subject, _)] = versions(sink)
    assert subject == "Harbour lights" and sink.copies() == {"reader@example.org": 1}
    assert "started before" not in output
