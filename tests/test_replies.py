"""Threads delivered (deliver/replies.py): every part a reply to the one before, in order, as one
ledger item; a part that fails or loses its answer never makes an earlier part go out twice.

Counted on the loopback servers of each network's own tests, which check replies the way each API
documents them: X's `reply.in_reply_to_tweet_id` naming a post it holds, Mastodon's
`in_reply_to_id` naming a status it holds (404 otherwise), Bluesky's `reply` strongRefs (root and
parent, uri and cid of records the repository holds).
"""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta

from syndicate.config import load_config
from syndicate.deliver import Message, MessageKey
from syndicate.deliver.bluesky import record_key
from syndicate.deliver.media import UPLOADS_FILE
from syndicate.ledger import Ledger
from syndicate.send import send

from . import test_bluesky as _bluesky
from . import test_mastodon as _mastodon
from . import test_x as _x
from .test_bluesky import ARTICLE as SKY_ARTICLE
from .test_bluesky import DID, target_of
from .test_bluesky import the_post as sky_post
from .test_mastodon import NOW as MASTO_NOW
from .test_mastodon import ledger_rows, masto_site
from .test_thread import NUMBER
from .test_x import send_x, weighted_length, x_site

# The loopback servers of each network's own tests, as fixtures here too.
fake_x, mastodon, pds, sky = _x.fake_x, _mastodon.mastodon, _bluesky.pds, _bluesky.sky

LONG = (
    "Tide gauges along the coast were read by hand every hour until 1987. "
    "The paper rolls sat in a basement until a flood in 2019 nearly took them. "
    "Volunteers dried, scanned and transcribed eleven thousand pages over two winters, "
    "and the record now runs unbroken for a century. "
    "This is what that century says about the height of the sea in our harbour."
)


def _statuses(ledger_config) -> dict[str, int]:
    with Ledger.from_config(ledger_config) as ledger:
        counts = ledger.counts()
    total: dict[str, int] = {}
    for by_status in counts.values():
        for status, n in by_status.items():
            total[status] = total.get(status, 0) + n
    return total


# -- X --------------------------------------------------------------------------------------------


def _x_thread_site(site, fake_x, monkeypatch, **options):
    x_site(site, fake_x, monkeypatch, **options)
    site.data["channels"]["x"]["thread"] = True
    site.write_config()


def test_x_posts_each_part_as_a_reply_to_the_one_before(site, fake_x, monkeypatch):
    _x_thread_site(site, fake_x, monkeypatch)
    outcome = send_x(site)
    assert outcome.ok
    tweets = fake_x.tweets
    assert len(tweets) >= 2
    assert [s for s in fake_x.seen if s[0] == "POST"][0] == ("POST", "/2/media/upload")
    assert "media" in tweets[0] and all("media" not in t for t in tweets[1:])  # the image on the first
    assert "reply" not in tweets[0]
    for before, after in zip(tweets, tweets[1:], strict=False):
        assert after["reply"] == {"in_reply_to_tweet_id": before["id"]}
    for index, tweet in enumerate(tweets, 1):
        assert weighted_length(tweet["text"]) <= 280  # counted by the server, by X's rules
        assert NUMBER.search(tweet["text"]).groups() == (str(index), str(len(tweets)))
    assert _statuses(site.config()) == {"sent": 1}  # one ledger item for the whole thread


def test_x_a_part_refused_midway_goes_on_from_there_next_run_without_a_double(site, fake_x, monkeypatch):
    _x_thread_site(site, fake_x, monkeypatch)
    fake_x.answers[2] = (503, {}, {"title": "Service Unavailable", "detail": "over capacity"})
    first = send_x(site)
    assert len(fake_x.tweets) == 1 and not first.ok
    [(_, report)] = first.reports
    assert report.sent == 0
    kept = json.loads((site.root / ".syndicate" / UPLOADS_FILE).read_text(encoding="utf-8"))
    assert [json.loads(v) for k, v in kept["x"].items() if k.startswith("thread ")] == [
        [fake_x.tweets[0]["id"]]
    ]

    second = send_x(site)
    assert second.ok
    texts = [t["text"] for t in fake_x.tweets]
    assert len(texts) == len(set(texts)) >= 2  # the first part was not posted again
    for before, after in zip(fake_x.tweets, fake_x.tweets[1:], strict=False):
        assert after["reply"] == {"in_reply_to_tweet_id": before["id"]}
    assert _statuses(site.config()) == {"sent": 1}


