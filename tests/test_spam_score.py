"""Every email syndicate writes, scored by SpamAssassin (Debian's `spamassassin`, local rules
only: no network test, no DNS blocklist) as a receiving server would: each must score 0.5 at
most. The emails are those the example site (config.yaml and content/ at the top of the
repository) and the test articles produce, written by `preview` exactly as they are sent."""

from __future__ import annotations

import mailbox
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from syndicate.config import load_config
from syndicate.preview import preview

from .conftest import DATA

REPO = Path(__file__).resolve().parent.parent
SPAMASSASSIN = shutil.which("spamassassin")
MOST = 0.5
_STATUS = re.compile(
    r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?) required=\S+ tests=(.*?)\n(?=\S)", re.M | re.S
)

pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None, reason="SpamAssassin is not installed (apt-get install spamassassin)"
)


def scores(emails: dict[str, bytes], tmp_path: Path) -> dict[str, tuple[float, str]]:
    """name -> (score, rules hit): one SpamAssassin run over an mbox of them all (its rules load
    once, ~1.5 s)."""
    path = tmp_path / "emails.mbox"
    box = mailbox.mbox(path)
    for raw in emails.values():
        box.add(mailbox.mboxMessage(raw))
    box.close()
    assert SPAMASSASSIN is not None
    with path.open("rb") as messages:
        done = subprocess.run(
            # No Bayes: a score must not depend on what earlier runs taught this machine.
            [SPAMASSASSIN, "-L", "-t", "--mbox", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"],
            stdin=messages,
            capture_output=True,
            timeout=300,
            check=True,
        )
    found = [
        (float(score), " ".join(rules.split())) for score, rules in _STATUS.findall(done.stdout.decode())
    ]
    assert len(found) == len(emails), done.stdout.decode()[-2000:]
    return dict(zip(emails, found, strict=True))


def written(config, out: Path) -> dict[str, bytes]:
    items = preview(config, out_dir=out)
    return {
        f"{out.name}/{p.name}": p.read_bytes() for item in items for p in item.files if p.suffix == ".eml"
    }


def test_the_example_site_and_the_test_articles_score_at_most_half_a_point(email_site, tmp_path):
    emails = written(load_config(REPO / "config.yaml"), tmp_path / "example")
    emails |= written(email_site.config(), tmp_path / "tests")
    for path in (DATA / "i18n" / "articles").glob("*.md"):  # every script: emoji, CJK, RTL, Indic, Thai
        shutil.copy(path, email_site.content / path.name)
    emails |= written(email_site.config(), tmp_path / "i18n")
    assert len(emails) >= 12
    found = scores(emails, tmp_path)
    over = {name: result for name, result in found.items() if result[0] > MOST}
    assert not over, {name: found[name] for name in found}
