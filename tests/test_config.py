"""config.yaml: working defaults, one-line errors with the key's path, secrets kept out of messages."""

from __future__ import annotations

import subprocess
import sys
from datetime import time

import pytest
import yaml

from syndicate.config import EmailChannel, load_config, wants_full_body
from syndicate.errors import ConfigError

from .conftest import REPO, base_config_dict, child_env


def _load(tmp_path, data) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return load_config(path)


def test_repository_config_is_a_working_example():
    config = load_config(REPO / "config.yaml")
    assert config.site.timezone == "Europe/London"
    assert config.content.dir == REPO / "content"
    assert config.state_dir == REPO / ".syndicate"
    assert {t.type for t in config.targets.values()} == {"outbox"}
    assert config.templates_dir == REPO / "templates"  # the built-in ones, from a checkout
    weekly = config.channels["weekly"]
    assert isinstance(weekly, EmailChannel) and weekly.schedule.at == time(8, 0)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = _load(tmp_path, base_config_dict())
    assert config.content.dir == tmp_path / "content"
    assert config.targets["mail-outbox"].dir == tmp_path / "outbox" / "email"


def test_bad_time_names_the_key_path(tmp_path):
    data = base_config_dict()
    data["channels"]["weekly"]["schedule"] = {"every": "week", "at": "25:00"}
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    assert str(err.value) == (
        f"{tmp_path / 'config.yaml'}: channels.weekly.schedule.at: '25:00' is not a time (expected HH:MM)"
    )


def test_unquoted_yaml_time_is_read_as_a_time(tmp_path):
    text = yaml.safe_dump(base_config_dict()).replace(
        "kind: email", "kind: email\n    schedule: {every: day, at: 07:30}"
    )
    config = _load(tmp_path, text)
    assert config.channels["weekly"].schedule.at == time(7, 30)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["site"].update(colour="blue"), "site.colour: is not a known key"),
        (lambda d: d["site"].pop("name"), "site.name: is missing"),
        (
            lambda d: d["site"].update(timezone="Mars/Olympus"),
            "site.timezone: 'Mars/Olympus' is not a time zone",
        ),
        (lambda d: d["site"].update(base_url="example.com"), "site.base_url: 'example.com' is not a URL"),
        (
            lambda d: d["channels"]["weekly"].update(kind="fax"),
            "channels.weekly.kind: 'fax' is not allowed (expected 'email', 'social')",
        ),
        (lambda d: d["channels"]["weekly"].update(targets=["nowhere"]), "'nowhere' is not a target"),
        (
            lambda d: d["channels"]["weekly"].update(max_articles="many"),
            "channels.weekly.max_articles: 'many'",
        ),
        (
            lambda d: d["targets"]["mail-outbox"].update(type="pigeon"),
            "targets.mail-outbox.type: 'pigeon' is not allowed",
        ),
        (
            lambda d: d["channels"]["weekly"].update(mode="weekly"),
            "channels.weekly.mode: 'weekly' is not allowed",
        ),
        (
            lambda d: (
                d["schedule"].update(catch_up="sometimes")
                if "schedule" in d
                else d.update(schedule={"catch_up": "sometimes"})
            ),
            "schedule.catch_up: 'sometimes' is not a catch-up policy",
        ),
    ],
)
def test_mistakes_are_one_line_with_the_path(tmp_path, change, message):
    data = base_config_dict()
    change(data)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    text = str(err.value)
    assert message in text
    assert all(line.startswith(str(tmp_path)) for line in text.splitlines())


def test_missing_env_var_is_named_and_secret_never_echoed(tmp_path, monkeypatch):
    data = base_config_dict()
    data["targets"]["smtp"] = {
        "type": "smtp",
        "host": "127.0.0.1",
        "recipients": ["a@example.com"],
        "username": "${SYN_TEST_USER}",
        "password": "${SYN_TEST_PASSWORD}",
    }
    monkeypatch.setenv("SYN_TEST_USER", "u")
    monkeypatch.delenv("SYN_TEST_PASSWORD", raising=False)
    with pytest.raises(
        ConfigError, match=r"targets.smtp.password: environment variable SYN_TEST_PASSWORD is not set"
    ):
        _load(tmp_path, data)

    monkeypatch.setenv("SYN_TEST_PASSWORD", "hunter2-secret")
    config = _load(tmp_path, data)
    assert config.targets["smtp"].password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(config)

    data["targets"]["smtp"]["port"] = "${SYN_TEST_PASSWORD}"  # a secret in a field that fails
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    assert "hunter2-secret" not in str(err.value)
    assert "${SYN_TEST_PASSWORD}" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site: [unclosed", "not valid YAML at line"),
        ("", "is empty (expected a mapping"),
        ("- a\n- b\n", "is a list (expected a mapping"),
    ],
)
def test_unreadable_configs(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert message in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ({"type": "slack", "url": "${SYN_TEST_HOOK}"}, "url"),  # a validator quoting the value
        ({"type": "linkedin", "author": "${SYN_TEST_HOOK}", "token": "t"}, "author"),
        (
            {"type": "webhook", "url": "https://h.example/${SYN_TEST_HOOK}", "retries": "x${SYN_TEST_HOOK}"},
            "retries",
        ),
    ],
)
def test_a_rejected_interpolated_value_is_quoted_as_written(tmp_path, monkeypatch, target, key):
    secret = "hooks.slack.com/services/T000/B000/" + "s3cr3t" * 10  # long: reprlib would cut it
    monkeypatch.setenv("SYN_TEST_HOOK", secret)
    data = base_config_dict()
    data["targets"]["hook"] = target
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    message = str(err.value)
    assert f"targets.hook.{key}: " in message and "${SYN_TEST_HOOK}" in message
    assert "s3cr3t" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("host", "extra", "refused"),
    [
        ("smtp.example.com", {}, True),
        ("smtp.example.com", {"local": True}, False),
        ("127.0.0.1", {}, False),
        ("smtp.example.com", {"security": "starttls"}, False),
    ],
)
def test_a_password_never_goes_out_in_clear_text(tmp_path, host, extra, refused):
    data = base_config_dict()
    data["targets"]["newsletter"] = {
        "type": "smtp",
        "host": host,
        "security": "none",
        "username": "me",
        "password": "secret",
        "recipients": ["a@example.com"],
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    if not refused:
        assert load_config(path).targets["newsletter"].host == host
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: targets.newsletter: security: none would send the password unencrypted to "
        "smtp.example.com (expected starttls or ssl, or local: true for a relay you trust)"
    )


