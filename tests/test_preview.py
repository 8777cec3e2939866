"""`syndicate preview`: files per draft, the table, validate's size report, and a real browser look."""

from __future__ import annotations

import email
import json
import re
import shutil
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.compose.social import describe
from syndicate.content import load_articles
from syndicate.errors import ConfigError
from syndicate.preview import PREVIEW_RECIPIENT, preview

from .conftest import REPO, chromium, needs_chromium

ARTIFACTS = REPO / "artifacts"


def test_preview_writes_html_text_and_eml_for_every_email_draft(email_site, tmp_path):
    config = email_site.config()
    items = [item for item in preview(config, out_dir=tmp_path / "out") if item.kind == "email"]
    keys = sorted(item.key for item in items)
    assert keys == [
        "letters:fog-signals",
        "letters:harbour-economics",
        "letters:lamp-keepers",
        "letters:tide-tables",
        "weekly:2024-03-11",
    ]
    assert {item.channel for item in items} == {"weekly", "letters"}
    for item in items:
        assert [f.suffix for f in item.files] == [".html", ".txt", ".eml"]
        assert all(f.parent == tmp_path / "out" for f in item.files)
        html_file, text_file, eml_file = item.files
        raw = eml_file.read_bytes()
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
        assert parsed["List-Unsubscribe"] and parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        for part, file in (("html", html_file), ("plain", text_file)):
            sent = parsed.get_body((part,)).get_content().replace("\r\n", "\n")
            assert sent == file.read_text(encoding="utf-8")
        assert "Hi Reader," in text_file.read_text(encoding="utf-8")
        assert parsed["To"].addresses[0].addr_spec == PREVIEW_RECIPIENT.email
        assert item.draft.key == item.key and item.title == item.draft.subject
    digest = next(item for item in items if item.channel == "weekly")
    assert len(digest.articles) == 4 and digest.files[0].name == "weekly-2024-03-11.html"
    assert digest.size == f"{digest.draft.sent_bytes:,}/100,000 bytes of HTML as sent"


def test_preview_writes_each_social_post_as_text_and_json(email_site, tmp_path):
    config = email_site.config()
    items = preview(config, channel="linkedin", out_dir=tmp_path)
    published = sorted(a.slug for a in load_articles(config).articles if not a.draft)
    assert sorted(item.key for item in items) == [f"linkedin:{slug}" for slug in published]
    for item in items:
        post = item.draft
        assert item.kind == "social" and not item.errors
        assert [f.name for f in item.files] == [
            f"linkedin-{post.article.slug}.txt",
            f"linkedin-{post.article.slug}.json",
        ]
        assert item.files[0].read_text(encoding="utf-8") == post.text + "\n"
        assert json.loads(item.files[1].read_text(encoding="utf-8")) == post.as_dict()
        assert item.size == describe(post)
        assert re.fullmatch(r"linkedin \d+/3000, (fold at \d+|no fold)", item.size)
        assert item.title == post.text.split("\n", 1)[0]


