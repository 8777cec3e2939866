"""The state folder is private: 0700; the ledger, its WAL files, the job store and lock 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest

from syndicate import clock
from syndicate.daemon import JOBS_FILE, LOCK_FILE, lock_state_folder
from syndicate.deliver import MessageKey
from syndicate.gallery import render_preview
from syndicate.ledger import Ledger, sqlite_url
from syndicate.send import send

ARTICLE = "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nBody.\n"


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022, which would leave new files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ledger_creates_an_owner_only_folder_and_files(site):
    with Ledger.from_config(site.config()) as ledger:
        ledger.mark_in_flight(MessageKey("weekly", "mail-outbox", "d1", "a@example.com"), "h1")
        state = site.root / ".syndicate"
        files = sorted(p.name for p in state.iterdir())
        assert files == ["folder.id", "ledger.sqlite", "ledger.sqlite-shm", "ledger.sqlite-wal"]
        assert mode(state) == 0o700
        assert {name: mode(state / name) for name in files} == dict.fromkeys(files, 0o600)


def test_the_daemon_lock_and_job_store_are_owner_only(site):
    state = site.root / ".syndicate"
    handle = lock_state_folder(state)
    try:
        sqlite_url(state / JOBS_FILE)
        assert mode(state) == 0o700
        assert mode(state / LOCK_FILE) == 0o600 and mode(state / JOBS_FILE) == 0o600
    finally:
        handle.close()


@pytest.mark.parametrize("first", ["preview", "dry run"])
def test_previews_and_dry_runs_create_it_owner_only_too(site, first):
    site.article("a.md", ARTICLE)
    if first == "preview":
        render_preview(site.config(), None, None, None, clock.now())
    else:
        send(site.config(), select="all", dry_run=True)
    assert mode(site.root / ".syndicate") == 0o700


def test_an_existing_folder_keeps_its_mode(site):
    shared = site.root / ".syndicate"
    shared.mkdir(mode=0o750)
    with Ledger.from_config(site.config()):
        pass
    assert mode(shared) == 0o750 and mode(shared / "ledger.sqlite") == 0o600


def test_a_ledger_deleted_while_open_is_made_again_owner_only(site):
    with Ledger.from_config(site.config()) as ledger:
        path = site.root / ".syndicate" / "ledger.sqlite"
        ledger.engine.dispose()  # the pool's connections go; the next one opens the file anew
        for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
            (site.root / ".syndicate" / name).unlink(missing_ok=True)
        with ledger.engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
            conn.commit()
        assert path.exists() and mode(path) == 0o600


def test_outbox_preview_and_dry_run_files_with_addresses_are_owner_only(site, tmp_path):
    site.article("a.md", ARTICLE)
    outcome = send(site.config(), select="all")
    assert outcome.ok
    written = [p for p in (site.root / "outbox").rglob("*") if p.is_file()]
    assert written and {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}
    assert all(mode(p) == 0o700 for p in (site.root / "outbox").rglob("*") if p.is_dir())
    out = tmp_path / "previews"
    render_preview(site.config(), None, None, out, clock.now())
    previews = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".eml" for p in previews)
    assert {p.name: mode(p) for p in previews} == {p.name: 0o600 for p in previews}
