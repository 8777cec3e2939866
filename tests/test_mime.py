"""MIME messages: structure, headers, unsubscribe links and tokens, per-recipient fields, injection."""

from __future__ import annotations

import dataclasses
import email
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
from syndicate.compose.mime import build_message, fresh_message_id, message_bytes, unsubscribe_links
from syndicate.config import Config
from syndicate.content import load_articles
from syndicate.errors import ConfigError, DeliveryError
from syndicate.personal import reader_fields
from syndicate.recipients import Recipient
from syndicate.tokens import BadToken, make_token, read_token, signing_key

from .conftest import DATA

sys.path.insert(0, str(DATA / "email"))
from generate import write_articles  # noqa: E402

WINDOW_END = datetime(2024, 3, 11, 8, 0, tzinfo=ZoneInfo("Europe/London"))
READER = Recipient("reader@example.org", "Ann Reader", id="rdr1")
NOW = datetime(2024, 3, 11, 8, 0, tzinfo=ZoneInfo("UTC"))


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
    assert "Hi Ann," in text and "Hi Ann," in body  # the shipped greeting: the first name
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
    recipient = Recipient("a+b@example.org", "A B", id="sub-a1")
    raw, parsed = parse(build_message(draft, recipient, config))
    token = make_token("unsubscribe", "sub-a1", signing_key(config))
    web = f"https://example.com/unsubscribe?list=weekly&token={token}"
    assert b"a%2Bb" not in raw and b"a+b%40" not in raw  # the address is in no URL
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
        ({"unsubscribe_url": "http://127.0.0.1:8080/u"}, "<http://127.0.0.1:8080/u?", True),  # a local test
    ],
)
def test_one_click_post_only_with_an_https_unsubscribe_url(email_site, site_keys, header, post):
    email_site.data["site"].update(site_keys)
    draft, config = draft_and_config(email_site)
    _, parsed = parse(build_message(draft, READER, config))
    if header is None:
        assert parsed["List-Unsubscribe"] is None
        assert any("no unsubscribe link" in w for w in draft.warnings)
        # No link is labelled Unsubscribe unless it unsubscribes.
        assert "Unsubscribe" not in parsed.get_body(("html",)).get_content()
        assert "Unsubscribe" not in parsed.get_body(("plain",)).get_content()
    else:
        assert parsed["List-Unsubscribe"].startswith(header)
    assert (parsed["List-Unsubscribe-Post"] is not None) is post


def test_token_is_signed_with_the_secret_and_names_the_subscriber_not_the_address(email_site, monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "s3cret-value")
    email_site.data["site"]["unsubscribe_secret"] = "${UNSUBSCRIBE_SECRET}"
    draft, config = draft_and_config(email_site)
    web, _ = unsubscribe_links(READER, config)
    token = web.rpartition("token=")[2]
    assert read_token("unsubscribe", token, b"s3cret-value", NOW) == "rdr1"
    with pytest.raises(BadToken):
        read_token("unsubscribe", token, b"another-secret", NOW)
    with pytest.raises(BadToken):  # a token for one purpose is no good for another
        read_token("confirm", token, b"s3cret-value", NOW)
    assert not any("not signed" in w for w in draft.warnings)
    assert "s3cret-value" not in repr(config.site)
    raw, _ = parse(build_message(draft, READER, config))
    assert b"s3cret-value" not in raw


def test_token_without_a_secret_is_stable_public_and_warned_about(email_site):
    draft, config = draft_and_config(email_site)
    first, _ = unsubscribe_links(READER, config)
    assert first == unsubscribe_links(READER, config)[0]
    assert first != unsubscribe_links(Recipient("other@example.org", id="rdr2"), config)[0]
    assert read_token("unsubscribe", first.rpartition("token=")[2], b"https://example.com/articles/", NOW)
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
    email_site.data["site"]["greeting"] = "Hi {{ recipient.name }},"  # the whole name, as given
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


def test_unsubscribe_links_never_hold_the_address(email_site):
    config: Config = email_site.config()
    reader = Recipient("o'neil&co@example.org", id="id-1")
    web, mailto = unsubscribe_links(reader, config)
    assert web.startswith("https://example.com/unsubscribe?token=id-1.")
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20id-1.")
    assert "neil" not in web + mailto
    email_site.data["site"]["unsubscribe_url"] = "https://example.com/désinscription <x>"
    web, _ = unsubscribe_links(reader, email_site.config())
    assert web.startswith("https://example.com/d%C3%A9sinscription%20%3Cx%3E?token=id-1.")


