"""A YAML syntax error as one line: where (line and column, counted from 1) and what is wrong.

PyYAML's own text is three or four lines (the construct it was inside, the problem, each with an
`in "file", line L, column C` line), which breaks the rule that a command answers bad input with
one sentence. The file is not named here: every caller already starts its message with it.
"""

from __future__ import annotations

import yaml

# PyYAML's names for the end of the input, in words a user editing a file reads without a manual.
_END = {"'<stream end>'": "the end of the file", "end of stream": "end of the file"}


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`not valid YAML at line L, column C: <problem> (<while ...> that starts at line ...)`."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = _words(exc.problem or exc.context or "syntax error")
        where = f" at {_at(mark)}" if mark is not None else ""
        inside = ""
        if exc.problem and exc.context:
            inside = f" ({_words(exc.context)}"
            if exc.context_mark is not None and _at(exc.context_mark) != _at(mark):
                inside += f" that starts at {_at(exc.context_mark)}"
            inside += ")"
        return f"not valid YAML{where}: {what}{inside}"
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        if exc.encoding != "unicode":  # PyYAML's mark of a decoded text: a byte did not decode
            return f"not UTF-8 text (byte {exc.position}: {exc.reason})"
        return (
            f"not valid YAML at character {exc.position}: #x{code:04x} is not allowed "
            f"({exc.reason})"
        )
    return "not valid YAML: " + " ".join(str(exc).split())


def _at(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"


def _words(text: str) -> str:
    for token, words in _END.items():
        text = text.replace(token, words)
    return text
