"""Training: the small loops the labs use, in plain PyTorch.

    from synthkit import load_model
    from synthkit.train import sft, to_llamacpp
    student = load_model(backend="torch")
    run = sft(student, records)          # trains `student` in place; run.losses, run.tokens_per_s
    fast = to_llamacpp(student)          # the trained weights on llama.cpp, for fast sampling

Modules: `data` (records -> taught tokens -> batches), `loop` (the one training loop,
`run`, with its precision, schedule, resume, evaluation, checkpoints and errors), and the
methods that hand it their batches, loss and result fields: `sft` (fine-tuning), `kd`
(distillation), `dpo` (preference pairs), `tiny` (a small GPT trained from scratch: tokenizer,
model, pretraining, perplexity, sampling); `export` (GGUF for llama.cpp).
"""
from .data import DataError
from .dpo import DPOResult, dpo, dpo_loss
from .export import export_gguf, to_llamacpp
from .kd import KDResult, kd_loss, train_student
from .loop import TrainingError, pick_precision
from .sft import SFTResult, sft
from .tiny import TinyConfig, TinyGPT, TinyRun, pretrain

__all__ = ["sft", "SFTResult", "train_student", "KDResult", "kd_loss", "to_llamacpp", "export_gguf",
           "pick_precision", "TrainingError", "DataError", "dpo", "DPOResult", "dpo_loss",
           "pretrain", "TinyRun", "TinyConfig", "TinyGPT"]
