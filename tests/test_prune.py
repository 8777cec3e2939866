"""The ledger at scale: the index the planner's queries use, and `prune` with its summaries, on
a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from syndicate.cli import cli
from syndicate.deliver import MessageKey
from syndicate.ledger import Ledger, sqlite_url

OLD = ("weekly", "newsletter", "weekly:2026-01-05")  # finished long ago, every message settled
DOUBT = ("weekly", "newsletter", "weekly:2026-01-12")  # finished long ago, a message left unknown
RUNNING = ("weekly", "newsletter", "weekly:2026-01-19")  # started: its run may resume
RECENT = ("weekly", "newsletter", "weekly:2026-06-01")  # finished after the date
T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)
BEFORE = datetime(2026, 3, 1, tzinfo=UTC)


def _fill(ledger: Ledger, draft, outcomes: list[str], state: str) -> None:
    for n, outcome in enumerate(outcomes):
        key = MessageKey(*draft, f"r{n}@example.org")
        ledger.mark_in_flight(key, "h")
        if outcome != "in_flight":
            ledger.mark(key, outcome, None if outcome == "sent" else "550 no")  # type: ignore[arg-type]
    ledger.set_draft_state(draft, state, planned=len(outcomes))  # type: ignore[arg-type]


def _ledger_of_four(url: str, clock_at) -> Ledger:
    ledger = Ledger(url)
    clock_at(T0)
    _fill(ledger, OLD, ["sent", "sent", "failed"], "finished")
    _fill(ledger, DOUBT, ["sent", "unknown"], "finished")
    _fill(ledger, RUNNING, ["sent", "in_flight"], "started")
    clock_at(T0 + timedelta(days=120))
    _fill(ledger, RECENT, ["sent"], "finished")
    return ledger


def _facts(ledger: Ledger) -> tuple:
    """Everything the planner, `status` and continuity read of the ledger."""
    return (
        ledger.counts(),
        {d: ledger.message_counts(d) for d in (OLD, DOUBT, RUNNING, RECENT)},
        ledger.sent_draft_keys("weekly", "newsletter"),
        ledger.settled_draft_keys("weekly", "newsletter"),
        ledger.sent_total(),
        ledger.draft_went_out("weekly", OLD[2]),
    )


def test_prune_keeps_every_count_and_what_may_still_go_out(ledger_url, clock_at):
    with _ledger_of_four(ledger_url, clock_at) as ledger:
        facts = _facts(ledger)
        rows = len(ledger.recent(100))
        dry = ledger.prune(BEFORE, dry_run=True)
        assert (dry.drafts, dry.rows, dry.kept) == (1, 3, 1) and len(ledger.recent(100)) == rows
        done = ledger.prune(BEFORE)
        assert (done.drafts, done.rows, done.kept) == (1, 3, 1)
        assert len(ledger.recent(100)) == rows - 3 and ledger.deliveries_of(OLD) == []
        assert _facts(ledger) == facts
        assert facts[1][OLD] == {"failed": 1, "sent": 2} and facts[4] == 5
        # Its readers, with a row or not (one who joined since), are not sent it again.
        readers = ["r0@example.org", "r2@example.org", "new@example.org"]
        assert {s for s, _ in ledger.statuses_of(*OLD, readers).values()} == {"sent"}
        assert ledger.statuses_of(*RECENT, ["new@example.org"]) == {}
        again = ledger.prune(BEFORE)  # nothing left to prune
        assert (again.drafts, again.rows) == (0, 0) and _facts(ledger) == facts
    with Ledger(ledger_url, read_only=True) as reader:
        assert _facts(reader) == facts


def test_a_resent_pruned_draft_adds_to_its_summary(ledger_url, clock_at):
    with _ledger_of_four(ledger_url, clock_at) as ledger:
        ledger.prune(BEFORE)
        clock_at(T0 + timedelta(days=1))
        _fill(ledger, OLD, ["sent"], "finished")  # `--resend` to r0 (a new row)
        assert ledger.message_counts(OLD) == {"failed": 1, "sent": 3}
        ledger.prune(BEFORE)
        assert ledger.message_counts(OLD) == {"failed": 1, "sent": 3} and ledger.sent_total() == 6


def test_the_planners_queries_use_the_index_and_an_old_ledger_gains_it(tmp_path):
    url = sqlite_url(tmp_path / "ledger.sqlite")
    with Ledger(url) as ledger:
        _fill(ledger, OLD, ["sent"], "finished")
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        db.execute("DROP INDEX deliveries_by_status")
    with Ledger(url) as ledger, ledger.engine.connect() as conn:
        plan = " ".join(
            row[-1]
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT DISTINCT draft_key FROM deliveries "
                    "WHERE channel = 'weekly' AND target = 'newsletter' AND status = 'sent'"
                )
            )
        )
        assert "COVERING INDEX deliveries_by_status" in plan, plan


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_postgresql_answers_sent_drafts_from_the_index(ledger_url):
    """20,000 rows over 10 targets, as the planner meets them: a range of the index, no row read."""
    Ledger(ledger_url).close()
    with create_engine(ledger_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(
            text(
                "INSERT INTO deliveries (channel, target, draft_key, recipient, content_hash, status,"
                " attempts, created_at, updated_at) SELECT 'weekly', 't' || (n % 10), 'd' || (n / 1000),"
                " 'r' || n, 'h', CASE WHEN n % 7 = 0 THEN 'failed' ELSE 'sent' END, 1, now(), now()"
                " FROM generate_series(1, 20000) AS n"
            )
        )
        conn.execute(text("VACUUM ANALYZE deliveries"))
        plan = " ".join(
            row[0]
            for row in conn.execute(
                text(
                    "EXPLAIN SELECT DISTINCT draft_key FROM deliveries "
                    "WHERE channel = 'weekly' AND target = 't3' AND status = 'sent'"
                )
            )
        )
    assert "Index Only Scan using deliveries_by_status" in plan, plan


def _run(site, *args: str):
    return CliRunner().invoke(cli, ["--config", str(site.config_path), *args])


def test_send_prune_send_sends_nothing_again_and_status_still_counts(email_site, clock_at):
    site = email_site
    site.data["targets"]["mail-outbox"]["recipients"] = [f"r{n}@example.com" for n in range(5)]
    site.write_config()
    clock_at(datetime(2026, 3, 2, 12, tzinfo=UTC))
    first = _run(site, "send", "--due", "--backfill")
    assert first.exit_code == 0, first.output
    outbox = site.root / "outbox"
    went = sorted(p.relative_to(outbox) for p in outbox.rglob("*") if p.is_file())
    assert went
    before = _run(site, "status")
    clock_at(datetime(2026, 3, 20, 12, tzinfo=UTC))
    dry = _run(site, "ledger", "prune", "--before", "2026-03-10", "--dry-run")
    assert dry.exit_code == 0 and dry.output.startswith("would remove "), dry.output
    pruned = _run(site, "ledger", "prune", "--before", "2026-03-10", "--vacuum")
    assert pruned.exit_code == 0, pruned.output
    [line] = pruned.output.splitlines()
    assert line.startswith("removed ") and "0 message row(s)" not in line and "bytes freed" in line
    with Ledger.from_config(site.config()) as ledger:
        assert ledger.recent(1000) == []  # every draft was finished and settled: all its rows went
    again = _run(site, "send", "--due", "--backfill")
    assert again.exit_code == 0, again.output
    assert sorted(p.relative_to(outbox) for p in outbox.rglob("*") if p.is_file()) == went
    after = _run(site, "status")

    def totals(output: str) -> list[str]:
        section = output.partition("totals:\n")[2]  # up to the next heading
        return list(itertools.takewhile(lambda line: line.startswith("  "), section.splitlines()))

    assert totals(after.output) == totals(before.output) and totals(before.output)


def test_a_bad_date_is_one_line_and_exit_2(site):
    result = _run(site, "ledger", "prune", "--before", "last tuesday")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --before 'last tuesday': not a date (expected YYYY-MM-DD or an ISO 8601 instant)"
    )


def test_rows_from_before_keys_were_normalised_are_found_by_the_database(ledger_url):
    """The skip pass asks the database for a draft's unnormalised rows only: upper case, and an
    address not in ASCII (a lower-case IDN domain, which SQL's lower() leaves as it is)."""
    with Ledger(ledger_url) as ledger:
        written = ["R1@Example.org", "r2@bücher.example", "r3@example.org"]
        for who in written:
            ledger.mark_in_flight(MessageKey(*OLD, who), "h0")
            ledger.mark(MessageKey(*OLD, who), "sent")
        ledger.flush()
        wanted = ["r1@example.org", "r2@xn--bcher-kva.example", "r3@example.org", "r4@example.org"]
        assert ledger.statuses_of(*OLD, wanted) == {who: ("sent", "h0") for who in wanted[:3]}
        assert set(ledger._legacy[OLD]) == {"r1@example.org", "r2@xn--bcher-kva.example"}
