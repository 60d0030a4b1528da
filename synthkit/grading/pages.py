"""What the instructor's pages share: Jinja2 templates with autoescaping (a student's text
is shown, never run), one style sheet, plots as inline images, safe file names.

Every page is one self-contained HTML file: no script, no font, no image is fetched from
anywhere, so a page opens offline and can be mailed or uploaded as it is.
"""
from __future__ import annotations

import base64
import io
import re

import jinja2

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 980px;
       margin: 1.5em auto; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
h3 { margin-bottom: .3em; } .muted { color: #59636e; } .small { font-size: .9em; }
table { border-collapse: collapse; margin: .5em 0 1em; } th, td { border: 1px solid #d0d7de;
        padding: 3px 8px; text-align: left; vertical-align: top; } th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.box { border-left: 4px solid #d0d7de; padding: 4px 10px; margin: .7em 0; }
.pass { border-color: #1a7f37; } .fail { border-color: #cf222e; } .essay { border-color: #0550ae; }
.warn { border-color: #9a6700; background: #fff8c5; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: .85em; background: #eaeef2; }
pre, .answer { white-space: pre-wrap; background: #f6f8fa; padding: 6px 10px; border-radius: 4px; }
img.plot { max-width: 100%; height: auto; display: block; margin: .5em 0; }
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    return _ENV.from_string(template).render(style=STYLE, **context)


def safe_name(text: str) -> str:
    """A file name for `text` (a student's name) that any file system takes."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "student"


def plot_image(fig) -> str:
    """A matplotlib figure as a data: URI of its SVG (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(width: float = 6.4, height: float = 2.6):
    """A new figure on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))
