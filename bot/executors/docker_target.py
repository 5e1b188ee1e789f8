"""Which containers a service is (the catalog's `target: {type: docker}`): the model only, so reading a catalog
never imports docker-py. The executor that acts on it is `bot.executors.docker`, loaded when a catalog names one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ASIDE_SUFFIX = "-opsbot-old"  # the old container's name while its replacement proves itself


class DockerTarget(BaseModel):
    """Which containers a service is: one by name, or every container carrying all of `labels`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["docker"]
    container: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] | None = None
    docker_host: str | None = Field(default=None, min_length=1, description="None: DOCKER_HOST or the default")
    start_timeout: float = Field(default=60, gt=0)
    poll_interval: float = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _one_selector(self) -> DockerTarget:
        if (self.container is None) == (self.labels is None):
            raise ValueError("give exactly one of `container` (a name) or `labels`")
        if self.labels is not None and not self.labels:
            raise ValueError("`labels` needs at least one label")
        return self

    @property
    def selector(self) -> str:
        """`api`, or `com.docker.compose.service=api` (several labels joined by commas)."""
        return ", ".join(f"{key}={value}" for key, value in self.labels.items()) if self.labels else str(self.container)

    @property
    def subject(self) -> str:
        return f"the containers matching {self.selector}" if self.labels else f"container {self.container}"
