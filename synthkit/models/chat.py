"""Chat templates, rendered from the model's own template text.

A chat model was trained on conversations laid out by one exact template; prompting it
in any other layout costs quality. Both backends render with this one function (the
same sandboxed Jinja setup transformers uses), so the prompt text never depends on which
backend runs.
"""
from __future__ import annotations

import datetime
from functools import lru_cache

from ..errors import SynthkitError


def _raise(message):
    raise SynthkitError(f"chat template refused the conversation: {message}")


@lru_cache(maxsize=32)
def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env.from_string(template)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    import json
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def render_chat(template: str, messages: list[dict], *, bos_token: str = "",
                eos_token: str = "", add_generation_prompt: bool = True, **extra) -> str:
    """Render `messages` ([{"role": ..., "content": ...}]) with a Jinja chat template."""
    if not template:
        raise SynthkitError("this model has no chat template; pass plain prompts to "
                            "generate() or give a template with chat_template=")
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return _compile(template).render(messages=list(messages), bos_token=bos_token,
                                     eos_token=eos_token,
                                     add_generation_prompt=add_generation_prompt, **extra)
