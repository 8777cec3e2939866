"""Which files are articles: .md, .markdown and .mdx at any depth, include and exclude globs, and
the files no generator publishes as a post (README, section pages), skipped and counted."""

from __future__ import annotations

from syndicate.content import load_articles
from syndicate.content.files import Selection, walk

POST = "---\ntitle: {title}\ndate: 2024-01-01\ncta: Go\ndescription: D\n---\nText of {title}.\n"


def write(site, name: str) -> None:
    site.article(name, POST.format(title=name.replace("/", " ")))


def test_every_kind_at_any_depth(site):
    for name in ("a.md", "b.markdown", "deep/er/c.mdx", "deep/d.MD"):
        write(site, name)
    (site.content / "notes.txt").write_text("not markdown", encoding="utf-8")
    loaded = load_articles(site.config())
    assert sorted(a.slug for a in loaded.articles) == ["a", "b", "c", "d"]
    assert loaded.problems == []


def test_readme_and_section_pages_are_skipped_and_counted(site):
    write(site, "post.md")
    site.article("README.md", "# About this folder\n")  # no frontmatter: it would be an error
    site.article("docs/README.markdown", "notes\n")
    site.article("_index.md", "---\ntitle: Home\n---\n")
    loaded = load_articles(site.config())
    assert [a.slug for a in loaded.articles] == ["post"]
    assert loaded.errors == []
    assert sorted((p.path.relative_to(site.content).as_posix(), p.message) for p in loaded.skipped) == [
        ("README.md", "is excluded"),
        ("_index.md", "is a section page"),
        ("docs/README.markdown", "is excluded"),
    ]


def test_include_and_exclude_globs(site):
    for name in ("posts/2024/a.md", "posts/2024/b.md", "posts/drafts/c.md", "pages/about.md", "top.md"):
        write(site, name)
    site.data["content"]["include"] = ["posts/**"]
    site.data["content"]["exclude"] = ["posts/drafts/", "**/b.md"]
    loaded = load_articles(site.config())
    assert [a.slug for a in loaded.articles] == ["a"]
    assert {p.path.name: p.message for p in loaded.skipped} == {
        "b.md": "is excluded",
        "c.md": "is excluded",
        "about.md": "is not included",
        "top.md": "is not included",
    }


def test_glob_rules():
    rules = Selection(include=("*.md",), exclude=("draft-*", "a/*/z.md"))
    assert rules.why_skipped("x/y.md") is None  # a bare name matches at any depth
    assert rules.why_skipped("x/draft-1.md") == "excluded"
    assert rules.why_skipped("a/b/z.md") == "excluded"
    assert rules.why_skipped("a/b/c/z.md") is None
    assert rules.why_skipped("x/y.mdx") == "not included"


def test_a_folder_of_only_skipped_files_is_not_an_error(site):
    site.article("README.md", "hello\n")
    loaded = load_articles(site.config())
    assert loaded.articles == [] and loaded.errors == [] and len(loaded.skipped) == 1
    assert walk(site.content, Selection()).files == [site.content / "README.md"]
