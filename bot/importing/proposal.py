"""`opsbot import RUNBOOK.md --merge opsbot.yml`: the draft proposed into the catalog file as a unified diff (stdout
or `-o`), what happened to each element on stderr. Not responsible for the merge itself (`merge`) nor the draft.

The catalog file is only read: the person applies the diff (`patch opsbot.yml < import.diff`) after reviewing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.importing.diffs import catalog_diff, describe
from bot.importing.merge import merge


def propose(draft: str, source: str, catalog: Path, output: Path | None) -> int:
    """0 when the diff was written; 1 when the catalog cannot be read or the merged one no longer loads.
    Raises Unmergeable (a ConfigError) when either text is not a YAML mapping."""
    try:
        before = catalog.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"opsbot: cannot read {catalog}: {exc.strerror}", file=sys.stderr)
        return 1
    merged = merge(before, draft, source, str(catalog))
    diff = catalog_diff(merged, str(catalog))
    if output is None:
        print(diff, end="")
    else:
        output.write_text(diff, encoding="utf-8")
    print(describe(merged, str(catalog)), end="", file=sys.stderr)
    if not diff:
        return 0
    try:
        parse_catalog(before, str(catalog))
    except CatalogInvalid:
        print(f"note: {catalog} does not load as it is, so the merged catalog was not checked "
              f"(`opsbot check-config {catalog}` says why)", file=sys.stderr)
        return 0
    try:
        parse_catalog(merged.text, f"{catalog} (merged)")
    except CatalogInvalid as exc:
        print("the merged catalog does not load: review the draft's part before applying the diff", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 1
    return 0
