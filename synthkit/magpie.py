"""Magpie: instructions from an aligned model prompted with nothing but its own template.

An aligned chat model has seen millions of conversations laid out by its chat template.
Give it the template *up to the point where a user's words would begin* and it writes a
plausible user message by itself: an instruction with no human seed.
"""
from __future__ import annotations

from .models.chat import render_chat

_SENTINEL = "SYNTHKITUSERCONTENTMARKER"


def pre_query_template(chat_template: str, bos_token: str = "") -> str:
    """The text `chat_template` renders before a user message's content.

    Derived by rendering one user turn whose content is a marker and cutting at the
    marker, so it works for any template (ChatML, Llama 3, Mistral, Gemma, ...) with no
    per-model table, and it keeps any default system turn the template adds by itself.
    """
    text = render_chat(chat_template, [{"role": "user", "content": _SENTINEL}],
                       bos_token=bos_token, add_generation_prompt=False)
    cut = text.find(_SENTINEL)
    if cut < 0:
        raise ValueError("the chat template does not render the user's content verbatim, "
                         "so no pre-query prefix can be cut from it; write the prefix by hand")
    return text[:cut]
