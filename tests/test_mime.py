"""MIME messages: structure, headers, unsubscribe links and tokens, per-recipient fields, injection."""

from __future__ import annotations

import dataclasses
import email
import hashlib
import hmac
import html
import shutil
import sys
from datetime import datetime
from email import policy
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.compose.email import clean_header_text, compose_email_channel
from syndicate.compose.mime import build_message, message_bytes, unsubscribe_links, unsubscribe_token
from syndicate.config import Config
from syndicate.content import load_articles
from syndicate.errors import DeliveryError
from syndicate.recipients import Recipient

from .conftest import DATA

sys.path.insert(0, str(DATA / "email"))
from generate import write_articles  # noqa: E402

WINDOW_END = datetime(2024, 3, 11, 8, 0, tzinfo=ZoneInfo("Europe/London"))
READER = Recipient("reader@example.org", "Ann Reader")


def draft_and_config(site):
    config = site.config()
    return compose_email_channel(load_articles(config).articles, "weekly", config, WINDOW_END)[0], config


def parse(message) -> tuple[bytes, email.message.EmailMessage]:
    """The bytes a delivery sends, checked against the stdlib's own serialisation, and parsed back."""
    raw = message_bytes(message)
    assert raw == message.as_bytes(policy=policy.SMTP)
    return raw, email.message_from_bytes(raw, policy=policy.default)


def test_message_is_multipart_alternative_text_then_html_with_crlf_lines(email_site):
    draft, config = draft_and_config(email_site)
    raw, parsed = parse(build_message(draft, READER, config))
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert parsed["From"] == "Test Weekly <news@example.com>"
    assert parsed["To"] == "Ann Reader <reader@example.org>"
    assert parsed["Subject"] == draft.subject
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime.tzinfo is not None
    text = parsed.get_body(("plain",)).get_content()
    body = parsed.get_body(("html",)).get_content()
    assert "Hi Ann Reader," in text and "Hi Ann Reader," in body
    assert "__syndicate" not in text + body


def test_message_id_is_on_the_senders_domain_and_stable_per_recipient(email_site):
    draft, config = draft_and_config(email_site)
    first = build_message(draft, READER, config)["Message-ID"]
    assert first.endswith("@example.com>") and first.startswith("<")
    assert build_message(draft, READER, config)["Message-ID"] == first
    assert build_message(draft, Recipient("other@example.org"), config)["Message-ID"] != first


def test_list_unsubscribe_has_https_and_mailto_and_one_click_post(email_site):
    email_site.data["site"]["unsubscribe_url"] = "https://example.com/unsubscribe?list=weekly"
    draft, config = draft_and_config(email_site)
    recipient = Recipient("a+b@example.org", "A B")
    _, parsed = parse(build_message(draft, recipient, config))
    token = unsubscribe_token("a+b@example.org", config)
    web = f"https://example.com/unsubscribe?list=weekly&email=a%2Bb%40example.org&token={token}"
    assert (
        parsed["List-Unsubscribe"]
        == f"<{web}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20{token}>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = parsed.get_body(("html",)).get_content()
    assert f'href="{html.escape(web)}"' in body
    assert f"Unsubscribe: {web}" in parsed.get_body(("plain",)).get_content()
    assert "utm_" not in parsed["List-Unsubscribe"]


@pytest.mark.parametrize(
    ("site_keys", "header", "post"),
    [
        ({"unsubscribe_url": None}, "<mailto:unsubscribe@example.com?subject=unsubscribe%20", False),
        (
            {"unsubscribe_url": "http://example.com/u", "unsubscribe_mailto": None},
            "<http://example.com/u?",
            False,
        ),
        ({"unsubscribe_url": None, "unsubscribe_mailto": None}, None, False),
    ],
)
def test_one_click_post_only_with_an_https_unsubscribe_url(email_site, site_keys, header, post):
    email_site.data["site"].update(site_keys)
    draft, config = draft_and_config(email_site)
    _, parsed = parse(build_message(draft, READER, config))
    if header is None:
        assert parsed["List-Unsubscribe"] is None
        assert any("no unsubscribe link" in w for w in draft.warnings)
    else:
        assert parsed["List-Unsubscribe"].startswith(header)
    assert (parsed["List-Unsubscribe-Post"] is not None) is post


def test_token_is_an_hmac_of_the_address_with_the_secret(email_site, monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "s3cret-value")
    email_site.data["site"]["unsubscribe_secret"] = "${UNSUBSCRIBE_SECRET}"
    draft, config = draft_and_config(email_site)
    expected = hmac.new(b"s3cret-value", b"reader@example.org", hashlib.sha256).hexdigest()[:32]
    assert unsubscribe_token("Reader@Example.org ", config) == expected
    assert not any("not signed" in w for w in draft.warnings)
    assert "s3cret-value" not in repr(config.site)
    raw, _ = parse(build_message(draft, READER, config))
    assert b"s3cret-value" not in raw


def test_token_without_a_secret_is_stable_public_and_warned_about(email_site):
    draft, config = draft_and_config(email_site)
    fallback = hmac.new(b"https://example.com/articles/", b"reader@example.org", hashlib.sha256)
    assert unsubscribe_token("reader@example.org", config) == fallback.hexdigest()[:32]
    assert unsubscribe_token("reader@example.org", config) != unsubscribe_token("other@example.org", config)
    assert "unsubscribe tokens are not signed (set site.unsubscribe_secret)" in draft.warnings


def test_header_injection_title_yields_one_subject_and_no_bcc(email_site):
    email_site.data["channels"]["weekly"]["subject"] = "{{ articles[0].title }}"
    draft, config = draft_and_config(email_site)
    hostile = dataclasses.replace(draft, subject="Hello\r\nBcc: victim@example.com")
    raw, parsed = parse(build_message(hostile, READER, config))
    assert parsed.get_all("Subject") == ["Hello Bcc: victim@example.com"]
    assert parsed.get_all("Bcc") is None
    assert b"\r\nBcc:" not in raw


def test_the_injection_article_from_disk_cannot_add_a_header(email_site):
    shutil.copy(DATA / "email" / "hostile" / "header-injection.md", email_site.content)
    email_site.data["channels"]["weekly"]["subject"] = "{{ articles|map(attribute='title')|join(' / ') }}"
    draft, config = draft_and_config(email_site)
    raw, parsed = parse(build_message(draft, READER, config))
    assert len(parsed.get_all("Subject")) == 1 and "Hello Bcc: victim@example.com" in parsed["Subject"]
    assert parsed.get_all("Bcc") is None and b"\r\nBcc:" not in raw


def test_recipient_name_is_escaped_in_html_raw_in_text_and_cannot_inject(email_site):
    draft, config = draft_and_config(email_site)
    name = 'Eve <script>x</script> & "co"\r\nBcc: victim@example.com'
    raw, parsed = parse(build_message(draft, Recipient("eve@example.org", name), config))
    clean = 'Eve <script>x</script> & "co" Bcc: victim@example.com'
    assert parsed.get_all("Bcc") is None and len(parsed.get_all("To")) == 1
    assert parsed["To"].addresses[0].display_name == clean
    assert parsed["To"].addresses[0].addr_spec == "eve@example.org"
    assert f"Hi {html.escape(clean)}," in parsed.get_body(("html",)).get_content()
    assert f"Hi {clean}," in parsed.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "subject", ["Café ☕ {{ site.name }} — " + "long words " * 20, "plain ascii words " * 11]
)
def test_long_and_utf8_subjects_are_encoded_folded_and_parse_back(email_site, subject):
    email_site.data["channels"]["weekly"]["subject"] = subject
    draft, config = draft_and_config(email_site)
    raw, parsed = parse(build_message(draft, Recipient("zoe@example.org", "Zoë Ångström"), config))
    assert raw.isascii()
    assert parsed["Subject"] == draft.subject
    assert parsed["To"].addresses[0].display_name == "Zoë Ångström"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "a@b@c", "a b@example.org", "x@example.org\r\nBcc: v@x", "zoë@example.org"]
)
def test_unusable_addresses_are_a_delivery_error(email_site, address):
    draft, config = draft_and_config(email_site)
    with pytest.raises(DeliveryError, match="is not a valid email address"):
        build_message(draft, Recipient(address), config)