def test_x_a_part_whose_answer_is_lost_is_unknown_and_never_resent_blindly(site, fake_x, monkeypatch):
    _x_thread_site(site, fake_x, monkeypatch, timeout=1, retries=3)
    fake_x.hold_at, fake_x.tweet_delay = 2, 2.0  # part 2 is made; its answer comes too late
    first = send_x(site)
    [(_, report)] = first.reports
    assert report.unknown == 1
    made = len(fake_x.tweets)
    assert made == 2
    fake_x.tweet_delay = 0
    assert send_x(site).ok  # schedule.unknown: skip (the default): nothing goes out again
    assert len(fake_x.tweets) == made
    assert [s for s in fake_x.seen if s == ("POST", "/2/tweets")] == [("POST", "/2/tweets")] * 2


# -- Mastodon -------------------------------------------------------------------------------------


def _masto_thread_site(site, mastodon, monkeypatch, **options):
    masto_site(site, mastodon, monkeypatch, description=f"{LONG} {LONG}", **options)
    site.data["channels"]["mastodon"]["thread"] = True
    site.write_config()


def test_mastodon_posts_each_part_in_reply_with_its_own_idempotency_key(site, mastodon, monkeypatch):
    _masto_thread_site(site, mastodon, monkeypatch)
    outcome = send(load_config(site.config_path), select=["tides"], now=MASTO_NOW)
    assert outcome.totals()["masto"]["sent"] == 1
    made = mastodon.created
    assert len(made) >= 2
    assert made[0]["media_ids"] and all(not s["media_ids"] for s in made[1:])
    assert made[0]["in_reply_to_id"] is None
    for before, after in zip(made, made[1:], strict=False):
        assert after["in_reply_to_id"] == before["id"]
    keys = [s.headers["Idempotency-Key"] for s in mastodon.seen if s.path == "/api/v1/statuses"]
    assert len(keys) == len(set(keys)) == len(made)
    assert all(NUMBER.search(s["content"]) for s in made)
    assert ledger_rows(site) == [("sent", 1)]


def test_mastodon_a_lost_answer_midway_then_a_resend_completes_the_thread_once(site, mastodon, monkeypatch):
    _masto_thread_site(site, mastodon, monkeypatch, timeout=1, retries=3)
    site.data["schedule"] = {"unknown": "resend"}
    site.write_config()
    mastodon.hold, mastodon.hold_at = 2.5, 2  # part 2 is made, its answer late
    send(load_config(site.config_path), select=["tides"], now=MASTO_NOW)
    assert ledger_rows(site)[0][0] == "unknown"
    assert len(mastodon.created) == 2
    mastodon.released.set()

    second = send(load_config(site.config_path), select=["tides"], now=MASTO_NOW + timedelta(minutes=5))
    assert second.totals()["masto"]["sent"] == 1
    made = mastodon.created
    contents = [s["content"] for s in made]
    assert len(contents) == len(set(contents))  # part 1 was kept as posted, part 2 answered by its key
    for before, after in zip(made, made[1:], strict=False):
        assert after["in_reply_to_id"] == before["id"]
    posted = [s for s in mastodon.seen if s.path == "/api/v1/statuses"]
    assert posted[1].headers["Idempotency-Key"] == posted[2].headers["Idempotency-Key"]  # part 2 again
    assert ledger_rows(site) == [("sent", 2)]


# -- Bluesky --------------------------------------------------------------------------------------


def _sky_thread(sky, pds):
    sky.article(
        "tides.md",
        SKY_ARTICLE.format(image=f"{pds.url}/hero.png").replace(
            "description: 'Keepers’ notes 👨‍👩‍👧‍👦 on tides, café data and 🇫🇷 flags.'",
            f"description: 'Keepers’ notes 👨‍👩‍👧‍👦 on tides. {LONG}'",
        ),
    )
    sky.data["channels"]["sky"]["thread"] = True
    sky.write_config()
    post = sky_post(sky)
    assert len(post.thread) >= 2
    return post


