"""Lab 00 — welcome: one exercise, one essay and one concept check.

Used by ``labs/00_welcome.ipynb``::

    from synthkit.labs.lab00 import ex1, essay1, quiz
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import SynthkitError
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz
from ..models.base import Model

LAB = "00"
TITLE = "Welcome: a tour of the course machinery"
NOTEBOOK = "00_welcome.ipynb"


# --- exercise 1: build_chat_prompt -----------------------------------------------------
@lru_cache(maxsize=1)
def _embedded_model():
    from .. import load_model
    return load_model(n_ctx=512, n_parallel=1)  # the checks only need its template: keep it light


# A different layout from SmolLM2's ChatML, written in the style of Llama 3's template,
# so a prompt hard-coded for one model does not pass.
_OTHER_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


class _TemplateOnly(Model):
    """A stand-in model that has a chat template and nothing else."""

    backend = "none"
    name = "a stand-in model with a Llama-3-style template"
    chat_template = _OTHER_TEMPLATE
    bos_token = "<|begin_of_text|>"
    eos_token = "<|eot_id|>"

    def tokenize(self, text, add_special=False):
        raise SynthkitError("this stand-in model has a chat template but no weights; "
                            "build the prompt from its template")


_WORDS = ("write", "a", "short", "poem", "about", "the", "sea", "explain", "why", "sky", "is", "blue",
          "list", "three", "uses", "for", "vinegar", "translate", "this", "into", "French", "how",
          "many", "legs", "does", "spider", "have", "summarize", "plot", "of", "Hamlet", "in", "one",
          "sentence", "give", "me", "recipe", "with", "lentils", "what", "prime", "number", "after",
          "97", "naïve", "café", "über", "数据", "{braces}", "{{double}}", "%s", "\\n", "'quotes'",
          '"double"', "<tag>", "x=1;", "emoji🙂")
_SYSTEMS = ("You are a terse assistant.", "Answer like a pirate.", "You only reply in JSON.",
            "You are a careful math tutor who shows every step.")


def _message(rng, low=3, high=14) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(low, high))]
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    if rng.random() < 0.3:
        text += "\n" + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6)))
    return text + rng.choice(("?", ".", "!", "", "  "))


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _check_build_chat_prompt(c) -> str:
    fn = c.get("build_chat_prompt", callable_=True)
    cases = [(_embedded_model(), None if i % 2 == 0 else c.rng.choice(_SYSTEMS) + " " + _message(c.rng, 1, 4))
             for i in range(6)]
    cases += [(_TemplateOnly(), None), (_TemplateOnly(), c.rng.choice(_SYSTEMS))]
    for model, system in cases:
        user = _message(c.rng)
        messages = ([] if system is None else [{"role": "system", "content": system}]) + \
            [{"role": "user", "content": user}]
        expected = model.apply_chat_template(messages)
        label = f"build_chat_prompt(model, {show_input(user, 50)}" + \
            (f", system={show_input(system, 40)})" if system is not None else ")")
        if isinstance(model, _TemplateOnly):
            label += f" with {model.name}"
        got = (c.call(fn, model, user, label=label) if system is None
               else c.call(fn, model, user, system=system, label=label))
        c.expect_type(got, str, label)
        if got == expected:
            continue
        k = _first_difference(got, expected)
        if k == len(got):
            where = f"it stops at character {k}, before the template's text does"
        else:
            where = f"from character {k} on: yours has {show_input(got[k:k + 30], 40)} there"
        advice = ("Don't write one model's layout by hand: ask the model for its own."
                  if isinstance(model, _TemplateOnly) else
                  "Print your prompt and the template above side by side.")
        if system is None and k < expected.find("user"):
            advice += " With system=None, send no system message: the template decides what happens then."
        c.fail(f"{label} returned a prompt that differs from what the model's chat template renders, "
               f"{where}. {advice}")
    return (f"{len(cases)} prompts on fresh random messages match the model's own layout, "
            f"with and without a system message, on two different chat templates.")


ex1 = CodingExercise(
    "ex1", LAB, names="build_chat_prompt", checker=_check_build_chat_prompt, points=2,
    title="Build the exact prompt a chat model expects",
    hints=[
        "The model knows its own layout: `model.apply_chat_template(messages)` renders a list of "
        "{\"role\": ..., \"content\": ...} dicts and ends with the header that opens the assistant's turn.",
        "Make `messages` a list: a {\"role\": \"system\", ...} dict first, only when `system` is not None, "
        "then the user's dict. The checks also pass in a model with a different template, so writing "
        "`<|im_start|>` yourself will not do.",
    ],
    solution='''
        def build_chat_prompt(model, user_message, system=None):
            """The exact text `model` should see for one user turn (with an optional system turn)."""
            messages = [] if system is None else [{"role": "system", "content": system}]
            messages.append({"role": "user", "content": user_message})
            return model.apply_chat_template(messages)
    ''',
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=1, title="What a generation cache buys you, and what it can hide",
    prompt="""
        The second generate() call came back from the cache in a fraction of a second. In a few
        sentences: how will that save you time in this course, and in what situation would reusing
        a cached answer mislead you? What would you change to get fresh samples?
    """,
    hints=["Think of a lab you re-run after a kernel restart, and of an experiment where you want "
           "*new* randomness (a second batch of instructions, say)."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - Re-running a cell, restarting a kernel or resuming a killed run costs nothing: every finished
          sequence is stored under the model, the prompt, the sampling parameters, the seed and the
          sample index, and read back when all of these match. Results are reproducible too.
        - It misleads when you expect new randomness but keep the seed: you get the very same samples
          back. It also hides speed (a cached call shows no tokens/s) and any change the key does not
          see, such as a fix in the sampling code of the library itself.
        - Fresh samples: change the seed, ask for more samples (n=), pass cache=False, or set
          SYNTHKIT_CACHE=off.
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("ex1.check() shows ✗ and a message. What does the message tell you?",
             ["The value your function should have returned",
              "Which input your code failed on, and how: a wrong value or type, too slow, or an error",
              "Only that something is wrong"],
             answer=1,
             why="Checks name the failing input and the kind of failure, never the answer, and draw fresh "
                 "random inputs each time, so only a general solution passes."),
    Question("The same generate() call, run twice, took almost no time the second time. Why?",
             ["llama.cpp keeps the model warm between calls",
              "The second call generated fewer tokens",
              "Each finished sequence was saved on disk under its model, prompt, sampling parameters, "
              "seed and sample index, and read back",
              "The work moved to a GPU"],
             answer=2,
             why="The generation cache keys each sequence by everything that determines it: same key, "
                 "same text, no compute."),
    Question("The embedded teacher is SmolLM2-135M-Instruct on 2 CPU cores. What should you expect of it?",
             ["Answers about as reliable as a frontier model's",
              "Quick and small, and often wrong: later labs filter and verify what it writes",
              "It needs the internet to run"],
             answer=1,
             why="A 135M-parameter model is a real but fallible teacher, which is exactly what rejection "
                 "sampling and verifiers exist for."),
    Question("How does `synthkit grade` score a submitted notebook?",
             ["It reads the outputs saved in the notebook, ✓ marks included",
              "It runs the notebook in a fresh kernel, then runs the installed checks on your functions",
              "It counts how many cells were executed"],
             answer=1,
             why="Saved outputs and edited check cells play no part: the grader re-runs everything and "
                 "checks your objects with its own copy of the checks."),
])
