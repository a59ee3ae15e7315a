"""A Griffe extension for the docs site: doctest blocks become fenced ``pycon`` code.

The package's docstrings follow Keras's style, where an ``Example:`` line is followed by a
blank line and unindented ``>>>`` examples. Google-style parsing leaves those as plain
Markdown, which renders ``>>>`` as nested block quotes; this wraps each doctest block (from its
first ``>>>`` line to the next blank line) in a code fence before the docstring is parsed.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """``text`` with every doctest block wrapped in a ```` ```pycon ```` fence."""
    lines = text.split("\n")
    out: list[str] = []
    fenced = False  # inside a fence of the docstring's own
    block = False  # inside a doctest block that this function fenced
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```") and not block:
            fenced = not fenced
        if not fenced and not block and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            block = True
        elif block and not stripped:
            out.append(f"{indent}```")
            block = False
        out.append(line)
    if block:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctest blocks of every docstring Griffe loads."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