def test_a_variable_without_braces_is_a_warning_and_an_empty_one_an_error(site, monkeypatch):
    monkeypatch.setenv("SYN_EMPTY", "")
    site.data["targets"]["hook"] = {
        "type": "webhook",
        "url": "https://hooks.example.com/x",
        "secret": "$SYN_HOOK",
    }
    site.write_config()
    config = load_config(site.config_path)
    assert config.warnings == [
        f"{site.config_path}: targets.hook.secret: $SYN_HOOK is used as written "
        "(expected ${SYN_HOOK} to read the environment variable)"
    ]
    site.data["targets"]["hook"]["secret"] = "${SYN_EMPTY}"
    site.write_config()
    with pytest.raises(ConfigError, match=r"targets\.hook\.secret: environment variable SYN_EMPTY is empty"):
        load_config(site.config_path)
    site.data["targets"]["hook"]["secret"] = "literal$part"  # part of a literal: never quoted back
    site.write_config()
    assert load_config(site.config_path).warnings == []


BOMB = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_yaml_alias_bomb_in_the_config_is_one_line_not_a_hang(site):
    site.config_path.write_text(site.config_path.read_text() + BOMB)
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "validate"]
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "has more than 1,000,000 values, counting YAML aliases (expected a config file)"
    )


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("targets", "mail", "timeout"), ".inf"),
        (("targets", "mail", "timeout"), ".nan"),
        (("targets", "mail", "rate"), "1e-300"),
        (("targets", "mail", "retry_delay"), "1e300"),
        (("targets", "mail", "max_attempts"), "1000000"),
        (("targets", "hook", "timeout"), ".inf"),
        (("targets", "hook", "retries"), "1000000"),
        (("schedule", "rescan_seconds"), "1e300"),
        (("schedule", "rescan_seconds"), "0.000001"),
        (("schedule", "catch_up"), "1000000000d"),
        (("schedule", "catch_up"), "0m"),
        (("channels", "weekly", "max_articles"), "1e9"),
    ],
)
def test_every_number_is_range_checked_so_nothing_that_validates_crashes_later(site, where, value):
    site.data["targets"]["mail"] = {
        "type": "smtp",
        "host": "smtp.example.com",
        "recipients": ["a@example.org"],
    }
    site.data["targets"]["hook"] = {"type": "webhook", "url": "https://hooks.example.com/x"}
    node = site.data
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = "PLACEHOLDER"
    text = yaml.safe_dump(site.data).replace("PLACEHOLDER", value)
    site.config_path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(site.config_path)
    [line] = str(caught.value).splitlines()
    assert ".".join(where) in line


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://10.0.0.5/hook",
        "https://192.168.1.20/hook",
        "https://172.16.4.4/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_webhooks_to_private_link_local_or_metadata_addresses_need_local_true(site, url):
    site.data["targets"]["hook"] = {"type": "webhook", "url": url}
    site.write_config()
    with pytest.raises(ConfigError) as caught:
        load_config(site.config_path)
    line = str(caught.value)
    assert "targets.hook.url: points at a private, link-local or cloud-metadata address" in line
    assert url not in line  # a URL may carry a secret: never quoted
    site.data["targets"]["hook"]["local"] = True
    site.write_config()
    assert load_config(site.config_path).targets["hook"].url == url


def test_public_and_loopback_webhooks_are_fine(site):
    for url in (
        "https://hooks.example.com/x",
        "https://8.8.8.8/x",
        "http://127.0.0.1:9/x",
        "https://[::1]/x",
    ):
        site.data["targets"]["hook"] = {"type": "webhook", "url": url}
        site.write_config()
        assert load_config(site.config_path).targets["hook"].url == url


def test_a_digest_cannot_carry_whole_articles_in_one_line(tmp_path):
    data = base_config_dict()
    data["channels"]["weekly"]["body"] = "full"  # weekly is a digest
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, data)
    assert str(err.value) == (
        f"{tmp_path / 'config.yaml'}: channels.weekly.body: 'full' is not allowed for a digest "
        "(expected body: teaser, or mode: single to send each article whole)"
    )
    data["channels"]["weekly"]["body"] = "whole"
    with pytest.raises(
        ConfigError, match=r"channels\.weekly\.body: 'whole' is not allowed \(expected 'teaser' or 'full'\)$"
    ):
        _load(tmp_path, data)


def test_body_is_the_teaser_unless_a_single_channel_asks_for_the_whole_article(tmp_path):
    data = base_config_dict()
    config = _load(tmp_path, data)
    assert config.channels["weekly"].body == "teaser" and not wants_full_body(config)
    data["channels"]["letters"] = {
        "kind": "email",
        "mode": "single",
        "body": "teaser",
        "targets": ["mail-outbox"],
    }
    assert not wants_full_body(_load(tmp_path, data))
    data["channels"]["letters"]["body"] = "full"
    config = _load(tmp_path, data)
    assert config.channels["letters"].body == "full" and wants_full_body(config)
