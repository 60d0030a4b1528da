"""Lab 00 — welcome: one exercise, one essay and one concept check.

Used by ``labs/00_welcome.ipynb``::

    from synthkit.labs.lab00 import ex1, essay1, quiz
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import SynthkitError
from ..grading.checks import first_difference as _first_difference
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz
from ..grading.sandbox import by_reference
from ..models.base import Model

LAB = "00"
TITLE = "Welcome: a tour of the course machinery"
NOTEBOOK = "00_welcome.ipynb"


# --- exercise 1: build_chat_prompt -----------------------------------------------------
@lru_cache(maxsize=1)
@by_reference  # under `synthkit grade` the student's kernel loads its own copy
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
        "Don't write the special tokens yourself: every chat model carries its own layout, and "
        "section 3 of this notebook printed it. Look for a method of `model` that renders messages.",
        "`model.apply_chat_template(messages)` turns a list of {\"role\": ..., \"content\": ...} dicts "
        "into the model's text, ending with the header that opens the assistant's turn.",
        "Make `messages` a list: a {\"role\": \"system\", ...} dict first, only when `system` is not None, "
        "then the user's dict; return what the template renders. The checks also pass in a model with "
        "a different template, so writing `<|im_start|>` yourself will not do.",
    ],
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
           "*new* randomness (a second batch of instructions, say).",
           "List what the cache key holds (model file, prompt, sampling settings, seed, sample index): "
           "what changes when none of those change, and which of them could you change on purpose?"],
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
    Question("ex1.check() shows \u2717 and a message. What does the message tell you?",
             ["The value your function should have returned for that input",
              "The input your code failed on, and how it failed",
              "Only that at least one of the hidden tests failed",
              "The line of your code where the mistake is"],
             answer=1,
             why="Checks name the failing input and the kind of failure (a wrong value or type, too "
                 "slow, an error), never the answer, and draw fresh random inputs each time, so only a "
                 "general solution passes."),
    Question("The second, identical generate() call came back from the cache. Which change makes the "
             "next call generate new text instead?",
             ["Running the same cell once more", "Restarting the kernel first",
              "Passing a different seed", "Loading the model again"],
             answer=2,
             why="The cache key is the model file, the prompt, the sampling settings, the seed and the "
                 "sample index. A restart or a reload changes none of them; a new seed does."),
    Question("The teacher answered 17 + 25 at temperature 0. Ask it again, the same way, with the cache "
             "switched off. What do you get?",
             ["The same answer: greedy decoding has no randomness",
              "Likely a new answer, as it samples a fresh token each time",
              "An error: temperature 0 is outside the valid range",
              "A new answer: each call draws a fresh random seed"],
             answer=0,
             why="At temperature 0 the model always takes its most likely next token, so the same "
                 "prompt gives the same text; a wrong answer stays wrong until you sample, filter "
                 "or verify."),
    Question("The teacher's file is about 98 MB and the model has about 135 million parameters. About "
             "how many bits does each weight take?",
             ["About 1 bit", "About 6 bits", "About 16 bits", "About 32 bits"],
             answer=1,
             why="98 MB x 8 bits / 134.5M weights is about 5.8 bits. Q4_1 stores 4-bit numbers plus a "
                 "16-bit scale and offset for each block of 32 weights, 5 bits a weight; the token "
                 "embeddings, a fifth of all weights, are kept at 8 bits (Q8_0)."),
    Question("How does `synthkit grade` score a submitted notebook?",
             ["It re-runs it in a fresh kernel, with its own copy of the checks",
              "It reads the outputs saved in the notebook, the \u2713 marks included",
              "It runs the check cells that the student left in the submitted file",
              "It compares the student's code with the solution, line by line"],
             answer=0,
             why="Saved outputs and edited check cells play no part: the grader runs everything again "
                 "and checks your functions with the checks installed with the course."),
])
