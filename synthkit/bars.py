"""Progress bars that leave a line of text behind.

In a notebook, tqdm draws its bar as a widget, and a saved notebook keeps a widget only as
a reference to a model that lives in the running kernel. Reopened without saved widget
state (a JupyterLab that does not save it, a viewer, an editor), the output reads "Error
displaying widget: model not found", and the run's total, time and tokens/s are lost. So a
finished bar here replaces its own output with one plain line, e.g.

    sft: 12/12 [00:31<00:00, 2.60s/step, tok/s=341]

Outside a notebook this is tqdm's text bar, unchanged.
"""
from __future__ import annotations

from tqdm.auto import tqdm as _auto
from tqdm.std import tqdm as _text

try:
    from tqdm.notebook import tqdm as _notebook
except ImportError:        # no ipywidgets: tqdm.auto is the text bar anyway
    _notebook = None


def _summary(bar) -> str:
    """The bar's numbers without the bar: description, count, times, rate and postfix."""
    line = _text.format_meter(**{**bar.format_dict, "ncols": 0})
    if bar.total and bar.n < bar.total:
        line += "  (stopped early)"
    return line


if _notebook is not None:
    class _NotebookBar(_notebook):
        """tqdm's widget bar whose output becomes a plain-text line once it closes."""

        def __init__(self, *args, **kwargs):
            from IPython.display import display
            kwargs["display"] = False
            super().__init__(*args, **kwargs)
            self._handle = None
            if not self.disable:
                self._handle = display(self.container, display_id=True)
                self.displayed = True

        def close(self):
            if self.disable or getattr(self, "_closed_to_text", False):
                return super().close()
            super().close()
            self._closed_to_text = True
            if self._handle is not None:
                self._handle.update({"text/plain": _summary(self)}, raw=True)
                try:
                    self.container.close()       # the widget model is no longer needed
                except Exception:
                    pass


def bar(**kwargs):
    """A progress bar (tqdm's keyword arguments): a widget in a notebook that ends as text,
    tqdm's text bar elsewhere."""
    kwargs.setdefault("dynamic_ncols", True)
    if _notebook is not None and isinstance(_auto, type) and issubclass(_auto, _notebook):
        return _NotebookBar(**kwargs)
    return _auto(**kwargs)
