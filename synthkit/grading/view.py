"""How a result or a message shows itself: coloured HTML in a notebook, plain text
elsewhere. Nothing here decides or records anything."""
from __future__ import annotations

import html

from .outcomes import Result


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def show_result(result: Result) -> None:
    if in_notebook():
        from IPython.display import display
        display(result)
    else:
        print(result)


class Note:
    """A message that shows as coloured HTML in a notebook and as plain text elsewhere."""

    def __init__(self, text: str, colour: str = "#57606a", code: bool = False):
        self.text, self.colour, self.code = text, colour, code

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text)

    def _repr_html_(self) -> str:
        font = "font-family:monospace;" if self.code else ""
        return (f'<div style="border-left:4px solid {self.colour};padding:2px 8px;'
                f'white-space:pre-wrap;{font}">{html.escape(self.text)}</div>')


def say(text: str, colour: str = "#57606a", code: bool = False) -> None:
    if in_notebook():
        from IPython.display import display
        display(Note(text, colour, code))
    else:
        print(text)

