"""Named queries in messages: the list (`/ops query`), a query's rows as an aligned monospace table (its first rows;
the whole result goes as CSV), a failure in plain words, and the short form a runbook step's detail shows.

Not responsible for running a query (`bot.queries`) nor for uploading the CSV (the caller posts what `csv_text` makes).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.queries import NamedQuery, QueryFailed, QueryRows
from bot.views import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, Message, clip, code_block, escape, placeholders

SHOWN_ROWS = 20  # rows the table in the channel shows; more go as CSV
CELL_CHARS = 40  # one cell's width at most in the table (the CSV keeps it whole)
DETAIL_ROWS, DETAIL_CHARS = 5, 420  # what a runbook step's detail shows (the engine keeps 500 characters)


def cell(value: Any) -> str:
    """One value as people read it: NULL said, times in ISO form, bytes as hex, numbers as the server gave them."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return str(value)


def _short(value: Any) -> str:
    text = " ⏎ ".join(cell(value).splitlines()) or ""
    return clip(text, CELL_CHARS)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Header, rule and rows, each column padded to its widest cell (clipped to CELL_CHARS)."""
    cells = [[_short(name) for name in columns], *[[_short(value) for value in row] for row in rows]]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return [line(cells[0]), "  ".join("-" * width for width in widths), *(line(values) for values in cells[1:])]


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if value is None else cell(value) for value in row] for row in rows])
    return out.getvalue()


def needs_csv(result: QueryRows, shown: int = SHOWN_ROWS) -> bool:
    return len(result.rows) > shown


def _code(lines: list[str]) -> str:
    return code_block("\n".join(lines))


def _count(result: QueryRows) -> str:
    rows = len(result.rows)
    counted = f"{rows} row{'s' if rows != 1 else ''}"
    return f"the first {counted} (more were not read)" if result.more else counted


def query_message(name: str, query: NamedQuery, result: QueryRows, *, uploaded: bool) -> Message:
    """The rows as a table: the first SHOWN_ROWS, split over sections to stay within Slack's limits."""
    head = f"Query `{name}` on {query.service} ({query.engine}): {_count(result)} in {result.seconds:.1f} s"
    blocks: list[Block] = [HeaderBlock(text=clip(f"Query {name}", MAX_HEADER_TEXT)),
                           SectionBlock(text=clip(escape(head), MAX_SECTION_TEXT))]
    if not result.columns:
        blocks.append(SectionBlock(text="_The statement returned no columns._"))
    else:
        lines = table(result.columns, result.rows[:SHOWN_ROWS])
        chunk: list[str] = []
        for line in lines:
            # Each section's code block stays under Slack's 3000 characters (escaping can lengthen a line).
            if chunk and len(_code([*chunk, line])) > MAX_SECTION_TEXT:
                blocks.append(SectionBlock(text=_code(chunk)))
                chunk = []
            chunk.append(clip(line, MAX_SECTION_TEXT // 6))
            if len(blocks) >= MAX_BLOCKS - 2:
                break
        if chunk:
            blocks.append(SectionBlock(text=_code(chunk)))
    notes = []
    if len(result.rows) > SHOWN_ROWS:
        notes.append(f"Showing {SHOWN_ROWS} of {len(result.rows)} rows; "
                     + ("all of them are in the CSV file above." if uploaded else "the CSV could not be uploaded."))
    if result.more:
        notes.append(f"The statement had more rows than its `max_rows` ({query.max_rows}); those were not read.")
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" ".join(notes))]))
    return Message.of(head, blocks[:MAX_BLOCKS])


def failed_message(name: str, query: NamedQuery, failure: QueryFailed) -> Message:
    text = f":warning: Query `{name}` on {query.service} gave no rows: {escape(failure.reason)}"
    return Message.of(text, [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])


def queries_message(queries: Mapping[str, NamedQuery]) -> Message:
    if not queries:
        text = "The catalog has no `queries:` yet."
        return Message.of(text, [SectionBlock(text=text)])
    lines = [f"*{name}* on `{query.service}` ({query.engine}) — {escape(query.description) or '_no description_'}"
             for name, query in sorted(queries.items())]
    blocks: list[Block] = [HeaderBlock(text="Queries")]
    text = ""
    for line in lines:
        if text and len(text) + len(line) + 1 > MAX_SECTION_TEXT:
            blocks.append(SectionBlock(text=text))
            text = ""
        text = f"{text}\n{line}" if text else clip(line, MAX_SECTION_TEXT)
    blocks.append(SectionBlock(text=text))
    blocks = blocks[:MAX_BLOCKS - 1]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=placeholders("`/ops query <name>` runs one and posts its rows here; queries only read, so no approval."))]))
    return Message.of("Queries: " + ", ".join(sorted(queries)), blocks)


def detail(result: QueryRows, shown: int = DETAIL_ROWS, note: str = "") -> str:
    """A runbook step's detail: the count on its first line, then the first rows as an aligned table (header and
    rule included) on the lines after it — the run message shows those as a code block. Bounded to DETAIL_CHARS,
    whole lines only: a row that does not fit is left out and counted."""
    if not result.columns:
        return "no columns returned"
    lines = table(result.columns, result.rows[:shown])
    head = f"{_count(result)}{'; ' + note if note else ''}"
    kept = lines[:2]
    for line in lines[2:]:
        if len(head) + sum(len(k) + 1 for k in kept) + len(line) + 1 > DETAIL_CHARS:
            break
        kept.append(line)
    left = len(result.rows) - (len(kept) - 2)
    if left > 0:
        kept.append(f"… {left} more")
    return clip("\n".join([head, *kept]), DETAIL_CHARS + 40)
