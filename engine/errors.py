"""Errors the user must fix (a setting, a file, a second instance): one line, exit code 2."""

from __future__ import annotations


class ConfigurationError(Exception):
    """Something only the user can fix. Its message is one line that names the setting or file
    and what is wrong; the process prints it, exits 2 and shows no traceback."""
