"""The one error of configuration, so that start-up can report any bad value the same way."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration; the message names the key first (``rtp_port: ...``)."""
