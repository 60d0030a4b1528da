"""Concept checks: a few multiple-choice questions at the end of each lab.

In JupyterLab, ``quiz.show()`` (or ``quiz`` as the last line of a cell) draws one
set of radio buttons per question: click a choice and you see at once whether it is
right and a one-line why. Without a widget front end (a headless run, a plain
terminal, a notebook viewer) the same quiz shows as text, and you answer in code::

    quiz.answer(1, "b")

Either way each answer is saved in your local progress (``synthkit progress``), and
showing the quiz again (a re-run cell, a reopened notebook, a restarted kernel) shows the
answers saved so far rather than a blank quiz.
Concept checks are for you: the class grader does not score them.
"""
from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass

from . import store
from .view import Note, in_notebook

LETTERS = "abcdefghij"


@dataclass
class Question:
    text: str
    choices: list[str]
    answer: int  # index of the right choice in `choices`
    why: str  # one line: why the right choice is right

    def __post_init__(self):
        if not 2 <= len(self.choices) <= len(LETTERS):
            raise ValueError(f"a question needs 2 to {len(LETTERS)} choices: {self.text!r}")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"answer index {self.answer} is not one of the choices of {self.text!r}")


def _inline_code(text: str) -> str:
    """Escape `text` for HTML and show `backticked` names as code, as the chapters do."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# A notebook saved with its widget state (`synthkit start` turns that on) shows the quiz as
# it was left when it is reopened, but no kernel is behind it until the cell runs again.
# JupyterLab marks every such widget with a broken-link icon; in the quiz one note says it
# once instead, and only while the quiz is not live.
_REOPENED_CSS = ("<style>.synthkit-quiz.jupyter-widgets-disconnected::before,"
                 ".synthkit-quiz .jupyter-widgets-disconnected::before{display:none}"
                 ".synthkit-quiz .synthkit-reopened{display:none}"
                 ".synthkit-quiz .jupyter-widgets-disconnected .synthkit-reopened{display:inline}</style>")
_REOPENED_NOTE = ('<span class="synthkit-reopened"><br><i>This is the quiz as you left it. Run the cell '
                  'again to answer more: your answers so far come back with it.</i></span>')


class Quiz:
    def __init__(self, lab: str, questions: list[Question], name: str = "quiz"):
        self.lab, self.questions, self.name = lab, list(questions), name
        self.answers: dict[int, bool] = {}  # question number (1-based) -> right?
        self.choices: dict[int, int] = {}  # question number -> index of the latest choice
        self._answers_handle = None         # the plain-text answers under the widget, if shown
        self._restored = False

    # --- the answers saved so far ----------------------------------------------------------
    def saved_choices(self) -> dict[int, int]:
        """Question number -> index of the latest choice saved in the progress store.

        A saved answer is matched by its text when the record has it, so a choice that was
        reworded or moved since is dropped rather than shown against the wrong option."""

        item = re.compile(rf"{re.escape(self.name)}\.q(\d+)")
        out: dict[int, int] = {}
        for r in store.load():
            m = item.fullmatch(str(r["item"])) if r.get("kind") == "quiz" and r["lab"] == self.lab else None
            if not m or not 1 <= int(m.group(1)) <= len(self.questions):
                continue
            number, q = int(m.group(1)), self.questions[int(m.group(1)) - 1]
            text, letter = r.get("choice_text"), r.get("choice")
            if isinstance(text, str):
                if text in q.choices:
                    out[number] = q.choices.index(text)
                else:
                    out.pop(number, None)
            elif isinstance(letter, str) and letter in LETTERS[:len(q.choices)]:
                out[number] = LETTERS.index(letter)
        return out

    def restore(self) -> None:
        """Take up the answers saved so far (from any earlier session)."""
        self.choices, self._restored = self.saved_choices(), True
        self.answers = {n: i == self.questions[n - 1].answer for n, i in self.choices.items()}

    # --- answering -------------------------------------------------------------------
    def _choice_index(self, q: Question, choice) -> int:
        if isinstance(choice, bool):
            raise ValueError("give a choice as a letter ('a', 'b', ...)")
        if isinstance(choice, int):
            index = choice - 1  # people count choices from 1
        elif isinstance(choice, str) and len(choice.strip()) == 1 and choice.strip().lower() in LETTERS:
            index = LETTERS.index(choice.strip().lower())
        elif isinstance(choice, str) and choice.strip() in q.choices:
            index = q.choices.index(choice.strip())
        else:
            raise ValueError(f"{choice!r} is not a choice; answer with a letter from "
                             f"'a' to '{LETTERS[len(q.choices) - 1]}'")
        if not 0 <= index < len(q.choices):
            raise ValueError(f"this question has choices 'a' to '{LETTERS[len(q.choices) - 1]}'; got {choice!r}")
        return index

    def _mark(self, number: int, index: int, via: str) -> tuple[bool, str]:

        q = self.questions[number - 1]
        right = index == q.answer
        self.answers[number], self.choices[number] = right, index
        store.record(self.lab, f"{self.name}.q{number}", kind="quiz", status="pass" if right else "fail",
                        choice=LETTERS[index], choice_text=q.choices[index], via=via)
        return right, self._feedback(number, index)

    def _feedback(self, number: int, index: int) -> str:
        q = self.questions[number - 1]
        return f"{'✓ Right.' if index == q.answer else '✗ Not quite.'} {q.why}"

    def answer(self, question: int, choice) -> bool:
        """Answer question `question` (counting from 1) with a letter: quiz.answer(1, "b")."""
        if not isinstance(question, int) or not 1 <= question <= len(self.questions):
            raise ValueError(f"there are questions 1 to {len(self.questions)}; got {question!r}")
        index = self._choice_index(self.questions[question - 1], choice)
        if not self._restored:
            self.restore()
        right, feedback = self._mark(question, index, via="text")
        text = f"{question}. {feedback}\n{self.score_line()}"
        if in_notebook():
            from IPython.display import display
            display(Note(text, "#1a7f37" if right else "#cf222e"))
        else:
            print(text)
        return right

    @property
    def score(self) -> tuple[int, int]:
        """(right, total) over the latest answer to each question (saved ones included
        once the quiz has been shown)."""
        return sum(self.answers.values()), len(self.questions)

    def score_line(self) -> str:
        right, total = self.score
        return f"Concept check: {right}/{total} right ({len(self.answers)} answered)."

    # --- showing -----------------------------------------------------------------------
    def text(self) -> str:
        """The quiz as plain text, with the answers given so far and their feedback."""
        lines = [f"Concept check (lab {self.lab}): {len(self.questions)} questions."]
        for i, q in enumerate(self.questions, 1):
            lines.append(f"\n{i}. {q.text}")
            lines += [f"   {LETTERS[k]}) {c}" for k, c in enumerate(q.choices)]
            if i in self.choices:
                lines.append(f"   your answer: {LETTERS[self.choices[i]]}. {self._feedback(i, self.choices[i])}")
        lines.append(f"\nNo clickable quiz here? Answer in code, e.g. {self.name}.answer(1, \"b\"); "
                     f"each answer shows right or wrong and why, and is saved to your progress.")
        if self.answers:
            lines.append(self.score_line())
        return "\n".join(lines)

    def widget(self):
        """The clickable quiz (an ipywidgets box whose plain-text form is the text quiz)."""
        import ipywidgets as w

        class QuizBox(w.VBox):
            def _repr_mimebundle_(box, **kwargs):
                data = super()._repr_mimebundle_(**kwargs)
                if data:  # a front end without widgets falls back to the text quiz
                    data["text/plain"] = self.text()
                return data

        self.restore()
        score = w.HTML(html.escape(self.score_line()))
        parts = [w.HTML(_REOPENED_CSS + f"<b>Concept check (lab {self.lab})</b>: click a choice to see "
                        f"whether it is right.{_REOPENED_NOTE}")]
        for number, q in enumerate(self.questions, 1):
            radio = w.RadioButtons(options=[(f"{LETTERS[k]}) {c}", k) for k, c in enumerate(q.choices)],
                                   value=self.choices.get(number), layout=w.Layout(width="auto"))
            feedback = w.HTML(self._feedback_html(number, self.choices[number]) if number in self.choices else "")

            def on_pick(change, number=number, feedback=feedback):
                if change["new"] is None:
                    return
                self._mark(number, change["new"], via="widget")
                feedback.value = self._feedback_html(number, change["new"])
                score.value = html.escape(self.score_line())
                if self._answers_handle is not None:
                    self._answers_handle.update(self._answers_bundle(), raw=True)

            radio.observe(on_pick, names="value")
            parts.append(w.VBox([w.HTML(f"<b>{number}.</b> {_inline_code(q.text)}"), radio, feedback]))
        parts.append(score)
        return QuizBox(parts).add_class("synthkit-quiz")

    def answers_html(self) -> str:
        """The answers given so far as plain HTML, shown under the clickable quiz.

        A saved notebook keeps a widget only as a reference to a model in the kernel, so a
        notebook reopened where widget state was not saved (a viewer, an editor, a server
        without the setting) cannot draw the quiz. This line is ordinary output: it reads
        the same anywhere."""
        if not self.choices:
            return (f"<i>Concept check (lab {self.lab}): no answers yet. Pick a choice above; "
                    f"your answers are listed here too.</i>")
        marks = ", ".join(f"{n}&nbsp;{LETTERS[i]}&nbsp;{'✓' if i == self.questions[n - 1].answer else '✗'}"
                          for n, i in sorted(self.choices.items()))
        return f"<b>Your answers (lab {self.lab})</b>: {marks}. {html.escape(self.score_line())}"

    def _answers_bundle(self) -> dict:
        text = re.sub(r"<[^>]+>", "", self.answers_html()).replace("&nbsp;", " ")
        return {"text/html": self.answers_html(), "text/plain": html.unescape(text)}

    def _feedback_html(self, number: int, index: int) -> str:
        colour = "#1a7f37" if index == self.questions[number - 1].answer else "#cf222e"
        return f'<span style="color:{colour}">{html.escape(self._feedback(number, index))}</span>'

    def show(self) -> None:
        """The quiz: clickable in a notebook, text elsewhere (interactive in a terminal)."""
        self.restore()
        if in_notebook():
            from IPython.display import display
            try:
                display(self.widget())
                self._answers_handle = display(self._answers_bundle(), raw=True, display_id=True)
                return
            except ImportError:  # no ipywidgets: the text quiz below
                display(Note(self.text()))
                return
        print(self.text())
        if sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty():
            self._ask_in_terminal()

    def _ask_in_terminal(self) -> None:
        for number, q in enumerate(self.questions, 1):
            while True:
                reply = input(f"\n{number}. your answer (letter, Enter to skip): ").strip()
                if not reply:
                    break
                try:
                    index = self._choice_index(q, reply)
                except ValueError as e:
                    print(e)
                    continue
                print(self._mark(number, index, via="terminal")[1])
                break
        print(self.score_line())

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"<Quiz lab {self.lab}: {len(self.questions)} questions>"
