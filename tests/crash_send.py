"""A real delivery process for the crash test: dispatch a batch over SMTP with a SQLite ledger.

Usage: python crash_send.py PORT LEDGER_FILE COUNT UNKNOWN_POLICY; prints the report as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from sample_mail import addresses, messages_for

from syndicate.config import config_from_dict
from syndicate.deliver import make_target
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger, sqlite_url


def main(port: int, ledger_file: Path, count: int, unknown: str) -> None:
    config = config_from_dict(
        {
            "site": {
                "name": "Crash Weekly",
                "base_url": "https://example.com/",
                "sender": "Crash Weekly <news@example.com>",
                "postal_address": "1 Example Street",
            },
            "targets": {
                "newsletter": {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "recipients": ["unused@example.org"],
                }
            },
        },
        ledger_file.parent / "config.yaml",
    )
    with Ledger(sqlite_url(ledger_file)) as ledger:
        report = dispatch(
            messages_for(addresses(count)), make_target("newsletter", config), ledger, unknown=unknown
        )
    print(json.dumps({k: v for k, v in asdict(report).items() if k != "problems"}))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
