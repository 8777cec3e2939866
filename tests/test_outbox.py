"""The outbox target and the target registry."""

from __future__ import annotations

import json

import pytest

from syndicate.deliver import Message, MessageKey, make_target
from syndicate.errors import DeliveryError

from .sample_mail import email_for


def email_message(recipient: str = "a@example.org", draft: str = "digest-1") -> Message:
    return Message(
        MessageKey("weekly", "mail-outbox", draft, recipient), "h", lambda: email_for(recipient, draft)
    )


def test_email_is_written_as_the_crlf_bytes_smtp_would_carry(site):
    target = make_target("mail-outbox", site.config())
    with target.open() as connection:
        result = connection.send(email_message())
    path = site.root / "outbox" / "email" / f"digest-1.a@example.org.{email_message().key.digest()}.eml"
    assert result.outcome == "sent" and result.detail == str(path)
    data = path.read_bytes()
    assert data.startswith(b"From: Test Weekly <news@example.com>\r\n") and b"\n" not in data.replace(
        b"\r\n", b""
    )


def test_posts_are_json_with_deterministic_names(site):
    target = make_target("social-outbox", site.config())
    payload = {"network": "linkedin", "text": "Tides ✓", "link": "https://example.com/a/"}
    post = Message(MessageKey("linkedin", "social-outbox", "tides", ""), "h", lambda: payload)
    with target.open() as connection:
        connection.send(post)
        connection.send(post)
    [path] = (site.root / "outbox" / "social").iterdir()
    assert path.name == f"tides.{post.key.digest()}.json"
    assert json.loads(path.read_text(encoding="utf-8")) == payload


def test_hostile_keys_stay_inside_the_folder(site):
    target = make_target("mail-outbox", site.config())
    with target.open() as connection:
        connection.send(email_message("a@example.org", draft="../../etc/passwd"))
    [path] = (site.root / "outbox" / "email").iterdir()
    assert path.name.startswith("etc-passwd.a@example.org.")


def test_an_unwritable_folder_is_a_clear_error(site):
    (site.root / "outbox").write_text("a file, not a folder", encoding="utf-8")
    with (
        pytest.raises(DeliveryError, match=r"targets.mail-outbox.dir: cannot create"),
        make_target("mail-outbox", site.config()).open(),
    ):
        pass


def test_unknown_target_names_are_errors(site):
    with pytest.raises(DeliveryError, match=r"targets.nope: no such target \(expected one of: mail-outbox"):
        make_target("nope", site.config())


def test_every_target_type_in_the_config_can_deliver():
    from syndicate.deliver import TargetSettings, target_types

    types = target_types()
    assert {"outbox", "smtp", "webhook", "slack", "discord", "linkedin"} <= set(types)
    for kind, model in types.items():  # each connects in its own way: none inherits the base's refusal
        assert model.connect is not TargetSettings.connect, kind


def test_dry_run_turns_any_target_into_an_outbox(site, tmp_path):
    site.data["targets"]["newsletter"] = {
        "type": "smtp",
        "host": "smtp.example.com",
        "recipients": ["a@example.org"],
    }
    target = make_target("newsletter", site.config(), dry_run_dir=tmp_path / "dry")
    with target.open() as connection:
        connection.send(email_message())
    assert len(list((tmp_path / "dry" / "newsletter").glob("*.eml"))) == 1
