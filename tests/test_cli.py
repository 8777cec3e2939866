"""The CLI as a user runs it: exit codes, one-line errors, never a traceback for a mistake."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

import pytest
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from syndicate import __version__, clock
from syndicate.cli import cli

from .conftest import REPO, Receiver, SmtpSink, free_port, running_sink, serving


def run(*args: str, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clock.child_env(env),
    )


def test_validate_example_content_warns_about_dates_and_exits_0():
    result = run("validate")
    assert result.returncode == 0, result.stderr
    assert (
        "tide-tables-for-editors.md: publish_date: 2024-03-04 is before created_date 2025-03-04"
        in result.stdout
    )
    assert "0 error(s)" in result.stdout


def test_validate_strict_fails_on_warnings():
    assert run("validate", "--strict").returncode == 1


def test_validate_json(site):
    site.article("ok.md", "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nb\n")
    site.article("bad.md", "---\ntitle: [x]\npublish_date: '2024-01-01'\n---\nb\n")
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "validate", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["articles"] == 1 and report["errors"] == 1
    assert report["problems"][0]["field"] == "title"


def test_validate_a_single_file_before_it_joins_the_folder(site, tmp_path):
    draft = tmp_path / "draft.md"
    draft.write_text("---\ntitle: T\npublish_date: '2024-02-30'\n---\nb\n")
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "validate", str(draft)])
    assert result.exit_code == 1
    assert "draft.md: publish_date: '2024-02-30' is not a date" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "/nonexistent/config.yaml", "validate"], "no such config file"),
        (["validate", "/nonexistent/folder"], "/nonexistent/folder: no such file or folder"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_exits_2_without_traceback(tmp_path):
    (tmp_path / "config.yaml").write_text("site: {name: x, base_url: nope, sender: a, postal_address: b}\n")
    result = run("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "site.base_url: 'nope' is not a URL" in result.stderr
    assert "site.sender: 'a' is not an email address" in result.stderr


def test_config_from_environment_variable(site, monkeypatch):
    site.article("ok.md", "---\ntitle: T\npublish_date: '2024-01-01'\n---\nb\n")
    monkeypatch.setenv("SYNDICATE_CONFIG", str(site.config_path))
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0 and "1 article(s) ok" in result.output


def test_version_and_help_on_every_command():
    runner = CliRunner()
    assert __version__ in runner.invoke(cli, ["--version"]).output
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name


def test_queue_lists_upcoming_sends_in_site_time(site):
    site.article("soon.md", "---\ntitle: Soon\npublish_date: '2099-06-01T09:00:00+02:00'\ncta: Go\n---\nb\n")
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "queue", "--days", "40000"])
    assert result.exit_code == 0, result.output
    # 09:00 at +02:00 is 08:00 in London summer time, shown with its offset.
    assert "2099-06-01 08:00 +01:00  linkedin" in result.output
    assert "Soon" in result.output


def test_queue_rejects_unknown_channel(site):
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "queue", "--channel", "nope"])
    assert result.exit_code == 2
    assert "--channel nope: no such name in config" in result.output


def test_config_option_after_the_command_too(site):
    site.article("ok.md", "---\ntitle: T\npublish_date: '2024-01-01'\n---\nb\n")
    result = CliRunner().invoke(cli, ["validate", "--config", str(site.config_path)])
    assert result.exit_code == 0 and "1 article(s) ok" in result.output


# --- secrets never leak ---------------------------------------------------------------------------

SECRETS = {
    "SYN_SMTP_PASSWORD": "smtp-pw-7f3a9c1e5b",
    "SYN_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"webhook-key-0a1b2c3d4e5f6a7b").decode(),
    "SYN_LINKEDIN_TOKEN": "li-token-AQX9z8y7w6v5u4",
    "SYN_UNSUBSCRIBE_SECRET": "unsub-key-5d4c3b2a19",
    "SYN_SLACK_PATH": "T0001/B0001/slackpathsecret42",
}


def _reject_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


def _daemon_until_it_fails(cwd, env) -> subprocess.CompletedProcess:
    """`syndicate daemon` until it logs a refused send, then SIGTERM: all it said."""
    command = [sys.executable, "-m", "syndicate", "daemon"]
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    said = []
    for line in process.stdout:
        said.append(line)
        if " failed " in line:
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, "".join(said) + out, err)


def _leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    values = [*SECRETS.values(), SECRETS["SYN_WEBHOOK_SECRET"].removeprefix("whsec_")]
    return [v for v in values if v.encode() in data]


def test_no_command_shows_or_writes_a_secret(site, receiver, tls, tmp_path):
    """Every command, against servers that refuse: the values of ${VARS} appear nowhere."""
    sink = SmtpSink()
    options = {"tls_context": tls[0], "auth_required": True, "authenticator": _reject_login}
    with running_sink(sink, **options) as smtp, serving(Receiver()) as linkedin:
        site.article("a.md", "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nB.\n")
        site.article("b.md", "---\ntitle: Later\npublish_date: '2099-01-01'\n---\nBody.\n")
        site.data["site"]["unsubscribe_secret"] = "${SYN_UNSUBSCRIBE_SECRET}"
        site.data["channels"] = {
            "weekly": {"kind": "email", "mode": "single", "targets": ["newsletter", "automations"]},
            "linkedin": {"kind": "social", "targets": ["company", "chat"]},
        }
        site.data["targets"] = {
            "newsletter": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "starttls",
                "ca_file": str(tls[1]),
                "username": "mailer",
                "password": "${SYN_SMTP_PASSWORD}",
                "recipients": ["a@example.org", "b@example.org"],
                "timeout": 5,
            },
            "automations": {
                "type": "webhook",
                "url": receiver.url,
                "secret": "${SYN_WEBHOOK_SECRET}",
                "retries": 0,
            },
            "company": {
                "type": "linkedin",
                "url": linkedin.url,
                "author": "urn:li:organization:1",
                "token": "${SYN_LINKEDIN_TOKEN}",
                "retries": 0,
            },
            "chat": {
                "type": "slack",
                "url": f"http://127.0.0.1:{free_port()}/${{SYN_SLACK_PATH}}",
                "retries": 0,
            },
        }
        site.write_config()
        said = {"message": f"Invalid access token {SECRETS['SYN_LINKEDIN_TOKEN']}"}
        linkedin.replies.append((401, {}, json.dumps(said).encode()))  # LinkedIn quoting the token
        receiver.replies.append((401, {}))
        env = {**os.environ, **SECRETS, "SYNDICATE_CONFIG": str(site.config_path)}
        commands = [
            ("validate",),
            ("validate", "--json"),
            ("preview",),
            ("send", "--all", "--dry-run", "-v"),
            ("send", "--all"),
            ("status",),
            ("queue", "--days", "40000"),
            ("queue", "--json", "--days", "40000"),
        ]
        results = {command: run(*command, cwd=site.root, env=env) for command in commands}
        site.data["schedule"] = {"catch_up": "send"}  # the daemon tries the 2024 article too
        site.write_config()
        results[("daemon",)] = _daemon_until_it_fails(site.root, env)
    assert results[("send", "--all")].returncode == 1  # every target refused or unreachable
    sent = results[("send", "--all")].stdout
    assert "535" in sent and "refused the access token" in sent and "cannot reach the receiver" in sent
    assert (tmp_path / ".syndicate" / "dry-run" / "automations").is_dir()
    assert receiver.requests and linkedin.requests and not sink.received
    assert "Invalid access token [token]" in results[("status",)].stdout
    assert "Later" in results[("queue", "--json", "--days", "40000")].stdout
    daemon = results[("daemon",)]
    assert daemon.returncode == 0 and " failed " in daemon.stdout and "stopped" in daemon.stdout

    bad = dict(
        site.data, targets={**site.data["targets"], "chat": {"type": "slack", "url": "${SYN_SLACK_PATH}"}}
    )
    site.write_config(bad)
    results[("config error",)] = error = run("validate", cwd=site.root, env=env)
    assert error.returncode == 2 and "targets.chat.url: '${SYN_SLACK_PATH}' is not a URL" in error.stderr

    for command, result in results.items():
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert _leaks(result.stdout + result.stderr) == [], (command, result.stdout, result.stderr)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10  # previews, dry-run messages, the ledger
    assert {str(p.relative_to(tmp_path)): _leaks(p.read_bytes()) for p in written} == {
        str(p.relative_to(tmp_path)): [] for p in written
    }


def test_the_cli_reference_is_made_from_help_and_current():
    """docs/cli.md is `python -m syndicate.clidoc`: a changed option or help text must be
    regenerated with it, so the reference never drifts from the commands."""
    from syndicate.clidoc import reference

    assert (REPO / "docs" / "cli.md").read_text(encoding="utf-8") == reference()