def test_a_post_that_cannot_fit_is_an_error_row_and_exit_1(email_site, tmp_path):
    email_site.data["channels"]["x"] = {"kind": "social", "network": "x", "targets": ["social-outbox"]}
    email_site.write_config()
    email_site.article(
        "loud.md",
        f"""
        ---
        title: A Hashtag Longer Than a Post
        publish_date: 2024-03-06
        tags: [{"Lighthouse" * 30}]
        ---
        Body.
        """,
    )
    out = tmp_path / "out"
    items = preview(email_site.config(), channel="x", out_dir=out)
    (failed,) = [item for item in items if item.errors]
    assert failed.key == "x:loud" and failed.files == () and failed.draft is None
    assert "the x post for channel x is" in failed.errors[0] and "expected at most 280" in failed.errors[0]
    others = [item for item in items if not item.errors]
    assert len(others) == 4 and all(item.files[0].is_file() for item in others)
    assert not (out / "x-loud.txt").exists()

    result = CliRunner().invoke(
        cli, ["--config", str(email_site.config_path), "preview", "--channel", "x", "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("x ") and "ERROR" in line)
    assert "A Hashtag Longer Than a Post" in row and "ERROR x: the x post" in row
    assert result.output.splitlines()[-2:] == [
        f"4 draft(s) written to {out}; 1 could not be made",
        f"gallery: {out / 'index.html'}",
    ]


def test_port_without_serve_is_a_usage_error(email_site):
    result = CliRunner().invoke(cli, ["--config", str(email_site.config_path), "preview", "--port", "9000"])
    assert result.exit_code == 2 and "--port needs --serve" in result.output


def test_preview_defaults_to_the_state_dir_and_one_channel(email_site):
    config = email_site.config()
    items = preview(config, channel="weekly")
    assert [item.key for item in items] == ["weekly:2024-03-11"]
    assert items[0].files[0].parent == config.state_dir / "preview"
    assert {item.kind for item in preview(config, channel="linkedin")} == {"social"}


def test_preview_of_an_unknown_channel_is_a_config_error(email_site):
    with pytest.raises(ConfigError, match="--channel: 'weakly' is not a channel"):
        preview(email_site.config(), channel="weakly")


def test_preview_command_prints_the_table(email_site, tmp_path):
    out = tmp_path / "files"
    result = CliRunner().invoke(
        cli, ["--config", str(email_site.config_path), "preview", "--channel", "weekly", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["channel", "subject", "articles", "size", "warnings"]
    row = re.split(r"\s{2,}", lines[1])
    assert row[:3] == ["weekly", "Test Weekly: 4 new articles", "4"]
    # The HTML part as sent (quoted-printable, CRLF), before the preview reader's values go in.
    size, limit = re.fullmatch(r"([\d,]+)/([\d,]+) bytes of HTML as sent", row[3]).groups()
    raw = (out / "weekly-2024-03-11.eml").read_bytes()
    html_part = raw.split(b'Content-Type: text/html; charset="utf-8"\r\n')[1].split(b"\r\n\r\n", 1)[1]
    sent = len(html_part.rsplit(b"\r\n--", 1)[0])
    assert 0 <= sent - int(size.replace(",", "")) < 1024
    assert limit == "100,000"
    assert row[4] == "unsubscribe tokens are not signed (set site.unsubscribe_secret)"
    assert lines[-2:] == [f"1 draft(s) written to {out}", f"gallery: {out / 'index.html'}"]


def test_preview_command_with_paths_and_a_bad_channel(email_site, tmp_path):
    runner = CliRunner()
    one = email_site.content / "lamp-keepers.md"
    result = runner.invoke(
        cli,
        [
            "--config",
            str(email_site.config_path),
            "preview",
            str(one),
            "--channel",
            "letters",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "letters  The Last Lamp Keepers of the Western Approaches" in result.output
    bad = runner.invoke(cli, ["--config", str(email_site.config_path), "preview", "--channel", "nope"])
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("error: --channel: 'nope' is not a channel")


def test_validate_reports_the_digest_html_size(email_site):
    result = CliRunner().invoke(cli, ["--config", str(email_site.config_path), "validate"])
    assert result.exit_code == 0, result.output
    match = re.search(
        r"weekly:2024-03-11: digest of 4 article\(s\), ([\d,]+) bytes of HTML as sent \(clip limit 100,000\)",
        result.output,
    )
    assert match and 5_000 < int(match.group(1).replace(",", "")) < 100_000
    as_json = CliRunner().invoke(cli, ["--config", str(email_site.config_path), "validate", "--json"])
    assert '"html_bytes"' in as_json.output and '"clip_limit": 100000' in as_json.output


class _Visible(HTMLParser):
    """Text a reader sees in the DOM Chromium dumps (not inside <style> or <head>)."""

    def __init__(self, html: str):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "head", "script"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("style", "head", "script"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@needs_chromium
def test_sample_digest_in_headless_chromium_shows_every_title_and_cta(email_site, tmp_path):
    shutil.copy(REPO / "tests" / "data" / "email" / "hostile" / "hostile-title.md", email_site.content)
    config = email_site.config()
    (item,) = preview(config, channel="weekly", out_dir=tmp_path / "preview")
    url = item.files[0].resolve().as_uri()
    dom = chromium(tmp_path / "profile", "--dump-dom", url)
    visible = _Visible(dom).text
    articles = [a for a in load_articles(config).articles if not a.draft]
    assert len(articles) == 5
    for article in articles:
        assert " ".join(article.title.split()) in visible, article.title
        assert " ".join((article.cta or "").split()) in visible, article.cta
    assert 'Q&A: <script>alert(1)</script> "quotes"' in visible
    assert "<script" not in dom.replace("&lt;script", "")
    for leftover in ("{{", "{%", "<mj-", "__syndicate"):
        assert leftover not in dom
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "digest-preview.png"
    screenshot.unlink(missing_ok=True)
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=700,3000", url)
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screenshot_artifacts_stay_out_of_git():
    assert "artifacts/" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert Path(ARTIFACTS).name == "artifacts"
