"""The `demo` target: a workload the process that runs the bot brings with it (the playground's demo apps).

The core holds only its catalog model and the port the composition root fills; the apps themselves live with
whoever runs them (`playground/demo_apps.py` for `opsbot dev`). `opsbot serve` provides none, and says so.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.executors.base import Deploys, Logs, Scales, Workload


class DemoTarget(BaseModel):
    """One demo app: which, and the image it starts with on a fresh playground."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["demo"]
    app: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="the demo app's name")
    image: str = Field(default="demo:1.0.0", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$",
                       description="the image it runs at first; later deploys and rollbacks are its revisions")

    @property
    def subject(self) -> str:
        return f"demo app {self.app}"


class DemoWorkload(Workload, Deploys, Scales, Logs, Protocol):
    """The capabilities a demo app offers (`bot.runs.targets.CAPABILITIES` lists them per target type)."""


class DemoWorkloads(Protocol):
    """The port: the composition root hands one in when its process runs demo apps (`opsbot dev`)."""

    def workload(self, service: str, target: DemoTarget) -> DemoWorkload: ...
