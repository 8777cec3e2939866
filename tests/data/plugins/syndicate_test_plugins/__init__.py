"""Test plugins for syndicate: one module per plugin, each registered in pyproject.toml."""
