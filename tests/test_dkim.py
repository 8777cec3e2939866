"""DKIM: keys from `syndicate dkim keygen`, messages signed by the smtp target and checked by dkimpy
against the TXT record keygen printed, as built and as a real loopback SMTP server received them."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from dkim.canonicalization import CanonicalizationPolicy

from syndicate.cli import cli
from syndicate.compose.mime import build_message, message_bytes
from syndicate.daemon.service import Daemon
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.dkim import DkimSettings, dns_lookup, load_signer
from syndicate.errors import ConfigError
from syndicate.recipients import Recipient
from syndicate.send import send

from .conftest import loopback_smtp
from .sample_mail import email_for, messages_for
from .test_mime import READER, draft_and_config
from .test_send import write_articles

SELECTOR, DOMAIN = "news2026", "example.com"
RECORD = f"{SELECTOR}._domainkey.{DOMAIN}"


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    output: str  # what keygen printed
    txt: str  # the TXT record's text, its strings joined as DNS joins them

    def dnsfunc(self):
        return dns_lookup({RECORD: self.txt})


def record_text(output: str) -> str:
    """The TXT record keygen printed, its quoted strings joined (as a resolver returns it)."""
    line = next(line for line in output.splitlines() if line.startswith(f"{RECORD} IN TXT "))
    return "".join(re.findall(r'"([^"]*)"', line.removeprefix(f"{RECORD} IN TXT ")))


def keygen(out: Path, *extra: str):
    args = ["dkim", "keygen", "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(out), *extra]
    return CliRunner().invoke(cli, args)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    out = tmp_path_factory.mktemp("dkim") / "keys"
    result = keygen(out)
    assert result.exit_code == 0, result.output
    private, public = out / f"{SELECTOR}.{DOMAIN}.private.pem", out / f"{SELECTOR}.{DOMAIN}.public.pem"
    return Keys(private, public, result.output, record_text(result.output))


def dkim_config(site, port: int, keys: Keys, **dkim_options):
    settings = {"domain": DOMAIN, "selector": SELECTOR, "key_file": str(keys.private), **dkim_options}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], timeout=5, dkim=settings)
    site.write_config()
    return site.config()


def send_drafts(config, draft, addresses: list[str]):
    target = make_target("newsletter", config)
    with target.open() as connection:
        return [
            connection.send(
                Message(
                    MessageKey("weekly", "newsletter", draft.key, address),
                    draft.content_hash,
                    partial(build_message, draft, Recipient(address, "Reader"), config),
                )
            )
            for address in addresses
        ]


def signature_tags(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    field = re.search(r"^DKIM-Signature:(.*?)(?=\r\n\S)", head, re.S | re.M)
    assert field is not None
    tags = [t.split("=", 1) for t in re.sub(r"\s+", "", field.group(1)).split(";") if t]
    return {k: v for k, v in tags}


def body_hash(raw: bytes) -> str:
    body = raw.split(b"\r\n\r\n", 1)[1]
    canonical = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed").canonicalize_body(body)
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")


def test_signed_messages_verify_as_built_and_as_the_server_received_them(email_site, smtp_sink, keys):
    sink, port = smtp_sink
    draft, _ = draft_and_config(email_site)
    config = dkim_config(email_site, port, keys)
    results = send_drafts(config, draft, ["one@example.org", "two@example.org"])
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert sorted(sink.copies()) == ["one@example.org", "two@example.org"]
    for _, raw in sink.received:
        assert raw.startswith(b"DKIM-Signature: ")
        assert raw.count(b"DKIM-Signature:") == 1  # signed once, retries and all
        assert dkim.verify(raw, dnsfunc=keys.dnsfunc())
        tags = signature_tags(raw)
        assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
            "rsa-sha256",
            "relaxed/relaxed",
            DOMAIN,
            SELECTOR,
        )
        signed = tags["h"].split(":")
        assert signed == [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "list-id",
            "feedback-id",
        ]
        assert tags["bh"] == body_hash(raw)

    signer = load_signer("newsletter", config.targets["newsletter"].dkim, config.root)
    built = signer.sign(message_bytes(build_message(draft, READER, config)))
    assert dkim.verify(built, dnsfunc=keys.dnsfunc())


def test_tampering_with_a_signed_header_or_the_body_fails_verification(email_site, smtp_sink, keys):
    sink, port = smtp_sink
    draft, _ = draft_and_config(email_site)
    config = dkim_config(email_site, port, keys)
    send_drafts(config, draft, ["one@example.org"])
    raw = sink.received[0][1]
    assert dkim.verify(raw, dnsfunc=keys.dnsfunc())

    subject = re.search(rb"\r\nSubject: ([^\r]*)", raw)
    assert subject is not None
    tampered_subject = raw.replace(subject.group(0), subject.group(0) + b" (cheap pills)", 1)
    assert not dkim.verify(tampered_subject, dnsfunc=keys.dnsfunc())

    unsubscribe = re.search(rb"\r\nList-Unsubscribe: <(https://[^>]*)>", raw)
    assert unsubscribe is not None
    evil = raw.replace(unsubscribe.group(1), b"https://evil.example.net/u", 1)
    assert evil != raw
    assert not dkim.verify(evil, dnsfunc=keys.dnsfunc())

    head, body = raw.split(b"\r\n\r\n", 1)
    altered = head + b"\r\n\r\n" + body.replace(b"Unsubscribe", b"Unsubscrib3", 1)
    assert altered != raw
    assert not dkim.verify(altered, dnsfunc=keys.dnsfunc())
    assert body_hash(altered) != signature_tags(raw)["bh"] == body_hash(raw)

    other_key = dns_lookup({RECORD: "v=DKIM1; k=rsa; p=" + keys.txt.rpartition("p=")[2][::-1][:40]})
    assert not dkim.verify(raw, dnsfunc=other_key)  # and a wrong published key is not accepted


def test_keygen_writes_a_0600_key_whose_txt_record_parses_and_verifies(keys, tmp_path):
    assert stat.S_IMODE(keys.private.stat().st_mode) == 0o600
    tags = dict(t.strip().split("=", 1) for t in keys.txt.split(";"))
    assert tags["v"] == "DKIM1" and tags["k"] == "rsa"
    published = serialization.load_der_public_key(base64.b64decode(tags["p"]))
    private = serialization.load_pem_private_key(keys.private.read_bytes(), password=None)
    assert published.public_numbers() == private.public_key().public_numbers()
    assert private.key_size == 2048
    # every string of the record fits a TXT string
    line = next(line for line in keys.output.splitlines() if " IN TXT " in line)
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', line))
    assert keys.private.read_text() not in keys.output  # printed: the public part only

    signer = load_signer("t", DkimSettings(domain=DOMAIN, selector=SELECTOR, key_file=keys.private), tmp_path)
    message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    assert dkim.verify(signer.sign(message), dnsfunc=keys.dnsfunc())

    again = keygen(keys.private.parent)  # never overwrites a key
    assert again.exit_code == 2
    assert again.output.count("\n") == 1 and "already exists" in again.output


def test_keygen_bits_and_names_are_checked(tmp_path):
    small = keygen(tmp_path / "small", "--bits", "512")
    assert small.exit_code == 2 and "--bits 512 is out of range" in small.output
    bad = CliRunner().invoke(
        cli, ["dkim", "keygen", "--selector", "a;b", "--domain", DOMAIN, "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2 and bad.output.startswith("error: --selector:")
    assert list(tmp_path.iterdir()) == []


def validate(site):
    write_articles(site)
    site.write_config()
    return CliRunner().invoke(cli, ["--config", str(site.config_path), "validate"])


def test_a_missing_or_bad_key_is_one_line_naming_the_target_and_never_shows_the_key(
    site, smtp_sink, keys, monkeypatch, tmp_path
):
    sink, port = smtp_sink
    write_articles(site)
    secret = keys.private.read_text()
    body = "".join(secret.splitlines()[1:-1])
    settings = {"domain": DOMAIN, "selector": SELECTOR}

    cases = {
        "missing": {"key_file": str(tmp_path / "nope.pem")},
        "public key": {"key_file": str(keys.public)},
        "truncated": {"key_file": str(tmp_path / "truncated.pem")},
        "env unset": {"key_env": "SYN_TEST_DKIM_UNSET"},
        "env corrupt": {"key_env": "SYN_TEST_DKIM_CORRUPT"},
    }
    (tmp_path / "truncated.pem").write_text(secret[: len(secret) // 2])
    monkeypatch.delenv("SYN_TEST_DKIM_UNSET", raising=False)
    lines = secret.splitlines()
    corrupt = "\n".join([*lines[:5], "A" * len(lines[5]), *lines[6:]])
    assert corrupt != secret
    monkeypatch.setenv("SYN_TEST_DKIM_CORRUPT", corrupt)
    expected = {
        "missing": "targets.newsletter.dkim.key_file: ",
        "public key": "does not hold a PEM RSA private key",
        "truncated": "does not hold a PEM RSA private key",
        "env unset": "targets.newsletter.dkim.key_env: environment variable SYN_TEST_DKIM_UNSET is not set",
        "env corrupt": "targets.newsletter.dkim.key_env: environment variable SYN_TEST_DKIM_CORRUPT",
    }
    for case, key in cases.items():
        site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], dkim={**settings, **key})
        site.data["channels"]["weekly"]["targets"] = ["mail-outbox", "newsletter"]
        result = validate(site)
        assert result.exit_code == 2, (case, result.output)
        assert result.output.count("\n") == 1 and result.output.startswith(
            "error: targets.newsletter.dkim."
        ), (
            case,
            result.output,
        )
        assert expected[case] in result.output, (case, result.output)
        assert "Traceback" not in result.output
        for chunk in (body[i : i + 16] for i in range(0, len(body), 16)):
            assert chunk not in result.output, case
        with pytest.raises(ConfigError) as raised:  # a send stops before any target sends
            send(site.config(), select="all")
        assert str(raised.value) in result.output
    assert sink.copies() == {}
    assert not (site.root / "outbox" / "email").exists()  # the outbox target before it sent nothing either


def test_a_good_key_validates_and_stays_out_of_every_output(site, smtp_sink, keys, monkeypatch, caplog):
    _, port = smtp_sink
    monkeypatch.setenv("SYN_TEST_DKIM_KEY", keys.private.read_text())
    dkim_settings = {"domain": DOMAIN, "selector": SELECTOR, "key_env": "SYN_TEST_DKIM_KEY"}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], dkim=dkim_settings)
    result = validate(site)
    assert result.exit_code == 0, result.output
    signer = load_signer("newsletter", site.config().targets["newsletter"].dkim, site.root)
    assert "PRIVATE" not in repr(signer) and "PRIVATE" not in result.output
    assert keys.private.read_text()[40:80] not in caplog.text


def test_key_file_is_relative_to_the_config_folder(site, smtp_sink, keys):
    sink, port = smtp_sink
    (site.root / "keys").mkdir()
    (site.root / "keys" / "k.pem").write_bytes(keys.private.read_bytes())
    dkim_settings = {"domain": DOMAIN, "selector": SELECTOR, "key_file": "keys/k.pem"}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], dkim=dkim_settings)
    assert validate(site).exit_code == 0


@pytest.mark.parametrize(
    "dkim_settings, problem",
    [
        ({"domain": DOMAIN, "selector": SELECTOR}, "needs exactly one of key_file and key_env"),
        ({"domain": "exa mple.com", "selector": SELECTOR, "key_env": "K"}, "is not a DNS name"),
        ({"domain": DOMAIN, "selector": "s\r\nX-Evil: 1", "key_env": "K"}, "is not a DNS name"),
        ({"domain": DOMAIN, "selector": SELECTOR, "key_env": "NOT-A-NAME"}, "is not an environment variable"),
    ],
)
def test_dkim_settings_are_checked_at_load(site, dkim_settings, problem):
    site.data["targets"]["newsletter"] = loopback_smtp(2525, ["a@example.org"], dkim=dkim_settings)
    with pytest.raises(ConfigError) as raised:
        site.config()
    assert "targets.newsletter.dkim" in str(raised.value) and problem in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


@pytest.mark.parametrize(
    "domain, warned",
    [(DOMAIN, False), ("mail.other.net", True), ("news.example.com", True)],
)
def test_validate_warns_when_the_signing_domain_does_not_align_with_from(
    site, smtp_sink, keys, domain, warned
):
    _, port = smtp_sink
    dkim_settings = {"domain": domain, "selector": SELECTOR, "key_file": str(keys.private)}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], dkim=dkim_settings)
    result = validate(site)
    assert result.exit_code == 0, result.output
    line = (
        f"warning: targets.newsletter.dkim.domain: {domain} is not the From address's domain example.com "
        "nor a parent of it, so DMARC will not count the signature (expected example.com)"
    )
    assert (line in result.output.splitlines()) is warned


def test_a_message_that_cannot_be_signed_fails_alone_and_is_never_sent_unsigned(site, smtp_sink, keys):
    sink, port = smtp_sink
    config = dkim_config(site, port, keys)
    messages = list(messages_for(["one@example.org", "two@example.org"], target="newsletter"))
    no_from = email_for("one@example.org")
    del no_from["From"]
    messages[0] = replace(messages[0], build=lambda: no_from)
    with make_target("newsletter", config).open() as connection:
        results = [connection.send(m) for m in messages]
    assert [r.outcome for r in results] == ["failed", "sent"]
    assert results[0].detail.startswith("cannot DKIM-sign the message (")
    assert "PRIVATE" not in results[0].detail
    assert list(sink.copies()) == ["two@example.org"]
    assert dkim.verify(sink.received[0][1], dnsfunc=keys.dnsfunc())


def test_the_daemon_does_not_start_with_a_bad_key(site, smtp_sink, tmp_path):
    _, port = smtp_sink
    write_articles(site)
    dkim_settings = {"domain": DOMAIN, "selector": SELECTOR, "key_file": str(tmp_path / "gone.pem")}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], dkim=dkim_settings)
    events = []
    with pytest.raises(ConfigError) as raised:
        Daemon(site.config(), events.append, watch=False).start()
    assert str(raised.value).startswith("targets.newsletter.dkim.key_file: ")
    assert events == []  # no "ready": it never took the state folder or a job
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()


@pytest.mark.parametrize("digest", [hashlib.sha256, hashlib.sha1])
def test_openssl_signs_the_very_bytes_dkimpy_s_own_rsa_would(keys, digest):
    """syndicate hands dkimpy's RSA step to OpenSSL (~10x faster); PKCS#1 v1.5 is deterministic,
    so both must give the same signature for the same key and hash."""
    from syndicate.dkim import _dkimpy, _openssl_sign

    pk = dkim.crypto.parse_pem_private_key(keys.private.read_bytes())
    for text in (b"", b"a digest of anything", bytes(range(256)) * 40):
        assert _openssl_sign(digest(text), pk) == bytes(dkim.crypto.RSASSA_PKCS1_v1_5_sign(digest(text), pk))
    assert _dkimpy() is dkim and dkim.RSASSA_PKCS1_v1_5_sign is _openssl_sign  # what dkimpy's signing calls
