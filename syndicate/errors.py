"""The exceptions a user can cause. The CLI prints them as one line each and exits 2;
anything else escaping is a bug and keeps its traceback."""


class SyndicateError(Exception):
    """Base for every error caused by input, config or environment, not by a bug."""

    exit_code = 2


class ConfigError(SyndicateError):
    """config.yaml is missing, unreadable or invalid, or names a missing ${ENV_VAR}."""


class ContentError(SyndicateError):
    """The content folder or a path given on the command line cannot be used."""


class TemplateError(SyndicateError):
    """A Jinja2 or MJML template failed; the message names the template and line."""


class DeliveryError(SyndicateError):
    """A target cannot be used at all (bad recipients file, unreachable server at start)."""


class StateError(SyndicateError):
    """The state folder cannot be used: another daemon holds it, or it cannot be written."""
