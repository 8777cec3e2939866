"""Third-party plugins: tests/data/plugins is a distribution of its own, built and installed here.

It registers the network `threadsx` through the `syndicate.networks` entry point, as any package
on PyPI would, and syndicate finds it with no edit to its code. The install goes to a folder put on
`sys.path` for these tests only (pip --target), so the venv and every other test see the built-in
networks alone. Offline: pip builds it with the venv's hatchling, without an index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grapheme
import pytest

from syndicate.compose.networks import network, network_names
from syndicate.compose.social import compose_social_channel, describe
from syndicate.config import config_from_dict
from syndicate.content import load_articles
from syndicate.errors import ConfigError
from syndicate.send import send

from .conftest import DATA, base_config_dict, child_env

PLUGINS = DATA / "plugins"
BUILT_IN = ["bluesky", "linkedin", "mastodon", "threads", "x"]
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/plugins built into a wheel and installed into a folder of its own."""
    target = tmp_path_factory.mktemp("site-packages")
    source = tmp_path_factory.mktemp("source") / "plugins"
    shutil.copytree(PLUGINS, source)  # pip builds in the source tree: keep tests/data clean
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--no-index", "--target", str(target), str(source)], check=True)
    return target


@pytest.fixture
def plugins(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin distribution on the import path for one test, as if pip-installed in the venv."""
    monkeypatch.syspath_prepend(str(installed))
    yield installed


def threadsx_config(root: Path, **channel):
    data = base_config_dict()
    data["content"] = {"dir": str(DATA / "social")}
    data["channels"] = {
        "threads": {"kind": "social", "network": "threadsx", "targets": ["social-outbox"], **channel}
    }
    return config_from_dict(data, root / "config.yaml")


def test_an_installed_plugin_network_is_found_like_the_built_in_ones(plugins) -> None:
    assert network_names() == sorted([*BUILT_IN, "threadsx"])
    threadsx = network("threadsx")
    assert (threadsx.name, threadsx.limit, threadsx.unit) == ("threadsx", 500, "graphemes")


def test_a_plugin_network_composes_posts_within_its_limit(plugins, tmp_path) -> None:
    config = threadsx_config(tmp_path, hashtags=["lighthouse"])
    posts, problems = compose_social_channel(load_articles(config).articles, "threads", config)
    assert len(posts) >= 6 and not [p for p in problems if p.severity == "error"]
    for post in posts:
        assert post.network == "threadsx" and post.limit == 500 and post.unit == "graphemes"
        assert post.length == grapheme.length(post.text) <= 500, post.key
        assert post.link in post.text and "(via Test Weekly)" in post.text  # the plugin's own template
        assert describe(post) == f"threadsx {post.length}/500"  # no fold on this network
    long = next(p for p in posts if p.article.slug == "long-description")
    assert long.length > 400  # shortened to the plugin's limit, not some other network's


def test_a_send_through_a_plugin_network_reaches_the_target(plugins, tmp_path) -> None:
    config = threadsx_config(tmp_path)
    outcome = send(config, select="all", channels=["threads"], now=NOW)
    assert outcome.ok
    written = [json.loads(p.read_text()) for p in (tmp_path / "outbox" / "social").glob("*.json")]
    assert written and all(w["network"] == "threadsx" and w["length"] <= 500 for w in written)
    assert outcome.totals()["social-outbox"]["sent"] == len(written)


def spool_config(root: Path, **spool) -> dict:
    """A ThreadsX channel posting through the plugin's `spool` target (a third-party target type)."""
    data = base_config_dict()
    data["content"] = {"dir": str(DATA / "social")}
    data["channels"] = {"threads": {"kind": "social", "network": "threadsx", "targets": ["spool"]}}
    data["targets"] = {"spool": {"type": "spool", "file": "spool/posts.jsonl", **spool}}
    data["state_dir"] = str(root / "state")
    return data


def spooled(root: Path) -> list[dict]:
    path = root / "spool" / "posts.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_plugin_target_type_delivers_through_send_with_no_edit_to_syndicate(plugins, tmp_path) -> None:
    from syndicate.deliver import target_types

    assert target_types()["spool"].__module__ == "syndicate_test_plugins.spool"
    config = config_from_dict(spool_config(tmp_path, label="night-shift"), tmp_path / "config.yaml")
    outcome = send(config, select="all", now=NOW)
    assert outcome.ok
    lines = spooled(tmp_path)
    assert len(lines) == outcome.totals()["spool"]["sent"] >= 6
    assert {line["label"] for line in lines} == {"night-shift"}  # its own setting reached it
    assert all(
        line["payload"]["kind"] == "post" and line["payload"]["network"] == "threadsx" for line in lines
    )
    assert len({line["key"] for line in lines}) == len(lines)
    again = send(config, select="all", now=NOW)  # the ledger keeps plugin targets' sends too
    assert again.totals()["spool"]["sent"] == 0 and len(spooled(tmp_path)) == len(lines)


def test_the_cli_sends_through_an_installed_plugin_target(installed, tmp_path) -> None:
    """The same, as a user runs it: `syndicate send` in a process that has the plugin installed."""
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(spool_config(tmp_path)), encoding="utf-8")
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(installed), env["PYTHONPATH"]])
    run = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "send", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert len(spooled(tmp_path)) >= 6
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"channels": {"threads": {"kind": "social", "network": "linkedin", "targets": ["spool"]}}},
            r"channels\.threads\.targets: 'spool' is a spool target, which appends ThreadsX posts to a file "
            r"\(expected a target that takes linkedin posts, of type: discord, linkedin, outbox, slack, webhook\)$",
        ),
        (
            {"targets": {"spool": {"type": "spool", "file": "x.jsonl", "colour": "red"}}},
            r"targets\.spool\.colour: is not a known key",
        ),
        (
            {"targets": {"spool": {"type": "spool", "file": "x.jsonl", "label": ""}}},
            r"targets\.spool\.label: '': string should have at least 1 character",
        ),
    ],
    ids=["carries-other-networks", "unknown-key", "bad-value"],
)
def test_a_plugin_target_type_settings_are_checked_like_the_built_in_ones(plugins, tmp_path, change, message):
    data = {**spool_config(tmp_path), **change}
    with pytest.raises(ConfigError, match=message) as caught:
        config_from_dict(data, tmp_path / "config.yaml")
    assert "\n" not in str(caught.value)


