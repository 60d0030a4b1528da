"""pre_query_template on real chat-template styles, with no per-model table."""
import random
import string

import pytest

from synthkit.magpie import pre_query_template
from synthkit.models.chat import render_chat

CHATML_DEFAULT_SYSTEM = (  # Qwen2-style: inserts a system turn when none is given
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
LLAMA31_DEFAULT_SYSTEM = (  # the 3.1 layout: always a system header with dates
    "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n{%- for message in messages %}\n"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n")
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}")
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")

CASES = [
    ("chatml-default-system", CHATML_DEFAULT_SYSTEM, "",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"),
    ("llama3", LLAMA3, "<|begin_of_text|>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"),
    ("llama3.1-default-system", LLAMA31_DEFAULT_SYSTEM, "<|begin_of_text|>",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
     "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"),
    ("mistral", MISTRAL, "<s>", "<s>[INST] "),
    ("gemma", GEMMA, "<bos>", "<bos><start_of_turn>user\n"),
    ("phi3", PHI3, "", "<|user|>\n"),
    ("zephyr", ZEPHYR, "", "<|user|>\n"),
]


@pytest.mark.parametrize("name,template,bos,expected", CASES, ids=[c[0] for c in CASES])
def test_prefix_of_known_templates(name, template, bos, expected):
    assert pre_query_template(template, bos_token=bos) == expected


@pytest.mark.parametrize("name,template,bos,expected", CASES, ids=[c[0] for c in CASES])
def test_prefix_then_message_is_what_the_template_renders(name, template, bos, expected):
    """Property: prefix + any (trimmed) user message is how the template starts that turn."""
    rng = random.Random(name)
    prefix = pre_query_template(template, bos_token=bos)
    for _ in range(20):
        msg = "".join(rng.choice(string.ascii_letters + "  ?,.") for _ in range(rng.randint(1, 40))).strip() or "x"
        rendered = render_chat(template, [{"role": "user", "content": msg}], bos_token=bos,
                               eos_token="</s>", add_generation_prompt=True)
        assert rendered.startswith(prefix + msg)


def test_embedded_model_prefix_includes_its_default_system_turn(llama_model):
    prefix = pre_query_template(llama_model.chat_template, llama_model.bos_token)
    assert prefix.startswith("<|im_start|>system\n") and prefix.endswith("<|im_start|>user\n")


def test_magpie_prefix_makes_the_model_write_user_messages(llama_model):
    m = llama_model
    prefix = pre_query_template(m.chat_template, m.bos_token)
    out = m.generate(prefix, n=6, max_tokens=48, seed=11, cache=False, progress=False)
    texts = [t.strip() for t in out.texts]
    assert all(texts) and len(set(texts)) >= 5
    assert sum(g.finish_reason == "stop" for g in out) >= 3  # most end their turn by themselves