def _message(post) -> Message:
    return Message(MessageKey("sky", "bsky", post.key, ""), post.content_hash, post.as_dict)


def test_bluesky_parts_are_replies_with_root_and_parent_and_the_card_on_the_first(sky, pds):
    post = _sky_thread(sky, pds)
    with target_of(sky).open() as connection:
        result = connection.send(_message(post))
    assert result.outcome == "sent", result.detail
    assert pds.violations == []  # every record passed the lexicon and the strongRef checks
    key = MessageKey("sky", "bsky", post.key, "")
    records = [pds.records[record_key(key, "", i)] for i in range(len(post.thread))]
    assert [r["text"] for r in records] == [p.text for p in post.thread]
    assert "embed" in records[0] and all("embed" not in r for r in records[1:])
    root = f"at://{DID}/app.bsky.feed.post/{record_key(key)}"
    assert "reply" not in records[0]
    for index, record in enumerate(records[1:], 1):
        assert record["reply"]["root"]["uri"] == root
        parent = f"at://{DID}/app.bsky.feed.post/{record_key(key, '', index - 1)}"
        assert record["reply"]["parent"]["uri"] == parent
        assert record["facets"] == list(post.thread[index].facets)
        assert record["langs"] == ["fr"]


def test_bluesky_a_lost_answer_midway_then_a_resend_posts_no_part_twice(sky, pds):
    post = _sky_thread(sky, pds)
    pds.script["com.atproto.repo.createRecord"] = deque([None, "store-then-502"])
    with target_of(sky, retries=0).open() as connection:
        first = connection.send(_message(post))
    # The 502 came after part 2 was stored: the record under its key is found, and the thread
    # goes on within the same attempt.
    assert first.outcome == "sent", first.detail
    with target_of(sky).open() as connection:
        again = connection.send(_message(post))
    assert again.outcome == "sent"
    assert len(pds.records) == len(post.thread) and pds.violations == []
    assert pds.nsids().count("com.atproto.repo.createRecord") == len(post.thread)


def test_the_result_names_the_part_that_failed_and_what_is_up(sky, pds):
    post = _sky_thread(sky, pds)
    pds.script["com.atproto.repo.createRecord"] = deque(
        [None, (400, {"Content-Type": "application/json"}, b'{"error":"InvalidRequest","message":"no"}')]
    )
    with target_of(sky).open() as connection:
        result = connection.send(_message(post))
    assert result.outcome == "failed"
    assert result.detail.startswith(f"part 2 of {len(post.thread)} (parts 1-1 are up: at://{DID}/")
    assert result.detail.endswith("HTTP 400 InvalidRequest: no")


real_pds = _bluesky.real_pds


def test_a_real_pds_takes_the_thread_as_replies_once(sky, pds, real_pds, monkeypatch):
    """The reference PDS (npm's @atproto/pds, on loopback) validates each part's record and its
    reply strongRefs; a second send finds every part under its key and creates nothing."""
    import requests

    service, handle, app_password, did = real_pds
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", app_password)
    post = _sky_thread(sky, pds)
    target = target_of(sky, service=service, handle=handle)
    with target.open() as connection:
        first = connection.send(_message(post))
        again = connection.send(_message(post))
    assert first.outcome == "sent" and again.outcome == "sent", (first.detail, again.detail)
    listed = requests.get(
        f"{service}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100},
        timeout=10,
    ).json()["records"]
    assert sorted(r["value"]["text"] for r in listed) == sorted(p.text for p in post.thread)
    by_uri = {r["uri"]: r for r in listed}
    key = MessageKey("sky", "bsky", post.key, "")
    uris = [f"at://{did}/app.bsky.feed.post/{record_key(key, '', i)}" for i in range(len(post.thread))]
    for index, uri in enumerate(uris[1:], 1):
        reply = by_uri[uri]["value"]["reply"]
        assert reply["root"] == {"uri": uris[0], "cid": by_uri[uris[0]]["cid"]}
        assert reply["parent"] == {"uri": uris[index - 1], "cid": by_uri[uris[index - 1]]["cid"]}
