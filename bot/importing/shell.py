"""Bash code as statements of commands, read with tree-sitter-bash: each command's argv from the syntax tree, and
the few compound forms a runbook's logic is written in (`X=$(cmd)`, `if [ "$X" -gt 80 ]`, a script written with
`cat > f.sh <<EOF`, a retry loop `for i in {1..12}`).

Not responsible for what a command means (`bot.importing.recognise`). Nothing here runs a process: the text is
parsed, and an element that is not a literal (a `$VAR`, a `$(…)`) is kept as written and marked so.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from bot.importing.words import Word, joined, word_of

_BASH = Language(tree_sitter_bash.language())
# Statements whose parts are commands run one after the other: their commands are taken one by one.
_SEQUENCES = frozenset({"list"})
_SIMPLE = frozenset({"command", "pipeline", "redirected_statement"})
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
# `[ "$X" -gt 80 ]`, `[[ $? -ne 0 ]]`, `[ "$H" == "\"healthy\"" ]`: one variable against one value.
_COMPARISON = re.compile(r'^\[\[?\s*"?\$\{?(?P<var>\w+|\?)\}?"?\s+(?P<op>-gt|-ge|-lt|-le|-eq|-ne|==|=|!=|>|<)\s+'
                         r'(?P<value>"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\s\]]+)\s*\]\]?$')
_FLIPPED = re.compile(r'^\[\[?\s*(?P<value>-?[\d.]+)\s+(?P<op>-gt|-ge|-lt|-le|-eq|-ne)\s+"?\$\{?(?P<var>\w+)\}?"?\s*\]\]?$')
_UNARY = re.compile(r'^\[\[?\s*(?P<not>!\s+)?(?P<op>-z|-n|-f|-d|-e|-s)\s+"?\$\{?(?P<var>\w+)\}?"?\s*\]\]?$')
# `(( $(echo "$X > 1.0" | bc -l) ))`, `(( X > 80 ))`: arithmetic a runbook compares decimals with.
_ARITHMETIC = re.compile(r'\$?\{?(?P<var>[A-Za-z_]\w*)\}?\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?[\d.]+)')
_OPERATORS = {"-gt": ">", "-ge": ">=", "-lt": "<", "-le": "<=", "-eq": "==", "-ne": "!=", "=": "==", "==": "==",
              "!=": "!=", ">": ">", "<": "<"}
_PROGRAM = re.compile(r"^[A-Za-z0-9_./~$][\w./~$@+-]*$")  # a command's first word, not `URL:` nor `-`
_MIRRORED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Command:
    argv: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...]  # `NAME=value` written before the command

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.argv)

    @property
    def literal(self) -> bool:
        return all(word.literal for word in self.argv)

    @property
    def program(self) -> str:
        return self.argv[0].text.rsplit("/", 1)[-1] if self.argv else ""


@dataclass(frozen=True)
class Test:
    """`if [ "$X" -gt 80 ]; then …; else …; fi`: one variable (`?` for the last command's status) against a value."""

    variable: str
    operator: str  # > >= < <= == != for a comparison; -z -n -f -d -e -s (and "!-f" …) for a unary test
    value: str  # the right-hand side, unquoted ("" for a unary test)
    then_body: tuple[Statement, ...]
    else_body: tuple[Statement, ...]
    then_text: str
    else_text: str

    @property
    def number(self) -> float | None:
        try:
            return float(self.value)
        except ValueError:
            return None


@dataclass(frozen=True)
class Statement:
    text: str  # as written
    first_line: int  # 1-based, in the file
    last_line: int
    commands: tuple[Command, ...]  # a pipeline's commands in order; one for a plain command
    comment: str  # the comment lines right above it, joined ("" when none)
    redirect_in: bool = False  # input from a file or a here-document
    redirect_out: bool = False
    heredoc: bool = False
    complex: bool = False  # a loop, condition, function or syntax error: only a person can follow it
    assignments_only: tuple[tuple[str, Word], ...] = ()  # `NAME=value` / `export NAME=value` on its own
    output: str = ""  # the file its output is written to (`> x`), as written
    input: str = ""  # the file its input is read from (`< x`), as written
    captures: str = ""  # `X=$(cmd)`: the variable that holds the output of `commands`
    test: Test | None = None  # an `if` on one comparison (commands empty)
    condition: Statement | None = None  # `if cmd; then …`: the command whose status decides (test holds branches)
    writes: str = ""  # `cat > f.sh <<EOF`: the file the here-document becomes
    body: str = ""  # …and its text
    body_line: int = 0  # …and the file's line of its first line
    repeat: int = 0  # `for i in {1..12}; do …; done`: how many times `loop` runs
    loop: tuple[Statement, ...] = ()


def statements(code: str, first_line: int) -> list[Statement]:
    """The statements of a bash block whose first line is line `first_line` of the file."""
    source = code.encode()
    tree = Parser(_BASH).parse(source)
    return _sequence(tree.root_node.named_children, source, first_line)


def every_command(code: str) -> list[Command]:
    """Every command written anywhere in `code` — in a condition, a loop, a function, a `$(…)` — and the
    assignments written on their own, each as a command with no argv: for reading what the text holds (its secrets),
    not what it does."""
    found: list[Command] = []
    stack = [Parser(_BASH).parse(code.encode()).root_node]
    while stack:
        node = stack.pop()
        if node.type == "command":
            found.append(_command(node))
        elif node.type in ("variable_assignment", "declaration_command") and (
                node.parent is None or node.parent.type != "command"):
            found.append(Command((), tuple(_assignments(node))))
        stack.extend(reversed(node.named_children))
    return found


def looks_like_shell(code: str) -> bool:
    """A block with no language named: shell only when bash parses it and each statement starts with a program
    (not `URL: http://…` or a `- list item`)."""
    tree = Parser(_BASH).parse(code.encode())
    if tree.root_node.has_error:
        return False
    found = statements(code, 1)
    programs = [s.commands[0].words[0] for s in found if s.commands and s.commands[0].words]
    return bool(programs) and all(_PROGRAM.match(program) for program in programs)


def _sequence(nodes: list[Node], source: bytes, first_line: int) -> list[Statement]:
    found: list[Statement] = []
    comment: list[str] = []
    last_comment_row = -2
    for node in nodes:
        if node.type == "comment":
            if _text(node).startswith("#!"):
                continue  # the interpreter line, not a comment on what follows
            if node.start_point[0] != last_comment_row + 1:
                comment = []
            comment.append(_text(node).lstrip("#").strip())
            last_comment_row = node.start_point[0]
            continue
        above = " ".join(comment) if last_comment_row == node.start_point[0] - 1 else ""
        comment, last_comment_row = [], -2
        found.extend(_statement(node, source, first_line, above))
    return found


def _statement(node: Node, source: bytes, first_line: int, comment: str) -> list[Statement]:
    if node.type in _SEQUENCES and not node.has_error:
        parts = [child for child in node.named_children if child.type != "comment"]
        return [item for index, child in enumerate(parts)
                for item in _statement(child, source, first_line, comment if index == 0 else "")]
    text = source[node.start_byte:node.end_byte].decode(errors="replace")
    lines = first_line + node.start_point[0], first_line + node.end_point[0]
    if node.has_error:
        return [Statement(text, *lines, (), comment, complex=True)]
    if node.type == "variable_assignment":
        captured = _captured(node)
        if captured is not None:
            inner = _statement(captured, source, first_line, comment)
            if len(inner) == 1 and inner[0].commands:
                name = node.child_by_field_name("name")
                return [dataclasses.replace(inner[0], text=text, first_line=lines[0], last_line=lines[1],
                                 captures=_text(name) if name is not None else "")]
    if node.type in ("variable_assignment", "declaration_command"):
        return [Statement(text, *lines, (), comment, assignments_only=tuple(_assignments(node)))]
    if node.type == "if_statement":
        return [_if(node, text, lines, source, first_line, comment)]
    if node.type == "for_statement":
        return [_for(node, text, lines, source, first_line, comment)]
    if node.type not in _SIMPLE:
        return [Statement(text, *lines, (), comment, complex=True)]
    return [_simple(node, text, lines, source, first_line, comment)]


def _simple(node: Node, text: str, lines: tuple[int, int], source: bytes, first_line: int, comment: str) -> Statement:
    body, redirects = node, []
    if node.type == "redirected_statement":
        body = node.child_by_field_name("body") or node
        redirects = [child for child in node.named_children if child is not body]
    commands = [body] if body.type == "command" else [_inner(c) for c in body.named_children]
    if body.type not in ("command", "pipeline") or any(command.type != "command" for command in commands):
        return Statement(text, *lines, (), comment, complex=True)
    # `apt list 2>/dev/null | grep …`: a part's own redirect (stderr away) is the part's
    redirects += [child for part in body.named_children if part.type == "redirected_statement"
                  for child in part.named_children if child.type in _REDIRECTS and part is not body]
    redirects += [child for command in commands for child in command.named_children if child.type in _REDIRECTS]
    outputs = [_target(redirect) for redirect in redirects
               if redirect.type == "file_redirect" and not _reads(redirect) and not _stderr(redirect)]
    heredocs = [redirect for redirect in redirects if redirect.type == "heredoc_redirect"]
    parsed = tuple(_command(command) for command in commands)
    writes, body_text, body_line = "", "", 0
    written = [name for name in outputs if name not in ("/dev/null", "&1", "&2")]
    tee = [w.text for c in parsed if c.program == "tee" for w in c.argv[1:] if w.literal and not w.text.startswith("-")]
    if heredocs and (written or tee):
        content = next((child for child in heredocs[0].named_children if child.type == "heredoc_body"), None)
        if content is not None:
            writes, body_text = (written or tee)[0], _text(content)
            body_line = first_line + content.start_point[0]
    return Statement(
        text, *lines, parsed, comment,
        redirect_in=any(_reads(redirect) for redirect in redirects),
        redirect_out=bool(outputs),
        heredoc=any(redirect.type in ("heredoc_redirect", "herestring_redirect") for redirect in redirects),
        output=next((name for name in outputs if not name.startswith("&")), ""),
        input=next((_target(redirect) for redirect in redirects
                    if redirect.type == "file_redirect" and _reads(redirect)), ""),
        writes=writes, body=body_text, body_line=body_line)


def _inner(part: Node) -> Node:
    """A pipeline's part: its command, also when the part redirects its own output (`cmd 2>/dev/null | …`)."""
    if part.type == "redirected_statement":
        body = part.child_by_field_name("body")
        return body if body is not None else part
    return part


def _if(node: Node, text: str, lines: tuple[int, int], source: bytes, first_line: int, comment: str) -> Statement:
    """An `if` on one comparison, or on one command's status; anything else (elif, && in the condition) is complex."""
    condition: list[Node] = []
    then_nodes: list[Node] = []
    else_nodes: list[Node] = []
    part = "condition"
    for child in node.children:
        if child.type == "then":
            part = "then"
        elif child.type == "elif_clause":
            return Statement(text, *lines, (), comment, complex=True)
        elif child.type == "else_clause":
            else_nodes = [c for c in child.named_children if c.type != "comment"]
        elif child.is_named and child.type != "comment":
            (condition if part == "condition" else then_nodes).append(child)
    then_body = tuple(_sequence(then_nodes, source, first_line))
    else_body = tuple(_sequence(else_nodes, source, first_line))
    then_text = " ".join(_text(n) for n in then_nodes)
    else_text = " ".join(_text(n) for n in else_nodes)
    if len(condition) != 1:
        return Statement(text, *lines, (), comment, complex=True)
    found = _comparison(_text(condition[0]).strip())
    if found is not None:
        variable, operator, value = found
        return Statement(text, *lines, (), comment,
                         test=Test(variable, operator, value, then_body, else_body, then_text, else_text))
    if condition[0].type in _SIMPLE:
        decides = _statement(condition[0], source, first_line, "")
        if len(decides) == 1 and decides[0].commands:
            return Statement(text, *lines, (), comment, condition=decides[0],
                             test=Test("?", "==", "0", then_body, else_body, then_text, else_text))
    return Statement(text, *lines, (), comment, complex=True)


def _comparison(condition: str) -> tuple[str, str, str] | None:
    match = _COMPARISON.match(condition)
    if match:
        return match["var"], _OPERATORS[match["op"]], _unquote(match["value"])
    match = _FLIPPED.match(condition)
    if match:
        return match["var"], _MIRRORED[_OPERATORS[match["op"]]], match["value"]
    match = _UNARY.match(condition)
    if match:
        return match["var"], ("!" if match["not"] else "") + match["op"], ""
    if condition.startswith("((") and condition.endswith("))"):
        inner = re.findall(r"[<>=!]=?", re.sub(r'"[^"]*"', "", condition[2:-2]))
        found = _ARITHMETIC.findall(condition)
        if len(found) == 1 and len(inner) <= 1:  # one comparison, not `a > 1 || b > 2`
            variable, operator, value = found[0]
            return variable, operator, value
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
        if value.startswith('\\"') and value.endswith('\\"'):  # `"\"healthy\""`: jq's JSON string, quotes and all
            value = value[2:-2]
    return value


def _for(node: Node, text: str, lines: tuple[int, int], source: bytes, first_line: int, comment: str) -> Statement:
    """`for i in {1..N}` / `$(seq N)` / `$(seq 1 N)`: a loop run N times; a loop over anything else is complex."""
    value = node.child_by_field_name("value")
    body = node.child_by_field_name("body")
    count = _count(_text(value)) if value is not None else None
    if count is None or body is None:
        return Statement(text, *lines, (), comment, complex=True)
    inner = [child for child in body.named_children if child.type != "comment"]
    return Statement(text, *lines, (), comment, repeat=count, loop=tuple(_sequence(inner, source, first_line)))


def _count(text: str) -> int | None:
    match = re.fullmatch(r"\{1\.\.(\d+)\}|\$\(seq (?:1 )?(\d+)\)", text.strip())
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def _captured(node: Node) -> Node | None:
    """`X=$(cmd)` or `X="$(cmd)"`: the command inside."""
    value = node.child_by_field_name("value")
    if value is not None and value.type == "string" and len(value.named_children) == 1:
        value = value.named_children[0]
    if value is None or value.type != "command_substitution":
        return None
    inner = [child for child in value.named_children if child.type != "comment"]
    return inner[0] if len(inner) == 1 and inner[0].type in _SIMPLE else None


def _target(redirect: Node) -> str:
    destination = redirect.child_by_field_name("destination")
    words = [child for child in redirect.named_children if child.type != "file_descriptor"]
    node = destination or (words[-1] if words else None)
    return _text(node) if node is not None else ""


def _stderr(redirect: Node) -> bool:
    """`2>/dev/null`, `2>&1`: where errors go, not the output."""
    return any(child.type == "file_descriptor" and _text(child) == "2" for child in redirect.children)


def _reads(redirect: Node) -> bool:
    if redirect.type in ("heredoc_redirect", "herestring_redirect"):
        return True
    operator = next((child for child in redirect.children if not child.is_named), None)
    return operator is not None and _text(operator) in ("<", "<&", "<>")


def _assignments(node: Node) -> list[tuple[str, Word]]:
    found = []
    for child in [node, *node.named_children]:
        if child.type == "variable_assignment":
            name, value = child.child_by_field_name("name"), child.child_by_field_name("value")
            if name is not None:
                found.append((_text(name), word_of(value) if value is not None else Word("", True)))
    return found


def _command(node: Node) -> Command:
    argv: list[Word] = []
    assignments: list[tuple[str, Word]] = []
    end = -1
    for child in node.named_children:
        if child.type == "variable_assignment":
            assignments.extend(_assignments(child))
        elif child.type == "command_name":
            argv.append(word_of(child.named_children[0] if child.named_children else child))
        elif child.type not in (*_REDIRECTS, "comment"):
            word = word_of(child)
            if argv and child.start_byte == end:  # touching parts are one word (`images_$DATE.tar.gz` split in two)
                before = argv.pop()
                word = Word(before.text + word.text, before.literal and word.literal, before.variables + word.variables,
                            joined((*before.pieces, *word.pieces)))
            argv.append(word)
        end = child.end_byte
    return Command(tuple(argv), tuple(assignments))


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")
