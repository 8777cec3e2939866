"""A lost ledger is noticed: real `syndicate` processes against a loopback SMTP sink, counted at
the sink, with the ledger deleted, emptied (0 bytes) and stripped of rows between runs."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys

import pytest

from syndicate.continuity import MARKER_FILE

from .conftest import child_env, loopback_smtp

READERS = 500
ARTICLE = """---
title: 'Harbour Notes {n}'
description: 'What the harbour saw this week.'
publish_date: '2026-01-1{n}'
cta: 'Reply and tell us.'
---
Body {n}.
"""


def syndicate(site, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), *args]
    return subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def mailed(site, smtp_sink):
    """A site whose digest went to 500 readers on a loopback sink: (site, sink)."""
    sink, port = smtp_sink
    csv = site.root / "readers.csv"
    csv.write_text("email\n" + "".join(f"r{n:03d}@example.org\n" for n in range(READERS)))
    site.data["channels"] = {"weekly": {"kind": "email", "mode": "digest", "targets": ["newsletter"]}}
    site.data["targets"] = {"newsletter": loopback_smtp(port, str(csv))}
    site.write_config()
    for n in range(2):
        site.article(f"notes-{n}.md", ARTICLE.format(n=n))
    first = syndicate(site, "send", "--all")
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(sink.copies()) == READERS and set(sink.copies().values()) == {1}
    return site, sink


def ledger_file(site):
    return site.root / ".syndicate" / "ledger.sqlite"


@pytest.mark.parametrize("how", ["deleted", "emptied", "rows removed"])
def test_a_lost_ledger_is_refused_and_nothing_is_sent_again(mailed, how):
    site, sink = mailed
    marker = site.root / ".syndicate" / MARKER_FILE
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    if how == "deleted":
        ledger_file(site).unlink()
    elif how == "emptied":
        ledger_file(site).write_bytes(b"")
    else:
        with sqlite3.connect(ledger_file(site)) as db:
            db.execute("DELETE FROM deliveries WHERE recipient >= 'r250'")
    for args in (["send", "--all"], ["send", "--due", "--backfill"], ["send", "notes-0"]):
        refused = syndicate(site, *args)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        [line] = refused.stderr.splitlines()
        assert f"the ledger that recorded {READERS} sent message(s) is gone" in line
        assert "--new-ledger" in line and "Traceback" not in refused.stderr
    assert sum(sink.copies().values()) == READERS  # not one more message at the server
    daemon = syndicate(site, "daemon")
    assert daemon.returncode == 2 and "is gone" in daemon.stderr
    assert sum(sink.copies().values()) == READERS


def test_new_ledger_is_the_explicit_way_to_start_again(mailed):
    site, sink = mailed
    ledger_file(site).unlink()
    accepted = syndicate(site, "send", "--all", "--new-ledger")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert set(sink.copies().values()) == {2}  # what the user asked for: every reader again
    again = syndicate(site, "send", "--all")  # the new ledger is now the remembered one
    assert again.returncode == 0 and set(sink.copies().values()) == {2}
