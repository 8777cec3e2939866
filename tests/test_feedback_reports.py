"""read_report: DSNs (RFC 3464), ARF complaints (RFC 5965) and mailed unsubscribe requests, read
from the sample messages in tests/data/feedback/ (our own, shaped like Postfix's and an ISP
feedback loop's); VERP ids; malformed mail yields nothing and never raises."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.feedback import Feedback
from syndicate.feedback.reports import read_report, verp_id
from syndicate.tokens import make_token

DATA = Path(__file__).resolve().parent / "data" / "feedback"
RETURN_PATH = "bounces@news.example.org"
KEY = b"feedback-test-secret"


def read(name: str, **options) -> list[Feedback]:
    return read_report((DATA / name).read_bytes(), **options)


def test_a_postfix_dsn_gives_a_hard_bounce_for_5_1_1_and_a_soft_one_for_4_2_2():
    hard, soft = read("dsn-postfix-two-recipients.eml", return_path=RETURN_PATH)
    assert hard.kind == "hard" and hard.address == "nobody@example.org"
    assert soft.kind == "soft" and soft.address == "full@example.org"
    for found in (hard, soft):
        assert found.source == "dsn"
        assert found.message_id == "<digest-2026-49.a1b2c3@news.example.org>"
        assert found.subscriber_id is None  # sent to the plain return path: no VERP id
        assert "\n" not in found.detail
    assert hard.detail.startswith("5.1.1 failed 550 5.1.1 <nobody@example.org>: Recipient address rejected")
    assert soft.detail.startswith("4.2.2 failed 452 4.2.2")


def test_a_verp_dsn_names_the_subscriber_and_the_address_we_sent_to():
    """Original-Recipient (what we sent to) wins over Final-Recipient (where a forward led); the
    delivered recipient is not feedback; the Message-ID comes from the returned message/rfc822."""
    (found,) = read("dsn-verp-forwarded.eml", return_path=RETURN_PATH)
    assert found == Feedback(
        "hard",
        "reader@example.org",
        "sub-7Qx2",
        "<digest-2026-49.d4e5f6@news.example.org>",
        "5.1.1 failed 550-5.1.1 The email account that you tried to reach does not exist.",
        "dsn",
    )


def test_without_the_return_path_a_verp_address_names_no_one():
    (found,) = read("dsn-verp-forwarded.eml")
    assert found.subscriber_id is None and found.address == "reader@example.org"


def test_delayed_is_soft_and_delivered_relayed_expanded_are_nothing():
    def dsn(*blocks: str) -> bytes:
        fields = "\n\n".join(blocks)
        return (
            "To: bounces@news.example.org\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
            f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n{fields}\n--b--\n"
        ).encode()

    blocks = [
        f"Final-Recipient: rfc822; {action}@example.org\nAction: {action}\nStatus: {status}"
        for action, status in [
            ("delayed", "4.4.1"),
            ("delivered", "2.0.0"),
            ("relayed", "2.0.0"),
            ("expanded", "2.0.0"),
            ("failed", "5.7.1"),
        ]
    ]
    found = read_report(dsn(*blocks))
    assert [(f.kind, f.address) for f in found] == [
        ("soft", "delayed@example.org"),
        ("hard", "failed@example.org"),
    ]
    assert all(f.message_id is None for f in found)  # no returned headers in this report


def test_failed_without_a_valid_5_x_x_status_is_never_hard():
    """A truncated report (Status: "5.") must not remove a reader."""
    (found,) = read("malformed-truncated-dsn.eml")
    assert found.kind == "soft" and found.address == "cutoff@example.org"


def test_an_arf_abuse_report_is_a_complaint_with_recipient_verp_id_and_message_id():
    (found,) = read("arf-abuse.eml", return_path=RETURN_PATH)
    assert found == Feedback(
        "complaint",
        "annoyed@example.net",
        "sub-Kp9z",
        "<digest-2026-49.0a0b0c@news.example.org>",
        "feedback-type abuse ExampleFBL/2.1",
        "arf",
    )


def test_an_arf_report_without_original_rcpt_to_falls_back_to_the_original_to():
    raw = (DATA / "arf-abuse.eml").read_bytes().replace(b"Original-Rcpt-To: <annoyed@example.net>\n", b"")
    (found,) = read_report(raw)
    assert found.address == "annoyed@example.net"


def test_a_not_spam_report_is_no_complaint():
    assert read("arf-redacted-not-spam.eml") == []


def test_a_mailed_unsubscribe_with_a_valid_token_names_the_subscriber():
    token = make_token("unsubscribe", "sub-7Qx2", KEY)
    (found,) = read("unsubscribe-mailto.eml", unsubscribe_key=KEY)
    assert found == Feedback(
        "unsubscribe", "reader@example.org", "sub-7Qx2", None, "unsubscribe request by mail", "mailto", token
    )


def test_a_mailed_unsubscribe_without_a_key_passes_the_token_on_unchecked():
    (found,) = read("unsubscribe-mailto.eml")
    assert found.subscriber_id is None and found.token == "sub-7Qx2.AheIOpNwSNHteeKuysniaA"


def test_a_mailed_unsubscribe_with_a_forged_token_is_ignored():
    raw = (DATA / "unsubscribe-mailto.eml").read_bytes().replace(b"AheIOpNw", b"AheIOpNx")
    assert read_report(raw, unsubscribe_key=KEY) == []


def test_an_encoded_unsubscribe_subject_is_decoded():
    token = make_token("unsubscribe", "abc", KEY)
    encoded = base64.b64encode(f"unsubscribe {token}".encode()).decode()
    raw = f"From: r@example.org\nSubject: =?utf-8?b?{encoded}?=\n\nbye\n".encode()
    (found,) = read_report(raw, unsubscribe_key=KEY)
    assert found.subscriber_id == "abc"


@pytest.mark.parametrize(
    "name", ["plain-text-bounce.eml", "malformed-garbage-status.eml", "arf-redacted-not-spam.eml"]
)
def test_reports_it_cannot_read_give_nothing(name):
    assert read(name, return_path=RETURN_PATH) == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all",
        b'Content-Type: multipart/report; boundary="x"\n\n--x\nContent-Type: message/feedback-report\n\n--x--',
        b'Content-Type: multipart/report; boundary="x"\n\n--x\nContent-Type: message/rfc822\n\n--x--',
        b"Subject: unsubscribe\n\n",
        b"Subject: =?bogus?x?zz?=\n\n",
    ],
)
def test_malformed_input_gives_nothing(raw):
    assert read_report(raw, return_path=RETURN_PATH, unsubscribe_key=KEY) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw):
    assert isinstance(read_report(raw, return_path=RETURN_PATH, unsubscribe_key=KEY), list)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.binary(max_size=40))
def test_a_damaged_dsn_never_raises(at, junk):
    """Real reports cut or spliced anywhere, not just random bytes the parser rejects at once."""
    for name in ("dsn-postfix-two-recipients.eml", "arf-abuse.eml", "dsn-verp-forwarded.eml"):
        raw = (DATA / name).read_bytes()
        assert isinstance(read_report(raw[:at] + junk + raw[at + len(junk) :], return_path=RETURN_PATH), list)


@pytest.mark.parametrize(
    ("address", "return_path", "expected"),
    [
        ("bounces+sub-7Qx2@news.example.org", "bounces@news.example.org", "sub-7Qx2"),
        ("<Bounces+abc_9@NEWS.example.org>", "bounces@news.example.org", "abc_9"),
        ("bounces+abc@other.example.org", "bounces@news.example.org", None),
        ("bounces@news.example.org", "bounces@news.example.org", None),
        ("bounces+@news.example.org", "bounces@news.example.org", None),
        ("bouncesX+abc@news.example.org", "bounces@news.example.org", None),
        ("bounces+a.b@news.example.org", "bounces@news.example.org", None),  # not an id of ours
        ("bounces+abc@news.example.org", None, None),
        (None, "bounces@news.example.org", None),
    ],
)
def test_verp_id(address, return_path, expected):
    assert verp_id(address, return_path) == expected
