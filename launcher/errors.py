"""User-facing errors.

Every mistake a user can make in a config or on the command line becomes a
`ConfigError` that names the key, the file it came from and what to do
instead. The CLI prints it as one line and exits; nothing above the CLI
prints tracebacks for these.
"""

from __future__ import annotations


class LauncherError(Exception):
    """A problem the user can fix; printed without a traceback."""


class ConfigError(LauncherError):
    """A bad value in the config, reported with its key, its file and a hint."""

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None,
                 hint: str | None = None) -> None:
        self.key = key
        self.file = file
        self.hint = hint
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.key:
            where.append(f"key '{self.key}'")
        text = ": ".join([*where, self.reason]) if where else self.reason
        if self.hint:
            text += f" HINT: {self.hint}"
        return " ".join(text.split("\n"))

    def located(self, file: str) -> ConfigError:
        """Return the same error attributed to `file` when no file was known yet."""
        if self.file:
            return self
        return ConfigError(self.reason, key=self.key, file=file, hint=self.hint)


def clipped(text: str, width: int = 100) -> str:
    """A value as shown in an error: a pasted 4 KB path would drown the message."""
    return text if len(text) <= width else f"{text[:width - 1]}…"