def test_unsubscribe_links_quote_the_address(email_site):
    config: Config = email_site.config()
    web, mailto = unsubscribe_links("o'neil&co@example.org", config)
    assert web.startswith("https://example.com/unsubscribe?email=o%27neil%26co%40example.org&token=")
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20")
    email_site.data["site"]["unsubscribe_url"] = "https://example.com/désinscription <x>"
    web, _ = unsubscribe_links("a@example.org", email_site.config())
    assert web.startswith("https://example.com/d%C3%A9sinscription%20%3Cx%3E?email=a%40example.org&token=")


def test_any_recipient_name_gives_a_well_formed_message(email_site):
    draft, config = draft_and_config(email_site)

    @settings(max_examples=80, deadline=None)
    @given(name=st.text(max_size=120))
    def check(name: str) -> None:
        raw, parsed = parse(build_message(draft, Recipient("any@example.org", name), config))
        assert len(parsed.get_all("To")) == 1 and parsed.get_all("Bcc") is None
        (to,) = parsed["To"].addresses
        assert to.addr_spec == "any@example.org"
        if "=?" not in name:  # text that looks like an RFC 2047 word is decoded by readers
            assert to.display_name == clean_header_text(name, 100)
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
        body = parsed.get_body(("html",)).get_content()
        assert "__syndicate" not in body or "__syndicate" in name  # values are inserted, never re-scanned
        greeting = f"Hi {clean_header_text(name, 100)}," if clean_header_text(name, 100) else "Hello,"
        assert html.escape(greeting) in body

    check()


def test_message_bytes_falls_back_to_the_stdlib_for_other_shapes(email_site):
    draft, config = draft_and_config(email_site)
    message = build_message(draft, READER, config)
    message.preamble = "This is a multi-part message."
    assert message_bytes(message) == message.as_bytes(policy=policy.SMTP)
    message["X-Campaign"] = "spring"
    message.preamble = None
    raw = message_bytes(message)
    assert raw == message.as_bytes(policy=policy.SMTP) and b"\r\nX-Campaign: spring\r\n" in raw
    message.get_payload()[0].set_payload("Plain\nlines, replaced after building.\n")
    raw = message_bytes(message)
    assert raw == message.as_bytes(policy=policy.SMTP) and b"Plain\r\nlines" in raw


def test_sent_html_of_a_clipped_digest_stays_under_the_limit(email_site):
    write_articles(email_site.content, 60)
    email_site.data["channels"]["weekly"]["max_articles"] = 64
    draft, config = draft_and_config(email_site)
    long_name = "Bartholomew Featherstonehaugh-Worthington " * 3
    raw, parsed = parse(
        build_message(draft, Recipient("a.very.long.address.indeed@example.org", long_name), config)
    )
    sent_html = parsed.get_body(("html",)).get_payload(decode=True)
    assert draft.overflow and len(sent_html) <= 100_000
