"""The CLI reference (`docs/cli.md`), made from the commands' own `--help`, so it cannot drift:
a test compares the file with what this module makes.

    python -m syndicate.clidoc > docs/cli.md
"""

from __future__ import annotations

import click

from .cli import cli

__all__ = ["reference"]

WIDTH = 100  # fixed, so the text does not depend on the terminal that made it


def reference() -> str:
    """Markdown: `syndicate --help`, then each command's `--help` (and a group's subcommands'),
    in the order `--help` lists them."""
    settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root = click.Context(cli, info_name="syndicate", **settings)
    parts = [
        "# syndicate: CLI reference",
        "",
        "Made by `python -m syndicate.clidoc > docs/cli.md` from each command's `--help`;",
        "`tests/test_cli.py` checks it is current.",
        "",
        "## syndicate",
        "",
        "```",
        cli.get_help(root),
        "```",
    ]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert command is not None
        context = click.Context(command, info_name=name, parent=root, **settings)
        parts += ["", f"## syndicate {name}", "", "```", command.get_help(context), "```"]
        if isinstance(command, click.Group):  # a group's subcommands each get their own section
            for sub_name in command.list_commands(context):
                sub = command.get_command(context, sub_name)
                assert sub is not None
                sub_context = click.Context(sub, info_name=sub_name, parent=context, **settings)
                parts += ["", f"### syndicate {name} {sub_name}", "", "```", sub.get_help(sub_context), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    click.echo(reference(), nl=False)