def test_without_the_plugin_its_target_type_is_a_one_line_config_error(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"targets\.spool\.type: 'spool' is not allowed \(expected "
    ) as caught:
        config_from_dict({**spool_config(tmp_path), "channels": {}}, tmp_path / "config.yaml")
    assert "\n" not in str(caught.value)


def test_without_the_plugin_the_network_is_a_one_line_config_error(tmp_path) -> None:
    assert network_names() == BUILT_IN
    with pytest.raises(ConfigError) as caught:
        threadsx_config(tmp_path)
    message = str(caught.value)
    assert message.endswith(
        "channels.threads.network: 'threadsx' is not allowed "
        "(expected 'bluesky', 'linkedin', 'mastodon', 'threads', 'x')"
    )
    assert "\n" not in message


def test_an_unknown_network_name_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"^network 'fax' is not known \(expected 'bluesky', 'linkedin'"):
        network("fax")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch):
    """`registered(name=value, ...)`: the entry points discovery finds, instead of the installed ones."""
    from importlib.metadata import EntryPoint

    from syndicate import plugins
    from syndicate.compose import networks

    def register(*pairs: tuple[str, str]) -> None:
        found = [EntryPoint(name, value, networks.GROUP) for name, value in pairs]
        monkeypatch.setattr(plugins, "entry_points", lambda group: found if group == networks.GROUP else [])
        plugins.clear_caches()
        networks._instance.cache_clear()

    yield register
    plugins.clear_caches()
    networks._instance.cache_clear()


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            [("x", "syndicate.compose.networks.x:X"), ("x", "syndicate.compose.networks.mastodon:Mastodon")],
            "network 'x' is registered twice",
        ),
        ([("x", "syndicate.compose.networks.nowhere:X")], "network 'x': cannot load"),
        ([("x", "os:path")], "network 'x': os:path from an unknown distribution is not a Network subclass"),
        ([("x", "syndicate.compose.networks.mastodon:Mastodon")], "calls itself 'mastodon'"),
    ],
)
def test_a_broken_plugin_is_a_one_line_error_naming_it(registered, pairs, message) -> None:
    registered(*pairs)
    with pytest.raises(ConfigError, match=message) as caught:
        network("x")
    assert "\n" not in str(caught.value)


def test_the_same_class_found_twice_is_one_network(registered) -> None:
    registered(("x", "syndicate.compose.networks.x:X"), ("x", "syndicate.compose.networks.x:X"))
    assert network_names() == ["x"] and network("x").limit == 280
