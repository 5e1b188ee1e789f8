"""What a script's variables hold, as far as its text says, and the one place a word of the script becomes a step's
or a check's value: literal text, a value the script assigned, or a runbook parameter — never a `$NAME`, `$(…)` or
backtick copied into the draft.

Not responsible for which field a word goes to (the recognisers say, and what the field takes: `Accepts`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.importing.secrets import SECRET_NAME
from bot.importing.words import Expansion, Part, Word
from bot.runbooks.definitions import DEFAULT_STRING_PATTERN, IMAGE_TAG

_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*|\d)\}?")
_WHOLE = re.compile(r'^"?\$\{?([A-Za-z_][A-Za-z0-9_]*|\d)\}?"?$')
_POSITIONAL = re.compile(r'^"?\$\{?(\d)(?::-(?P<default>[^}]*))?\}?"?$')
# A variable named like what a procedure is given — the version to deploy, how many replicas — is its input: a
# parameter where the field takes one, with the script's value as its default.
_INPUT_NAME = re.compile(r"VERSION|TAG|IMAGE|RELEASE|REVISION|REPLICAS|COUNT|NAME", re.IGNORECASE)
SHELL_TEXT = re.compile(r"[$`]")  # what no value copied into a draft holds: a person reads what it means
_DEPTH = 4  # variables holding variables, followed this deep


class Accepts(Enum):
    """What a field can hold besides literal text (the catalog's `Template` fields, its number fields)."""

    TEXT = "text"  # literal text only: a URL, a path, SQL, a name, every check field (parameters never reach it)
    TEMPLATE = "template"  # `{{ params.x }}` anywhere in it: a deploy's image, a rollback's revision
    ELEMENT = "element"  # one `{{ params.x }}` as the whole value, else text: an exec step's argv element
    NUMBER = "number"  # a whole number, or one integer parameter: replicas, seconds


@dataclass(frozen=True)
class Value:
    """A field's value (None: nothing is copied, `why` says why) and the runbook parameters it uses."""

    value: str | int | None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    why: str = ""

    @property
    def text(self) -> str | None:
        return None if self.value is None else str(self.value)


@dataclass
class Variables:
    """What a script's variables hold, as far as the text says: literal values, its arguments, command outputs."""

    values: dict[str, str] = field(default_factory=dict)  # NAME=literal
    partial: dict[str, str] = field(default_factory=dict)  # NAME="/backups/$(date +%F)": text with an expansion
    arguments: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # NAME="$1" (and a default)
    inputs: dict[str, str] = field(default_factory=dict)  # NAME=${NAME:-default}: the environment's, or this
    outputs: dict[str, str] = field(default_factory=dict)  # NAME=$(command): the command, as written
    words: dict[str, Word] = field(default_factory=dict)  # each partial value as the word it was written as
    pulled: set[str] = field(default_factory=set)  # compose services a `pull` fetched new images of ("*": all)

    def assign(self, name: str, word: Word) -> None:
        self._forget(name)
        positional = _POSITIONAL.match(word.text) if not word.literal else None
        pieces = word.pieces
        if word.literal:
            self.values[name] = word.text
        elif positional:
            self.arguments[name] = (int(positional.group(1)), positional["default"])
        elif (len(pieces) == 1 and isinstance(pieces[0], Expansion) and pieces[0].name == name
              and pieces[0].default is not None):
            self.inputs[name] = pieces[0].default  # `HOST=${HOST:-localhost}`: given from outside, else the default
        else:
            self.partial[name] = _unquoted(word.text)
            self.words[name] = word

    def captured(self, name: str, command: str) -> None:
        self._forget(name)
        self.outputs[name] = command

    def _forget(self, name: str) -> None:
        for table in (self.values, self.partial, self.arguments, self.inputs, self.outputs, self.words):
            table.pop(name, None)

    def text(self, word: Word | str, depth: int = 0) -> str:
        """The word with the values it refers to filled in (as far as they are written); others stay `$NAME`.
        For reading what a command is about (a path, a URL's service); a field's value is `value`."""
        if isinstance(word, Word) and word.literal:
            return word.text
        raw = _unquoted(word if isinstance(word, str) else word.text)

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            value = self.values.get(name, self.partial.get(name))
            if value is None or depth > 3:
                return match.group(0)
            return self.text(value, depth + 1) if name in self.partial else value

        return _REFERENCE.sub(fill, raw)

    def whole(self, word: Word) -> str | None:
        """`$NAME` or `"${NAME}"` alone: the variable's name."""
        match = _WHOLE.match(word.text) if not word.literal else None
        return match.group(1) if match else None

    def value(self, word: Word, accepts: Accepts, *, hint: str = "", least: int = 0, image: bool = False) -> Value:
        """`word` as the value of a field that takes `accepts`: literal text; a variable the script sets, as its
        value — or as a parameter with that default where the field takes one and the variable is the whole value
        or is named like an input (VERSION, TAG, REPLICAS…); the script's arguments (`$1`, `${1:-x}`) as parameters.
        Commands' output, unknown variables, secrets and any `$` or backtick left are never copied: the value is
        None and `why` says why. `hint` names a positional argument's parameter (`replicas`); `least` is a number
        field's smallest value; `image`: a variable standing for the tag is an `image_tag` parameter."""
        pieces = self._expanded(word.pieces, 0)
        if isinstance(pieces, str):
            return Value(None, why=pieces)
        whole = len(pieces) == 1 and isinstance(pieces[0], Expansion)
        out: list[str] = []
        written: list[str] = []  # the text as the runbook wrote it, each parameter a NUL: where its tags would be
        parameters: dict[str, dict[str, Any]] = {}
        for index, part in enumerate(pieces):
            if isinstance(part, str):
                out.append(part)
                written.append(part)
                continue
            # `registry/app:$VERSION`: the variable is the tag
            tag = image and (whole or (index == len(pieces) - 1 and str(pieces[index - 1]).endswith(":")))
            resolved = self._variable(part, accepts, whole, hint, least, tag)
            if isinstance(resolved, str):
                return Value(None, why=resolved)
            text, parameter = resolved
            out.append(text)
            written.append("\0" if parameter else text)
            parameters.update(parameter)
        text = "".join(out)
        left = SHELL_TEXT.search("".join(written))
        if left:
            return Value(None, why=f"{_shown(word)} holds a `{left.group(0)}` that is no variable the script sets: "
                                   "not copied (a person reads it)")
        braces = TEMPLATE_TAG.search("".join(written))
        if braces:  # `'{{ params.x }}'` or a Go template the runbook wrote: the catalog would fill it in
            return Value(None, why=f"{_shown(word)} holds a template tag `{braces.group(0)}`, which the catalog "
                                   "would fill in: not copied (a person reads it)")
        if accepts is Accepts.NUMBER and not parameters:
            if not text.isdigit():
                return Value(None, why=f"{_shown(word)} is not a whole number")
            if int(text) < least:
                return Value(None, why=f"{_shown(word)} is below {least}")
            return Value(int(text))
        return Value(text, parameters)

    def _expanded(self, pieces: tuple[Part, ...], depth: int) -> tuple[Part, ...] | str:
        """The pieces with each variable that holds other text (`DIR="$ROOT/x"`) replaced by that text's pieces."""
        out: list[Part] = []
        for part in pieces:
            if isinstance(part, Expansion) and part.name is None:
                return f"{part.written} is worked out when the script runs: not copied"
            if isinstance(part, Expansion) and part.name in self.words and not secret(part.name):
                if depth >= _DEPTH:
                    return f"{part.written} refers to itself: not copied"
                inner = self._expanded(self.words[part.name].pieces, depth + 1)
                if isinstance(inner, str):
                    return f"${part.name} holds {self.partial[part.name]!r}: {inner}"
                out += inner
            else:
                out.append(part)
        return tuple(out)

    def _variable(self, part: Expansion, accepts: Accepts, whole: bool, hint: str, least: int,
                  tag: bool) -> tuple[str, dict[str, dict[str, Any]]] | str:
        """One variable as text or a parameter reference, or why it cannot be either."""
        name = part.name or ""
        if secret(name):
            return (f"reads the secret ${name}: the catalog names a secret's environment variable in a `*_env` field, "
                    "never in a step's text")
        if name in self.outputs:
            return f"${name} holds the output of `{self.outputs[name][:60]}` when the script runs: not copied"
        known = self.values.get(name)
        given = name.isdigit() or name in self.arguments or name in self.inputs or (
            known is None and part.default is not None)
        takes = accepts is Accepts.TEMPLATE or (whole and accepts in (Accepts.ELEMENT, Accepts.NUMBER))
        if takes and (given or (known is not None and (whole or _INPUT_NAME.search(name)))):
            return self._parameter(part, accepts, hint, least, tag)
        if known is not None:
            return known, {}
        if given:
            return f"${name} is given when the script runs, and {_NO_PARAMETER[accepts]}"
        return f"${name} is not set in the runbook: not copied"

    def _parameter(self, part: Expansion, accepts: Accepts, hint: str, least: int,
                   tag: bool) -> tuple[str, dict[str, dict[str, Any]]] | str:
        name = part.name or ""
        written = (self.values.get(name), self.arguments.get(name, (0, None))[1], self.inputs.get(name), part.default)
        default = next((value for value in written if value is not None), None)
        parameter = (hint or f"arg_{name}") if name.isdigit() else parameter_name(name)
        what = f"the script's argument ${name}" if name.isdigit() or name in self.arguments else f"the script's ${name}"
        spec: dict[str, Any] = {"type": "string", "description": what}
        if accepts is Accepts.NUMBER:
            if default is not None and not default.isdigit():
                return f"${name} is {default!r}, not a whole number"
            spec = {"type": "integer", "description": what}
            if least:
                spec["min"] = least
            if default is not None:
                if int(default) < least:
                    return f"${name} is {default}, below {least}"
                spec |= {"default": int(default), "max": max(100, int(default) * 10)}
            return f"{{{{ params.{parameter} }}}}", {parameter: spec}
        if tag and (default is None or IMAGE_TAG.match(default)):
            spec = {"type": "image_tag", "description": what}
            if default is not None:
                spec["default"] = default
        elif default is not None and default.isdigit():
            spec = {"type": "integer", "description": what, "default": int(default), "max": max(100, int(default) * 10)}
        elif default is not None and re.fullmatch(DEFAULT_STRING_PATTERN, default):
            spec["default"] = default
        return f"{{{{ params.{parameter} }}}}", {parameter: spec}


_NO_PARAMETER = {
    Accepts.TEXT: "parameters never reach a URL, a path, SQL, a name or a check: write the value out",
    Accepts.TEMPLATE: "it cannot be a parameter here",
    Accepts.ELEMENT: "a parameter is a whole argv element, never part of one",
    Accepts.NUMBER: "a number is one whole parameter, never part of a word",
}
PARAMETER = re.compile(r"\{\{ params\.[a-z][a-z0-9_]* \}\}")
TEMPLATE_TAG = re.compile(r"\{\{|\{%|\}\}|%\}")  # what the catalog reads as a template, wherever it is


def parameter_name(variable: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", variable.lower()).strip("_") or "value"
    return (name if name[0].isalpha() else f"arg_{name}")[:40]


def secret(variable: str) -> bool:
    return bool(SECRET_NAME.search(variable))


def _unquoted(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _shown(word: Word) -> str:
    return f"`{word.text[:60]}`"