def test_syndicate_serve_answers_the_unsubscribe_link_when_configured(email_site):
    email_site.data["site"]["unsubscribe_url"] = None
    email_site.data["serve"] = {"public_url": "https://news.example.com/r"}
    draft, config = draft_and_config(email_site)
    _, parsed = parse(build_message(draft, READER, config))
    web = parsed["List-Unsubscribe"].split(",")[0].strip("<>")
    assert web.startswith("https://news.example.com/r/unsubscribe/rdr1.")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="{web}"' in parsed.get_body(("html",)).get_content()


@pytest.mark.parametrize("url", ["http://news.example.com/r", "ftp://news.example.com/"])
def test_syndicate_serve_is_reached_over_https_unless_on_loopback(email_site, url):
    email_site.data["serve"] = {"public_url": url}
    email_site.write_config()
    with pytest.raises(ConfigError, match=r"serve\.public_url: .*expected"):
        email_site.config()


def test_any_attribute_is_a_field_in_both_parts_and_the_subject_with_its_default(email_site):
    email_site.data["channels"]["weekly"]["subject"] = 'News for {{ recipient.first_name | default("you") }}'
    email_site.data["site"]["greeting"] = (
        "Dear {{ recipient.first_name or 'reader' }} in {{ recipient.city }},"
    )
    draft, config = draft_and_config(email_site)
    ada = Recipient("ada@example.org", "Ada L", {"city": "Derby <&>"}, id="a")
    _, parsed = parse(build_message(draft, ada, config))
    assert parsed["Subject"] == "News for Ada"
    assert "Dear Ada in Derby &lt;&amp;&gt;," in parsed.get_body(("html",)).get_content()
    assert "Dear Ada in Derby <&>," in parsed.get_body(("plain",)).get_content()
    _, parsed = parse(build_message(draft, Recipient("x@example.org", id="x"), config))
    assert parsed["Subject"] == "News for you"
    assert "Dear reader in ," in parsed.get_body(("plain",)).get_content()


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
        first = reader_fields(clean_header_text(name, 100), "", {})["first_name"]
        greeting = f"Hi {first}," if first else "Hello,"
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


def test_list_id_and_feedback_id_carry_no_reader_data_and_cannot_inject(email_site):
    email_site.data["site"]["name"] = "Zoë's Weekly\r\nBcc: victim@example.com"
    email_site.write_config()
    draft, config = draft_and_config(email_site)
    raw, parsed = parse(build_message(draft, READER, config))
    assert parsed.get_all("List-Id") == ["Zoë's Weekly Bcc: victim@example.com weekly <weekly.example.com>"]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert parsed.get_all("Bcc") is None and b"\r\nBcc:" not in head
    assert b"\r\nList-Id: =?utf-8?" in head  # the non-ASCII name as an RFC 2047 word
    assert parsed["Feedback-ID"] == "2024-03-11:weekly:syndicate"
    for name in ("List-Id", "Feedback-ID"):
        assert "reader" not in parsed[name].lower() and "rdr1" not in parsed[name]
    assert "Auto-Submitted" not in parsed  # newsletters are not automatic replies


def test_feedback_id_of_a_single_article_is_ascii_with_three_fields(email_site):
    config = email_site.config()
    articles = load_articles(config).articles
    drafts = compose_email_channel(articles, "letters", config, WINDOW_END)
    hostile = dataclasses.replace(drafts[0], key="letters:Ünïcode: slug\r\nBcc: x")
    raw, parsed = parse(build_message(hostile, READER, config))
    value = parsed["Feedback-ID"]
    assert value.isascii() and value.count(":") == 2 and value.endswith(":letters:syndicate")
    assert parsed.get_all("Bcc") is None and b"\r\nBcc:" not in raw
    assert parsed["List-Id"] == "Test Weekly letters <letters.example.com>"


@pytest.mark.parametrize(
    "value", ["no-dot", "a b.example.com", "x.example.com\r\nBcc: v@example.com", "é.example"]
)
def test_a_channel_list_id_must_be_a_dotted_name(email_site, value):
    email_site.data["channels"]["weekly"]["list_id"] = value
    with pytest.raises(ConfigError) as raised:
        email_site.config()
    assert "channels.weekly.list_id" in str(raised.value) and "is not a list id" in str(raised.value)


def test_a_fresh_message_id_is_new_per_nonce_and_keeps_the_domain(email_site):
    draft, config = draft_and_config(email_site)
    first = build_message(draft, READER, config)["Message-ID"]
    copies = []
    for nonce in ("run-a", "run-a", "run-b"):
        message = build_message(draft, READER, config)
        fresh_message_id(message, nonce)
        _, parsed = parse(message)
        assert parsed.get_all("Message-ID") == [message["Message-ID"]]
        copies.append(str(message["Message-ID"]))
    assert copies[0] == copies[1] != copies[2] and first not in copies
    assert all(c.endswith("@example.com>") for c in copies)


