"""The `http` kind: one request to a URL written in the catalog (or kept secret in the environment); no undo.

Not responsible for the request's failure effects (`bot.runs.steps._http`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bot.env_names import ENV_NAME
from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps._http import request
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Template,
    Traits,
    UndoBook,
    _Step,
    refused,
    register,
)


class HttpStep(_Step):
    kind: Literal["http"]
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    url_env: str | None = Field(default=None, pattern=ENV_NAME, description="for webhook URLs that are secrets")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    json_body: dict[str, Template | int | float | bool | None] | None = Field(default=None, alias="json")
    expect_status: list[int] = Field(default_factory=lambda: list(range(200, 300)))

    @field_validator("url", mode="before")
    @classmethod
    def _no_parameters(cls, value: object) -> object:
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            raise ValueError("parameters never reach a URL: write it out in full (values may go in `json`)")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> HttpStep:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of `url` or `url_env`")
        return self


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"{args['method']} {args['url'] or '$' + str(args['url_env'])}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    args = step.args
    url = args.get("url")
    if url is None:
        url = deps.environ.get(str(args["url_env"]))
        if not url:
            raise refused(f"environment variable {args['url_env']} is not set")
    return await request(deps, str(args["method"]), url, args.get("json_body"), {}, list(args["expect_status"]), 30,
                         secret=args.get("url") is None)


# Whether a request acted is the endpoint's to say: cut short, it may have.
KIND = register(StepKind("http", HttpStep,
                         Traits(changes=False, undo=None, cut_short=Effect.UNKNOWN, on_failure="continue"),
                         _describe, _perform))
