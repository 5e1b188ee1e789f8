"""How a failed connection reads in a check's reason: "Connection refused", not asyncio's wording.

It only words errors; connecting, and deciding what a failure means, is each check's own business.
"""

from __future__ import annotations

import os


def socket_error(exc: OSError) -> str:
    """"Connection refused" rather than asyncio's "Connect call failed ('127.0.0.1', 3306)"."""
    if isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__
