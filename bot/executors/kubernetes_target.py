"""Which deployment a service is (the catalog's `target: {type: kubernetes}`): the model only, so reading a catalog
never imports the Kubernetes client. The executor that acts on it is `bot.executors.kubernetes`, loaded when a
catalog names one.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.env_names import ENV_NAME

DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class KubernetesTarget(BaseModel):
    """One deployment: which, where its API server is, how to authenticate, and how long a rollout may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["kubernetes"]
    namespace: str = Field(default="default", max_length=63, pattern=DNS_1123_LABEL)
    deployment: str = Field(max_length=253, pattern=DNS_1123_SUBDOMAIN)
    container: str | None = Field(default=None, max_length=63, pattern=DNS_1123_LABEL,
                                  description="whose image revisions show; None: the first container")
    api_url: str | None = Field(default=None, description="None: the in-cluster config if any, else the kubeconfig")
    token_env: str | None = Field(default=None, pattern=ENV_NAME,
                                  description="environment variable holding a bearer token")
    verify_tls: bool = True
    rollout_timeout: float = Field(default=300, gt=0)
    poll_interval: float = Field(default=2, gt=0)

    @field_validator("api_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://10.0.0.1:6443")
        if parts.username or parts.password:
            raise ValueError("must not contain credentials; name the token's environment variable in token_env")
        return value.rstrip("/")

    @property
    def subject(self) -> str:
        return f"deployment {self.namespace}/{self.deployment}"
