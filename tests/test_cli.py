"""The CLI as a user runs it: exit codes, one-line errors, never a traceback for a mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from syndicate import __version__
from syndicate.cli import cli

from .conftest import REPO


def run(*args: str, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args], cwd=cwd, capture_output=True, text=True, env=env
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
