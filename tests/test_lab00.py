"""Lab 00 (welcome): the chat-prompt check passes the model's own template, fails a layout
written by hand (right for SmolLM2, wrong for the check's other template) and the usual slips
with a message that names them, and never shows the expected prompt."""
from __future__ import annotations

from labtests import assert_wrong_answers_fail
from synthkit.labs import lab00


def test_lab_module_shape():
    assert lab00.LAB == "00" and lab00.NOTEBOOK == "00_welcome.ipynb"
    assert lab00.ex1.names == ("build_chat_prompt",)
    assert len(lab00.quiz.questions) >= 3


def test_a_layout_written_by_hand_fails_on_the_other_template():
    # ChatML written by hand for SmolLM2: right for this model, wrong for another template
    def by_hand(model, user_message, system=None):
        system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face" if system is None else system
        return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user_message}<|im_end|>\n"
                "<|im_start|>assistant\n")
    r = lab00.ex1.grade({"build_chat_prompt": by_hand})
    assert r.status == "fail" and "stand-in" in r.message

    fixed = lab00.ex1.grade({"build_chat_prompt": lambda model, user_message, system=None: "Hello"})
    assert fixed.status == "fail" and "'Hello'" in fixed.message
    assert "You are a helpful AI assistant" not in fixed.message  # never the expected answer

    no_system = lab00.ex1.grade({"build_chat_prompt":
                                 lambda model, user_message: model.apply_chat_template(user_message)})
    assert no_system.status == "error" and "system" in no_system.message


WRONG = [
    ("""
def build_chat_prompt(model, user_message, system=None):
    # a system message always, empty when none is given
    return model.apply_chat_template([{"role": "system", "content": system or ""},
                                      {"role": "user", "content": user_message}])
""", "With system=None, send no system message"),
    ("""
def build_chat_prompt(model, user_message, system=None):
    # the system prompt dropped
    return model.apply_chat_template([{"role": "user", "content": user_message}])
""", "differs from what the model's chat template renders"),
    ("""
def build_chat_prompt(model, user_message, system=None):
    # the roles swapped round
    messages = [{"role": "user", "content": user_message}]
    if system is not None:
        messages.append({"role": "system", "content": system})
    return model.apply_chat_template(messages)
""", "differs from what the model's chat template renders"),
]


def test_wrong_answers_fail_with_a_useful_message():
    assert_wrong_answers_fail(lab00.ex1, WRONG, tries=3)