def _encoded_lines(raw: bytes) -> list[bytes]:
    """The lines of each part's body as sent (quoted-printable), headers left out."""
    lines = []
    for part in raw.split(b"\r\n--=_")[1:-1]:
        lines += part.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    return lines


def test_every_quoted_printable_line_is_76_characters_at_most_whatever_the_values(email_site):
    """RFC 2045 6.7: a reader's values are spliced into bodies encoded once; long, non-ASCII,
    `=`-laden values must still leave every encoded line within 76 characters and decode back."""
    email_site.data["site"]["greeting"] = (
        "Dear {{ recipient.first_name or 'reader' }} of {{ recipient.city }},"
    )
    draft, config = draft_and_config(email_site)

    @settings(max_examples=60, deadline=None)
    @given(name=st.text(max_size=100), city=st.text(max_size=300))
    def check(name: str, city: str) -> None:
        reader = Recipient("long.reader.address+news@example.org", name, {"city": city}, id="r-1")
        raw, parsed = parse(build_message(draft, reader, config))
        assert max(len(line) for line in _encoded_lines(raw)) <= 76
        first = reader_fields(clean_header_text(name, 100), "", {})["first_name"] or "reader"
        html_body = parsed.get_body(("html",)).get_content()
        assert html.escape(f"Dear {first} of ") in html_body
        assert clean_header_text(city) in parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") or (
            clean_header_text(city) != city  # values are cleaned of control characters first
        )

    check()


CJK_BODY = "".join(f"第{n}段落では、新しい配信の仕組みと読者への届け方を説明します。" for n in range(60))


def test_the_clip_guard_counts_a_cjk_digest_as_sent_not_as_decoded(email_site):
    """A CJK character is 3 bytes of UTF-8 but 9 of quoted-printable: the guard counts what is
    sent, so the HTML part as the server gets it stays under the clip limit."""
    for n in range(25):
        email_site.article(
            f"cjk-{n}.md",
            f"---\ntitle: '配信の記事 その{n}'\ndescription: '読者に届くまでの{n}番目の話。'\n"
            f"publish_date: '2024-03-05T{n % 24:02d}:30:00Z'\n---\n{CJK_BODY}\n",
        )
    email_site.data["channels"]["weekly"].update({"max_articles": 40, "clip_limit": 60_000})
    draft, config = draft_and_config(email_site)
    assert any("over 60000 bytes" in warning for warning in draft.warnings)
    raw, _ = parse(build_message(draft, READER, config))
    html_part = raw.split(b'Content-Type: text/html; charset="utf-8"\r\n')[1].split(b"\r\n\r\n", 1)[1]
    sent = len(html_part.rsplit(b"\r\n--", 1)[0])
    assert draft.sent_bytes <= sent <= 60_000  # the guard's figure, plus this reader's values
    assert sent - draft.sent_bytes < 1024
    decoded = draft.html_bytes + draft.html.count("\n")  # what the guard counted before: 10 % short here
    assert draft.sent_bytes > 1.05 * decoded


@pytest.mark.parametrize(
    ("language", "name", "expected"),
    [
        (None, 'Dr "Doc" Brown', "Hi Doc,"),  # a title skipped, a quoted nickname unquoted
        ("en-GB", "Prof. Ada Lovelace", "Hi Ada,"),
        ("fr", "Zoé Martin", "Bonjour Zoé,"),
        ("de", "", "Hallo,"),
        ("ja", "Haruto Sato", "Harutoさん、こんにちは。"),
        ("ar", "", "مرحبًا،"),
        ("xx", "Kim", "Hi Kim,"),  # a language the shipped greeting does not know: English
    ],
)
def test_the_shipped_greeting_is_a_template_in_the_site_language_with_the_first_name(
    email_site, language, name, expected
):
    email_site.data["site"]["language"] = language
    draft, config = draft_and_config(email_site)
    _, parsed = parse(build_message(draft, Recipient("r@example.org", name), config))
    assert expected in parsed.get_body(("plain",)).get_content()
    assert html.escape(expected) in parsed.get_body(("html",)).get_content()


def test_a_site_greeting_template_file_overrides_the_shipped_one(email_site):
    folder = email_site.root / "my-templates" / "email"
    folder.mkdir(parents=True)
    (folder / "greeting.txt.j2").write_text("Ahoy {{ recipient.first_name or 'crew' }}!", encoding="utf-8")
    email_site.data["templates"] = str(email_site.root / "my-templates")
    draft, config = draft_and_config(email_site)
    _, parsed = parse(build_message(draft, Recipient("r@example.org", "Grace Hopper"), config))
    assert "Ahoy Grace!" in parsed.get_body(("plain",)).get_content()
