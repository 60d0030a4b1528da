"""From records to training batches: which tokens the model is taught.

Supervised fine-tuning teaches a model to *answer*, so only the answer's tokens carry
loss: the prompt is context the model reads, not text it should learn to write. Each
example is a list of token ids plus a mask saying which of them are taught (the
assistant's turns, their end-of-turn token included, so the model learns to stop).

The texts are laid out exactly as at inference time: the prompt is rendered with the
model's chat template and tokenized on its own, then the answer is tokenized on its own
and appended. A model that is later prompted with `model.chat(...)` sees the same tokens
it was trained on.

Accepted records (JSON lines as `magpie`, `self-instruct` and `rejection-sample` write them):
- {"messages": [{"role": ..., "content": ...}, ...]}: every assistant turn is taught;
- {"prompt": ..., "completion" | "response": ...} (TRL's prompt-completion format);
- {"instruction": ..., "input": optional, "output" | "response": ...} (Alpaca).
A prompt that is already chat-formatted (it holds the template's turn markers) is used
as it is; a plain one becomes a user message.

Batches: examples are padded on the right to the longest in their batch; to waste little
on padding, examples of similar length share a batch (shuffled in windows, then sorted
by length inside each window, then the batches shuffled again).
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

import torch

from ..errors import SynthkitError

IGNORE = -100  # the label PyTorch's cross-entropy skips


class DataError(SynthkitError, ValueError):
    """The training records cannot be turned into examples."""


@dataclass
class Example:
    ids: list[int]
    taught: list[bool]  # True where the token is part of an answer (carries loss)
    empty: bool = False  # every answer is blank: it would only teach the model to say nothing

    @property
    def n_taught(self) -> int:
        return sum(self.taught)


# --- records -> conversations ---------------------------------------------------------

def to_messages(record: dict, number: int = 0) -> list[dict] | tuple[str, str]:
    """A record as chat messages, or as (pre-rendered prompt, answer) when its prompt
    already carries chat markup."""
    if not isinstance(record, dict):
        raise DataError(f"record {number} is a {type(record).__name__}, not a dict; each "
                        f"record needs 'messages', or 'prompt' + 'response', or 'instruction' + 'output'")
    if "messages" in record:
        msgs = record["messages"]
        if not msgs or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
            raise DataError(f"record {number}: 'messages' must be a non-empty list of "
                            f"{{'role': ..., 'content': ...}} dicts")
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    answer = next((record[k] for k in ("response", "completion", "output") if k in record), None)
    if "prompt" in record:
        prompt = record["prompt"]
    elif "instruction" in record:
        prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    else:
        prompt = None
    if prompt is None or answer is None:
        raise DataError(f"record {number} has fields {sorted(record)}; SFT needs 'messages', or "
                        f"'prompt' with 'response'/'completion', or 'instruction' with 'output'/'response'")
    if not isinstance(prompt, str) or not isinstance(answer, str):
        raise DataError(f"record {number}: the prompt and the answer must be strings")
    if "<|im_start|>" in prompt or "<|start_header_id|>" in prompt or "<start_of_turn>" in prompt:
        return prompt, answer
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def _segments(model, conv) -> list[tuple[str, bool]]:
    """(text, taught) pieces whose concatenation is the rendered conversation."""
    if isinstance(conv, tuple):
        prompt, answer = conv
        return [(prompt, False), (answer + model.eos_token, True)]
    pieces, done = [], ""
    for i, m in enumerate(conv):
        if m["role"] != "assistant":
            continue
        before = model.apply_chat_template(conv[:i], add_generation_prompt=True) if i else ""
        upto = model.apply_chat_template(conv[:i + 1], add_generation_prompt=False)
        if not before.startswith(done) or not upto.startswith(before):
            raise DataError("this chat template rewrites earlier turns when a turn is added, so "
                            "the answer tokens cannot be located; train on prompt/response records")
        pieces += [(before[len(done):], False), (upto[len(before):], True)]
        done = upto
    return [(t, taught) for t, taught in pieces if t]


def encode(model, record: dict, number: int = 0) -> Example:
    """Token ids and the taught-mask for one record (no truncation here)."""
    ids, taught, said = [], [], ""
    for k, (text, is_answer) in enumerate(_segments(model, to_messages(record, number))):
        piece = model.prompt_ids(text) if k == 0 else model.tokenize(text)
        ids += piece
        taught += [is_answer] * len(piece)
        if is_answer:
            said += text.replace(model.eos_token, "") if model.eos_token else text
    return Example(ids, taught, empty=not said.strip())


def encode_all(model, records, max_len: int) -> list[Example]:
    """Encode every record; truncate long ones on the right, with one warning.

    We truncate rather than refuse: a few long answers should not stop a run. An example
    whose prompt alone fills `max_len` teaches nothing and is dropped, and so is one whose
    answer is blank; if nothing is left to teach, that is an error, not a silent no-op.
    """
    records = list(records)
    if not records:
        raise DataError("no training records were given; pass a non-empty list (or JSONL file)")
    examples, cut, dropped, blank = [], 0, 0, 0
    for i, r in enumerate(records):
        ex = encode(model, r, i)
        if ex.empty:
            blank += 1
            continue
        if len(ex.ids) > max_len:
            cut += 1
            ex = Example(ex.ids[:max_len], ex.taught[:max_len])
        # the first token is never a target: nothing comes before it
        if not any(ex.taught[1:]):
            dropped += 1
            continue
        examples.append(ex)
    if cut:
        warnings.warn(f"{cut} of {len(records)} examples were longer than max_len={max_len} tokens "
                      f"and were cut on the right ({dropped} lost every answer token and were "
                      f"dropped); raise max_len to keep them whole", stacklevel=3)
    if blank and examples:
        warnings.warn(f"{blank} of {len(records)} records have an empty answer and were skipped",
                      stacklevel=3)
    if not examples:
        raise DataError(f"none of the {len(records)} records has an answer token to learn from "
                        f"(empty responses, or prompts that fill max_len={max_len}); check the "
                        f"'response'/'output' fields or raise max_len")
    return examples


# --- batching -------------------------------------------------------------------------

def plan_batches(lengths: list[int], batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """The whole run's micro-batches (lists of example indices), fixed by the seed.

    The plan is computed up front, so a resumed run can skip exactly the batches it has
    already trained on.
    """
    plan = []
    for epoch in range(epochs):
        rng = random.Random(f"{seed}:{epoch}")
        order = list(range(len(lengths)))
        rng.shuffle(order)
        window = batch_size * 16
        batches = []
        for w in range(0, len(order), window):
            chunk = sorted(order[w:w + window], key=lambda i: lengths[i])
            batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        plan += batches
    return plan


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels (the next token where it is taught,
    IGNORE elsewhere): labels[t] is the target of the prediction made at position t."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.ids)
        ids[row, :n] = torch.tensor(e.ids)
        mask[row, :n] = 1
        targets = torch.tensor(e.ids[1:])
        taught = torch.tensor(e.taught[1:], dtype=torch.bool)
        labels[row, :n - 1] = torch.where(taught, targets, torch.full_like(targets, IGNORE))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
