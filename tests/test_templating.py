"""syndicate.templating: what every template can reach, and how its mistakes read."""

from __future__ import annotations

import pytest

from syndicate.compose.email import compose_single
from syndicate.compose.social import compose_post
from syndicate.content import load_articles
from syndicate.errors import TemplateError
from syndicate.gallery import render_gallery
from syndicate.templating import SITE_FIELDS, site_view

SECRET = "s3cret-value-for-tests"


def _social_template(site, monkeypatch, text: str):
    """The site with an unsubscribe secret and a LinkedIn channel rendering `text`."""
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", SECRET)
    site.data["site"]["unsubscribe_secret"] = "${UNSUBSCRIBE_SECRET}"
    folder = site.root / "templates" / "social"
    folder.mkdir(parents=True)
    (folder / "peek.txt.j2").write_text(text, encoding="utf-8")
    site.data["templates"] = "templates"
    site.data["channels"]["linkedin"]["template"] = "social/peek.txt.j2"
    site.article("a.md", "---\ntitle: A\npublish_date: 2024-01-01\n---\nBody.\n")
    config = site.config()
    return config, load_articles(config).articles[0]


def test_a_social_template_cannot_reach_the_unsubscribe_secret(site, monkeypatch) -> None:
    config, article = _social_template(site, monkeypatch, "{{ title }} {{ site.unsubscribe_secret }}\n")
    assert config.site.unsubscribe_secret is not None
    with pytest.raises(
        TemplateError, match=r"peek.txt.j2:1: 'dict object' has no attribute 'unsubscribe_secret'"
    ):
        compose_post(article, "linkedin", config)


def test_a_social_template_gets_the_whitelisted_site(site, monkeypatch) -> None:
    text = "{{ title }}\n{% for key, value in site|dictsort %}{{ key }}={{ value }};{% endfor %}\n"
    config, article = _social_template(site, monkeypatch, text)
    post, _ = compose_post(article, "linkedin", config)
    assert post is not None and SECRET not in post.text
    assert sorted(f.split("=")[0] for f in post.text.splitlines()[1].split(";") if f) == sorted(SITE_FIELDS)


def test_templates_cannot_walk_from_an_object_to_the_process(site, monkeypatch) -> None:
    """The sandbox: without it `article.__class__.__init__.__globals__` leads to sys.modules."""
    config, article = _social_template(site, monkeypatch, "{{ article.__class__.__init__.__globals__ }}\n")
    with pytest.raises(TemplateError, match=r"peek.txt.j2:1: .*unsafe"):
        compose_post(article, "linkedin", config)


def test_the_site_view_is_the_same_for_every_template_and_holds_no_secret(site, monkeypatch) -> None:
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", SECRET)
    site.data["site"]["unsubscribe_secret"] = "${UNSUBSCRIBE_SECRET}"
    view = site_view(site.config().site)
    assert set(view) == set(SITE_FIELDS)
    assert "unsubscribe_secret" not in view and SECRET not in repr(view)


def test_a_python_error_in_a_subject_is_a_one_line_template_error(email_site) -> None:
    """It used to escape as a bare ZeroDivisionError with a traceback."""
    email_site.data["channels"]["letters"]["subject"] = "{{ 1 / 0 }}"
    config = email_site.config()
    article = load_articles(config).articles[0]
    with pytest.raises(TemplateError) as caught:
        compose_single(article, "letters", config)
    assert str(caught.value) == (
        "channels.letters.subject: ZeroDivisionError: division by zero in '{{ 1 / 0 }}'"
    )


def test_a_runtime_mistake_in_the_gallery_names_file_and_line(site) -> None:
    folder = site.root / "mytemplates" / "preview"
    folder.mkdir(parents=True)
    (folder / "gallery.html.j2").write_text("<p>\n{{ emails.nope }}\n", encoding="utf-8")
    site.data["templates"] = "mytemplates"
    with pytest.raises(TemplateError, match=r"mytemplates/preview/gallery\.html\.j2:2: 'list object' has no"):
        render_gallery(site.config(), {"emails": []})


def test_html_templates_escape_and_text_templates_do_not(site) -> None:
    folder = site.root / "mytemplates" / "preview"
    folder.mkdir(parents=True)
    (folder / "gallery.html.j2").write_text("{{ title }}", encoding="utf-8")
    site.data["templates"] = "mytemplates"
    assert render_gallery(site.config(), {"title": "Fish & <Chips>"}) == "Fish &amp; &lt;Chips&gt;"
