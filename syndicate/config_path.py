"""Which config file: `--config`, else $SYNDICATE_CONFIG, else ./config.yaml.

Apart from `config.py` (its pydantic models take a while to build), so the CLI can name them in
`--help` without building them.
"""

from __future__ import annotations

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG"]

CONFIG_ENV = "SYNDICATE_CONFIG"
DEFAULT_CONFIG = "config.yaml"
