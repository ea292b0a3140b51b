"""Errors a user can see. Each one says what happened and what to do next, and carries its exit code.

Exit codes are part of the CLI contract: 0 consistent, 1 divergent, 2 usage or configuration error,
3 inconclusive (which includes a run that could not be completed, e.g. because the relay failed),
4 internal error: a bug in relayaudit, never a verdict (the traceback is in the log file named on stderr).
A crash never exits 1, which means "divergent".
"""

from __future__ import annotations

EXIT_CONSISTENT = 0
EXIT_DIVERGENT = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INTERNAL = 4
VERDICT_EXIT = {"consistent": EXIT_CONSISTENT, "divergent": EXIT_DIVERGENT, "inconclusive": EXIT_INCONCLUSIVE}


class RelayAuditError(Exception):
    """Base class: `message` says what happened, `hint` what to do about it."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(RelayAuditError):
    """A flag, an environment variable or a file the user gave is wrong or missing."""


class MissingKeyError(ConfigError):
    """The environment variable that should hold the API key is unset or empty."""


class UnknownModelError(ConfigError):
    """A model name the registry does not know, where a registry fact is required."""


class UnknownTokenizerError(ConfigError):
    """A tokenizer name relayaudit cannot load offline; never guessed."""


class TokenizerDataError(RelayAuditError):
    """A tokenizer file is missing or does not match its pinned sha256."""


class SuiteError(ConfigError):
    """A suite file is malformed: the message names the file, the probe id and the field."""


class RunStoreError(RelayAuditError):
    """A run directory is missing, unreadable, or not a relayaudit run."""


class UnsupportedParameterError(ConfigError):
    """A request parameter the chosen wire dialect cannot express, asked for strictly."""


class WireError(RelayAuditError):
    """The relay sent a body or stream that does not parse as the dialect says it must.

    `excerpt` is a short, redacted, control-character-free piece of what was received.
    """

    exit_code = EXIT_INCONCLUSIVE

    def __init__(self, message: str, excerpt: str = "", hint: str = "") -> None:
        super().__init__(message, hint)
        self.excerpt = excerpt


class TruncatedStreamError(WireError):
    """A streamed response ended before the dialect's end-of-response event."""


class TransportError(RelayAuditError):
    """Connect errors, timeouts, resets, 5xx and 429 after retries: never evidence against a relay."""

    exit_code = EXIT_INCONCLUSIVE


class BudgetExhaustedError(RelayAuditError):
    """The next request could push the spend over --budget-usd, so collection stopped before it."""

    exit_code = EXIT_INCONCLUSIVE


class ReportWriteError(RelayAuditError):
    """A report could not be written at the end (disk full, permissions changed); the run itself is saved."""
