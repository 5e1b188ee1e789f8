"""The name of an environment variable that holds a secret (a DSN, a token): its pattern, and a str type checking it.

Catalog models name such variables and never hold their values; reading a variable is each check's or executor's.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _env_name(value: str) -> str:
    if not re.match(ENV_NAME, value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


# The name of an environment variable that holds a secret (a DSN, a URL with a password): never the value.
EnvName = Annotated[str, AfterValidator(_env_name)]
