"""Stable identity: a renamed article file is the same article (same bytes, same `id`, or the same
explicit `url`), so nothing it sent goes out again; a renamed file with other content is new.

Deliveries are counted where they land: the loopback SMTP sink's copies per reader and the
social outbox's files. Sends run as real `syndicate` processes (and `send()` in process)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from syndicate import clock
from syndicate import identity as identity_module
from syndicate.content import load_articles
from syndicate.identity import resolve
from syndicate.ledger import Ledger
from syndicate.send import send

from .conftest import child_env, loopback_smtp

READERS = ["ann@example.org", "bo@example.org", "cy@example.org"]
ARTICLE = """---
title: '{title}'
publish_date: '{date}'
description: 'When the harbour fills, and why it matters.'
cta: 'Reply and tell us your tides.'
{extra}---
{body}
"""


@pytest.fixture
def renaming(site, smtp_sink):
    """A `mode: single` email channel to three readers on a loopback sink, and LinkedIn posts to a
    file outbox; sends whose time passed are sent (catch_up: send), whatever `send --due` does
    with late ones by default."""
    sink, port = smtp_sink
    site.data["channels"] = {
        "letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]},
        "linkedin": {"kind": "social", "network": "linkedin", "targets": ["social-outbox"]},
    }
    site.data["targets"]["newsletter"] = loopback_smtp(port, READERS, retry_delay=0.01)
    site.data["schedule"] = {"catch_up": "send"}
    site.write_config()
    return site, sink


def write(
    site, name: str, *, title: str = "Tide Tables", body: str = "The harbour fills twice a day.", **extra
):
    date = (clock.now() - timedelta(seconds=30)).replace(microsecond=0).isoformat()
    lines = "".join(f"{key}: {value}\n" for key, value in extra.items())
    return site.article(name, ARTICLE.format(title=title, date=date, extra=lines, body=body))


def syndicate(site, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(site.config_path), *args],
        env=child_env(),
        cwd=site.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def posts(site) -> list[str]:
    return sorted(p.name for p in (site.root / "outbox" / "social").glob("*.json"))


def draft_keys(site) -> set[str]:
    with Ledger.from_config(site.config()) as ledger:
        return {row.key.draft_key for row in ledger.recent(1000)}


def rename(site, old: str, new: str) -> None:
    (site.content / new).parent.mkdir(parents=True, exist_ok=True)
    (site.content / old).rename(site.content / new)


def renamed_line(new: str, old: str, why: str) -> str:
    return (
        f"warning: content/{new}: file: was content/{old} ({why}): the same article, "
        "so nothing already sent for it goes out again"
    )


@pytest.mark.parametrize("selection", ["--due", "--all"])
def test_a_renamed_file_is_not_sent_again(renaming, selection):
    site, sink = renaming
    write(site, "tide-tables.md")
    first = syndicate(site, "send", selection)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert len(posts(site)) == 1

    rename(site, "tide-tables.md", "harbour-notes.md")  # the same bytes under another name
    again = syndicate(site, "send", selection)
    assert again.returncode == 0, again.stdout + again.stderr
    assert renamed_line("harbour-notes.md", "tide-tables.md", "same content") in again.stderr.splitlines()
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert len(posts(site)) == 1
    # Its sends keep the keys the ledger has always had for it.
    assert draft_keys(site) == {"letters:tide-tables", "linkedin:tide-tables"}

    # Named by its new slug or file, it is the same article still; the rename is told once.
    for name in ("harbour-notes", "content/harbour-notes.md"):
        named = syndicate(site, "send", name)
        assert named.returncode == 0, named.stdout + named.stderr
        assert "warning:" not in named.stderr
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert len(posts(site)) == 1


def test_a_renamed_file_with_a_new_body_and_the_same_id_is_not_sent_again(renaming, monkeypatch):
    site, sink = renaming
    monkeypatch.chdir(site.root)
    write(site, "tide-tables.md", id="tide-1042")
    assert send(site.config(), select="all").ok
    (site.content / "tide-tables.md").unlink()
    write(site, "harbour-notes.md", id="tide-1042", title="Harbour Notes", body="Rewritten from the top.")

    outcome = send(site.config(), select="due")
    assert outcome.ok
    assert [f"warning: {p}" for p in outcome.renamed] == [
        renamed_line("harbour-notes.md", "tide-tables.md", "same id 'tide-1042'")
    ]
    assert sum(report.sent for _, report in outcome.reports) == 0
    assert send(site.config(), select="all").ok
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert len(posts(site)) == 1


@pytest.mark.parametrize("field", ["url", "canonical_url"])
def test_a_renamed_file_with_the_same_explicit_url_is_not_sent_again(renaming, monkeypatch, field):
    site, sink = renaming
    monkeypatch.chdir(site.root)
    url = "https://example.org/2026/tide-tables"
    write(site, "tide-tables.md", **{field: url})
    assert send(site.config(), select="all").ok
    (site.content / "tide-tables.md").unlink()
    write(site, "tides.md", body="Edited after it went out.", **{field: url})

    for selection in ("due", "all", ["tides"]):
        outcome = send(site.config(), select=selection)
        assert outcome.ok and sum(report.sent for _, report in outcome.reports) == 0
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert len(posts(site)) == 1
    assert draft_keys(site) == {"letters:tide-tables", "linkedin:tide-tables"}


def test_a_renamed_file_with_other_content_and_no_id_or_url_is_a_new_article(renaming):
    site, sink = renaming
    write(site, "tide-tables.md")
    assert syndicate(site, "send", "--all").returncode == 0
    rename(site, "tide-tables.md", "harbour-notes.md")
    write(site, "harbour-notes.md", title="Harbour Notes", body="Another article altogether.")

    again = syndicate(site, "send", "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "warning:" not in again.stderr
    assert sink.copies() == dict.fromkeys(READERS, 2)
    assert len(posts(site)) == 2
    assert draft_keys(site) == {
        "letters:tide-tables",
        "linkedin:tide-tables",
        "letters:harbour-notes",
        "linkedin:harbour-notes",
    }


def test_a_new_file_taking_the_name_of_one_renamed_away_is_a_new_article(renaming):
    site, sink = renaming
    write(site, "tide-tables.md")
    assert syndicate(site, "send", "--all").returncode == 0
    rename(site, "tide-tables.md", "harbour-notes.md")
    write(site, "tide-tables.md", title="Tide Tables, Part Two", body="A new article in the old name.")

    again = syndicate(site, "send", "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert renamed_line("harbour-notes.md", "tide-tables.md", "same content") in again.stderr.splitlines()
    # The renamed one keeps its keys; the new one is sent, under a stem of its own.
    assert sink.copies() == dict.fromkeys(READERS, 2)
    assert len(posts(site)) == 2
    assert draft_keys(site) == {
        "letters:tide-tables",
        "linkedin:tide-tables",
        "letters:tide-tables~2",
        "linkedin:tide-tables~2",
    }
    assert syndicate(site, "send", "--all").returncode == 0
    assert sink.copies() == dict.fromkeys(READERS, 2)


def test_a_ledger_from_before_identities_sends_nothing_again_and_then_follows_renames(renaming):
    site, sink = renaming
    write(site, "tide-tables.md")
    write(site, "fog-signals.md", title="Fog Signals", body="Horns in the grey.")
    assert syndicate(site, "send", "--all").returncode == 0
    assert sink.copies() == dict.fromkeys(READERS, 2)
    # What an earlier version left: the same deliveries and drafts, keyed `channel:slug`, and no
    # `articles` table.
    ledger_file = site.root / ".syndicate" / "ledger.sqlite"
    with sqlite3.connect(ledger_file) as db:
        db.execute("DROP TABLE articles")
        keys = {key for (key,) in db.execute("SELECT DISTINCT draft_key FROM deliveries")}
    assert keys == {f"{c}:{s}" for c in ("letters", "linkedin") for s in ("tide-tables", "fog-signals")}

    upgraded = syndicate(site, "send", "--due")  # the first run after the upgrade
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert sink.copies() == dict.fromkeys(READERS, 2) and len(posts(site)) == 2
    with sqlite3.connect(ledger_file) as db:
        known = dict(db.execute("SELECT stem, path FROM articles"))
    assert known == {"tide-tables": "tide-tables.md", "fog-signals": "fog-signals.md"}

    rename(site, "tide-tables.md", "2026/tides.md")
    moved = syndicate(site, "send", "--all")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert renamed_line("2026/tides.md", "tide-tables.md", "same content") in moved.stderr.splitlines()
    assert sink.copies() == dict.fromkeys(READERS, 2) and len(posts(site)) == 2
    assert draft_keys(site) == keys


def test_a_dry_run_finds_the_rename_and_records_nothing(renaming):
    site, _sink = renaming
    write(site, "tide-tables.md")
    assert syndicate(site, "send", "--all").returncode == 0
    rename(site, "tide-tables.md", "harbour-notes.md")
    dry = syndicate(site, "send", "--all", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert renamed_line("harbour-notes.md", "tide-tables.md", "same content") in dry.stderr.splitlines()
    assert "letters:tide-tables -> newsletter" in dry.stdout
    with Ledger.from_config(site.config()) as ledger:
        [known] = ledger.known_articles()
    assert known.path == "tide-tables.md"  # not recorded: the real run still tells it
    real = syndicate(site, "send", "--all")
    assert renamed_line("harbour-notes.md", "tide-tables.md", "same content") in real.stderr.splitlines()


@pytest.mark.parametrize("few", [0, 100])
def test_resolve_finds_each_article_its_recorded_stem(site, monkeypatch, few):
    """The rule itself, on a ledger file: identity first, then the same bytes of a file that is
    gone, then the slug; an id added later keeps the slug's stem. Whether it reads every row (a
    large folder) or only those near the articles (a daemon's job), the answer is the same."""
    monkeypatch.setattr(identity_module, "FEW", few)
    site.article("a.md", ARTICLE.format(title="A", date="2026-01-01", extra="", body="a"))
    site.article("b.md", ARTICLE.format(title="B", date="2026-01-01", extra="", body="b"))
    config = site.config()
    with Ledger.from_config(config) as ledger:
        first, renamed = resolve(config, ledger, load_articles(config).articles)
        assert [(a.slug, a.stem) for a in first] == [("a", None), ("b", None)] and renamed == []

        rename(site, "a.md", "z.md")  # same bytes
        site.article("b.md", ARTICLE.format(title="B", date="2026-01-01", extra="id: 7\n", body="b"))
        second, renamed = resolve(config, ledger, load_articles(config).articles)
        assert [(a.slug, a.stem) for a in second] == [("b", None), ("z", "a")]
        assert [str(p).split(": ", 2)[2] for p in renamed] == [
            f"was {site.content / 'a.md'} (same content): the same article, "
            "so nothing already sent for it goes out again"
        ]
        assert {k.stem: k.identity for k in ledger.known_articles()} == {"a": "slug:z", "b": "id:7"}

        again, renamed = resolve(config, ledger, load_articles(config).articles)
        assert [(a.slug, a.stem) for a in again] == [("b", None), ("z", "a")] and renamed == []


def test_articles_sharing_a_slug_at_different_urls_are_each_sent_once(renaming):
    """`a/hello.md` and `b/hello.md` under a `/:path/` permalink are two articles. One that was
    sent while it had the slug to itself keeps its sends when a second arrives (even one whose
    file sorts first), and the second is sent once, under a name of its own."""
    site, sink = renaming
    site.data["content"]["permalink"] = "/:path/"
    site.write_config()
    write(site, "b/hello.md", title="Hello from B")
    first = syndicate(site, "send", "--due")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert draft_keys(site) == {"letters:hello", "linkedin:hello"}

    write(site, "a/hello.md", title="Hello from A")
    second = syndicate(site, "send", "--due")
    assert second.returncode == 0, second.stdout + second.stderr
    assert sink.copies() == dict.fromkeys(READERS, 2)  # A once; B not again
    assert draft_keys(site) == {"letters:hello", "linkedin:hello", "letters:hello~2", "linkedin:hello~2"}
    shared = [
        json.loads(p.read_text())["article"]["title"]
        for p in (site.root / "outbox" / "social").glob("*.json")
    ]
    assert sorted(shared) == ["Hello from A", "Hello from B"]

    third = syndicate(site, "send", "--due")
    assert third.returncode == 0, third.stdout + third.stderr
    assert sink.copies() == dict.fromkeys(READERS, 2)
    assert len(posts(site)) == 2
    loaded = load_articles(site.config())
    assert sorted(a.url for a in loaded.articles) == [
        "https://example.com/articles/a/hello/",
        "https://example.com/articles/b/hello/",
    ]


def test_two_articles_at_one_url_are_an_error_naming_both(site):
    site.article("a/hello.md", "---\ntitle: One\npublish_date: '2024-01-01'\n---\nb\n")
    site.article("b/hello.md", "---\ntitle: Two\npublish_date: '2024-01-01'\n---\nb\n")
    loaded = load_articles(site.config())
    assert [a.title for a in loaded.articles] == ["One"]
    (error,) = loaded.errors
    assert error.path.name == "hello.md" and error.path.parent.name == "b"
    assert error.field == "slug"
    assert "'https://example.com/articles/hello' is already the URL of" in error.message
    assert "a/hello.md" in error.message
