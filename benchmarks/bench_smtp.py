"""SMTP delivery throughput: syndicate's dispatch loop vs a raw smtplib loop, in the same run.

Both send the same 10,000 personalised digest emails (about 31 KB each) to a loopback aiosmtpd
sink running in its own process. The raw loop sends messages built beforehand over one reused
connection; syndicate builds each message only when it is about to go out, and records two
ledger commits per message in a real SQLite file. Target: syndicate >= 0.7 of the raw rate.
A second raw loop builds each message as it goes, so the gap to it is the delivery layer's own
cost (dispatch + ledger) and the gap between the two raw loops is the cost of building emails.

    python benchmarks/bench_smtp.py [--count 10000] [--connections 1,2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import tempfile
import time
from collections.abc import Iterable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from syndicate.config import config_from_dict
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger, sqlite_url

SENDER = "Bench Weekly <news@example.com>"


class CountingSink:
    def __init__(self, counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server, session, envelope):
        with self.counter.get_lock():
            self.counter.value += len(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def run_sink(port: int, counter, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(CountingSink(counter), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


def digest_html(articles: int = 20) -> str:
    """A digest-shaped body of about 38 KB: generated text, never real articles."""
    cards = []
    for n in range(articles):
        words = " ".join(f"word{(n * 37 + i) % 997}" for i in range(150))
        cards.append(
            f'<table role="presentation" width="100%"><tr><td style="padding:16px;font-family:Georgia,serif">'
            f'<h2 style="margin:0 0 8px">Article {n}</h2><p style="margin:0">{words}</p>'
            f'<a href="https://example.com/articles/{n}/?utm_source=newsletter">Read more</a>'
            "</td></tr></table>"
        )
    return (
        "<html><body>{greeting}"
        + "\n".join(cards)
        + '<p><a href="{unsubscribe}">Unsubscribe</a></p></body></html>'
    )


def build(address: str, name: str, html: str, text: str) -> EmailMessage:
    """One personalised email: greeting and unsubscribe link differ per recipient."""
    unsubscribe = f"https://example.com/unsubscribe?u={address}"
    email = EmailMessage()
    email["From"] = SENDER
    email["To"] = f"{name} <{address}>"
    email["Subject"] = "Bench Weekly: 20 new articles"
    email["List-Unsubscribe"] = f"<{unsubscribe}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(text.format(greeting=f"Hello {name},", unsubscribe=unsubscribe))
    email.add_alternative(
        html.format(greeting=f"<p>Hello {name},</p>", unsubscribe=unsubscribe), subtype="html"
    )
    return email


def raw_loop(port: int, messages: Iterable[EmailMessage]) -> float:
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for email in messages:
            smtp.send_message(email)
    return time.perf_counter() - start


def syndicate_run(
    port: int, recipients: list[tuple[str, str]], html: str, text: str, connections: int
) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = config_from_dict(
            {
                "site": {
                    "name": "Bench",
                    "base_url": "https://example.com/",
                    "sender": SENDER,
                    "postal_address": "x",
                },
                "targets": {
                    "newsletter": {
                        "type": "smtp",
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "none",
                        "recipients": ["unused@example.com"],
                        "per_connection": 100_000,
                        "connections": connections,
                    }
                },
            },
            Path(folder) / "config.yaml",
        )
        messages = (
            Message(
                MessageKey("weekly", "newsletter", "digest-2026-11-23", address),
                "bench",
                lambda address=address, name=name: build(address, name, html, text),
            )
            for address, name in recipients
        )
        with Ledger(sqlite_url(Path(folder) / "ledger.sqlite")) as ledger:
            start = time.perf_counter()
            report = dispatch(messages, make_target("newsletter", config), ledger)
            elapsed = time.perf_counter() - start
        assert report.sent == len(recipients), report
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--connections", default="1,2", help="comma-separated counts to try")
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counter, stop = multiprocessing.Value("l", 0), multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, counter, stop), daemon=True)
    sink.start()
    time.sleep(1.0)

    html = digest_html()
    text = "{greeting}\n\n" + "\n\n".join(
        f"Article {n}\nhttps://example.com/articles/{n}/" for n in range(20)
    )
    text += "\n\nUnsubscribe: {unsubscribe}\n"
    recipients = [(f"reader{n:05d}@example.org", f"Reader {n}") for n in range(args.count)]
    size = len(build(*recipients[0], html, text).as_bytes(policy=SMTP))
    print(f"{args.count} emails of {size / 1024:.0f} KB to a loopback aiosmtpd sink")

    prebuilt = [build(address, name, html, text) for address, name in recipients]
    raw = raw_loop(port, prebuilt)
    del prebuilt
    raw_rate = args.count / raw
    print(f"raw smtplib, one connection, pre-built:      {raw_rate:6.0f} msgs/s ({raw:.1f} s)")
    # The same loop building each message as it goes: what is left is the delivery layer's own cost.
    built = raw_loop(port, (build(address, name, html, text) for address, name in recipients))
    built_rate = args.count / built
    print(f"raw smtplib, one connection, built in loop:  {built_rate:6.0f} msgs/s ({built:.1f} s)")
    runs = [int(n) for n in args.connections.split(",")]
    for connections in runs:
        ours = syndicate_run(port, recipients, html, text, connections)
        rate = args.count / ours
        print(
            f"syndicate + ledger, built lazily, {connections} conn: {rate:6.0f} msgs/s ({ours:.1f} s), "
            f"ratio {rate / raw_rate:.2f} to pre-built (target >= 0.70), "
            f"{rate / built_rate:.2f} to built in loop"
        )
    stop.set()
    sink.join(10)
    assert counter.value == (2 + len(runs)) * args.count, counter.value


if __name__ == "__main__":
    main()
