"""Email composing speed: one full render of a 20-article digest against per-recipient messages.

The expensive chain (Jinja2 -> MJML -> CSS inlining) runs once per draft; each recipient only gets
placeholders filled into the pre-encoded bodies. This script measures both, and their ratio, which
must be at least 100 for a built message and for its bytes ready to send (exit status 1 otherwise),
and the CSS-inlining step's share of a render (`compose.email._inline_css`, timed in place).

    python benchmarks/bench_email.py [--recipients 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "data" / "email"))

from generate import write_articles  # noqa: E402
from sites import bench_config, digest_channel  # noqa: E402

from syndicate.compose import email as email_module  # noqa: E402
from syndicate.compose.email import compose_digest  # noqa: E402
from syndicate.compose.mime import build_message, message_bytes  # noqa: E402
from syndicate.config import config_from_dict  # noqa: E402
from syndicate.content import load_articles  # noqa: E402
from syndicate.recipients import Recipient  # noqa: E402

REQUIRED_RATIO = 100
SUBJECT = "{{ recipient.first_name | default('Reader') }}, {{ articles|length }} new articles"
WINDOW_END = datetime(2024, 3, 11, 8, 0, tzinfo=ZoneInfo("Europe/London"))


def _config(root: Path, clip_limit: int):
    raw = bench_config(
        # A personalised subject: per-recipient markers there too (personal.py).
        channels={"weekly": digest_channel("outbox", clip_limit=clip_limit, subject=SUBJECT)},
        targets={"outbox": {"type": "outbox", "dir": "outbox", "recipients": ["reader@example.com"]}},
        site={"unsubscribe_mailto": "unsubscribe@example.com"},
    )
    return config_from_dict(raw, root / "config.yaml")


def _median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_articles(root / "content", 20, body_words=1500)
        one_render = _config(root, clip_limit=10_000_000)  # never shrinks: exactly one render
        default = _config(root, clip_limit=100_000)
        articles = load_articles(one_render).articles

        def render(config):
            return compose_digest(articles, "weekly", config, window_end=WINDOW_END)

        render(one_render)  # warm the template cache, as a long-running process would be
        draft = render(one_render)
        full = _median_seconds(lambda: render(one_render), args.repeats)
        inlining = _inlining_seconds(lambda: render(one_render), args.repeats)
        fitted = render(default)
        with_fitting = _median_seconds(lambda: render(default), max(3, args.repeats // 3))

        # Each reader with an id (its unsubscribe token is signed per message) and attributes.
        recipients = [
            Recipient(
                f"reader{n}@example.org", f"Reader {n}", {"city": f"Town {n % 50}", "plan": "pro"}, id=f"r{n}"
            )
            for n in range(args.recipients)
        ]
        build = _per_message(lambda r: build_message(draft, r, one_render), recipients)
        sendable = _per_message(lambda r: message_bytes(build_message(draft, r, one_render)), recipients)
        sample = recipients[: min(len(recipients), 1000)]
        stdlib = _per_message(
            lambda r: build_message(draft, r, one_render).as_bytes(policy=policy.SMTP), sample
        )
        size = len(message_bytes(build_message(draft, recipients[0], one_render)))

    rows = [
        ("20-article digest: one full render (Jinja2, MJML, CSS inlining)", full, "ms"),
        ("  of which CSS inlining (median)", inlining, "ms"),
        (f"  HTML {draft.html_bytes:,} bytes; text {len(draft.text):,} characters", None, ""),
        ("20-article digest fitted under the 100 KB clip limit", with_fitting, "ms"),
        (f"  HTML {fitted.html_bytes:,} bytes; {fitted.warnings[-1]}", None, ""),
        (f"per recipient: build_message ({len(recipients):,} messages)", build, "ms"),
        (
            f"per recipient: build_message + message_bytes ({len(recipients):,}; {size:,} bytes)",
            sendable,
            "ms",
        ),
        (f"per recipient: build_message + stdlib as_bytes ({len(sample):,})", stdlib, "ms"),
    ]
    for label, seconds, unit in rows:
        print(f"{label:<78}{seconds * 1000:9.3f} {unit}" if seconds is not None else label)
    ratio, sendable_ratio = full / build, full / sendable
    print(f"one render / one personalised message: {ratio:.0f}x (required >= {REQUIRED_RATIO}x)")
    print(f"one render / one personalised message as bytes to send: {sendable_ratio:.0f}x")
    return 0 if min(ratio, sendable_ratio) >= REQUIRED_RATIO else 1


def _inlining_seconds(action, repeats: int) -> float:
    """The median time spent in `_inline_css` per render: the function wrapped where it is looked up."""
    inline, spent = email_module._inline_css, []

    def timed(html: str) -> str:
        start = time.perf_counter()
        try:
            return inline(html)
        finally:
            spent.append(time.perf_counter() - start)

    email_module._inline_css = timed
    try:
        for _ in range(repeats):
            action()
    finally:
        email_module._inline_css = inline
    return statistics.median(spent)


def _per_message(make, recipients) -> float:
    start = time.perf_counter()
    for recipient in recipients:
        make(recipient)
    return (time.perf_counter() - start) / len(recipients)


if __name__ == "__main__":
    sys.exit(main())
