"""The domain's exception hierarchy.

Core code raises these; the handler layer turns each into one clear message in one place.
A message never carries a secret: it names environment variables, never their values.
"""

from __future__ import annotations

from collections.abc import Sequence


class OpsbotError(Exception):
    """Something the user or operator can act on; its text is shown as is."""


class ConfigError(OpsbotError):
    """A setting or the catalog is missing or invalid."""


class UnknownSubcommand(OpsbotError):
    def __init__(self, command: str, given: str, valid: Sequence[str], suggestion: str | None) -> None:
        self.command, self.given, self.valid, self.suggestion = command, given, list(valid), suggestion
        hint = f" Did you mean `{suggestion}`?" if suggestion else ""
        super().__init__(
            f"`{command} {given}` is not a command.{hint} Valid: {', '.join(f'`{v}`' for v in valid)}."
        )


class UnknownService(OpsbotError):
    def __init__(self, given: str, valid: Sequence[str], suggestion: str | None) -> None:
        self.given, self.valid, self.suggestion = given, list(valid), suggestion
        hint = f" Did you mean `{suggestion}`?" if suggestion else ""
        shown = list(valid)[:25]
        more = f" and {len(valid) - len(shown)} more" if len(valid) > len(shown) else ""
        listing = ", ".join(f"`{v}`" for v in shown) + more if shown else "none (the catalog has no services)"
        super().__init__(f"No service named `{given}`.{hint} Services: {listing}.")


class UnknownRunbook(OpsbotError):
    def __init__(self, given: str, valid: Sequence[str], suggestion: str | None) -> None:
        self.given, self.valid, self.suggestion = given, list(valid), suggestion
        hint = f" Did you mean `{suggestion}`?" if suggestion else ""
        listing = ", ".join(f"`{v}`" for v in list(valid)[:25]) if valid else "none (the catalog has no `runbooks:`)"
        super().__init__(f"No runbook named `{given}`.{hint} Runbooks: {listing} (`/ops runbooks` lists them).")


class HealthRunNotFound(OpsbotError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"Health run {run_id} is no longer stored; run `/ops health` again.")


class InfrastructureError(Exception):
    """Something opsbot depends on failed (its store, its lock store). Not the user's doing: audited as an
    error, shown with a reference. The text is safe to show: it never carries a secret."""


class StoreUnavailable(InfrastructureError):
    """The store did not answer; the bot refuses work it cannot record. The store logs the outage once (when it
    starts and when it ends), so whoever catches this tells the person and logs nothing more."""

    user_text = "opsbot cannot reach its database right now; nothing was done — try again in a minute."


def store_down(exc: BaseException) -> bool:
    """The store did not answer, directly or behind another failure (a lease kept in the database)."""
    return isinstance(exc, StoreUnavailable) or isinstance(exc.__cause__, StoreUnavailable)


class StaleButton(OpsbotError):
    def __init__(self, what: str = "ask again") -> None:
        super().__init__(f"This button is out of date; {what}.")


class NotYetAvailable(OpsbotError):
    """A command Slack knows about (it is in the manifest) whose feature has not shipped yet."""


class MissingSecret(OpsbotError):
    def __init__(self, env_name: str) -> None:
        self.env_name = env_name
        super().__init__(f"environment variable {env_name} is not set")
