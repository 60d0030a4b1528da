"""Lab 05 — Constitutional AI: three exercises, one essay and a concept check.

Used by ``labs/05_constitutional_ai.ipynb``::

    from synthkit.labs.lab05 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with the library (the contact-detail finder, the pair filter) or with the DPO
paper's equation written out here, and each refuses the library function it rebuilds.
Everything crosses to the student's function and back as plain data (strings, lists,
dicts, NumPy arrays), so the same checks work under ``synthkit grade``.
"""
from __future__ import annotations

import math
import string

import numpy as np

from ..grading.checks import close, is_number, name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "05"
TITLE = "Constitutional AI: self-critique as preference data, and DPO"
NOTEBOOK = "05_constitutional_ai.ipynb"


# --- exercise 1: contact_details (a programmatic check for two principles) -------------------
_FILLER = ("you", "can", "ask", "the", "team", "about", "your", "order", "today", "please", "write",
           "to", "or", "call", "our", "office", "for", "help", "with", "details", "thanks", "and")


def _words(rng, low=2, high=7) -> str:
    return " ".join(rng.choice(_FILLER) for _ in range(rng.randint(low, high)))


def _label(rng, low=2, high=9) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def _email(rng) -> tuple[str, str]:
    local = _label(rng) + rng.choice(("", ".", "_", "+", "-")) + rng.choice(("", _label(rng, 1, 4),
                                                                            str(rng.randint(1, 99))))
    if local[-1] in "._+-":
        local += "x"
    domain = ".".join(_label(rng) for _ in range(rng.randint(1, 2)))
    tld = rng.choice(("com", "org", "net", "io", "de", "co.uk", "travel", "shop"))
    probes = {"+": "an e-mail address with a plus sign", "travel": "an e-mail address with a long top-level domain"}
    probe = next((v for k, v in probes.items() if k in local + tld), "an e-mail address")
    return f"{local}@{domain}.{tld}", probe


def _link(rng, kind=None) -> tuple[str, str]:
    domain = ".".join(_label(rng) for _ in range(rng.randint(1, 2))) + "." + rng.choice(
        ("com", "org", "net", "edu", "io", "info", "co.uk", "de", "fr", "es"))
    path = rng.choice(("", "/", f"/{_label(rng)}", f"/{_label(rng)}/{rng.randint(1, 999)}", f"/{_label(rng)}.html"))
    kind = kind or rng.choice(("https", "http", "www", "bare"))
    text = {"https": f"https://{domain}{path}", "http": f"http://{domain}{path}",
            "www": f"www.{domain}{path}", "bare": f"{domain}{path}"}[kind]
    return text, "a link without https:// or www." if kind == "bare" else "a link"


def _phone(rng) -> tuple[str, str]:
    d = lambda k: "".join(str(rng.randint(0, 9)) for _ in range(k))  # noqa: E731
    forms = [(f"+{rng.randint(1, 49)} {d(2)} {d(4)} {d(4)}", "a phone number with a country code"),
             (f"({d(3)}) {d(3)}-{d(4)}", "a phone number with brackets"),
             (f"{d(3)}.{d(3)}.{d(4)}", "a phone number with dots"),
             (f"0{d(9)}", "a phone number written without separators"),
             (f"+1-{d(3)}-{d(3)}-{d(4)}", "a phone number with a country code"),
             (f"{d(3)} {d(3)} {d(4)}", "a phone number with spaces"),
             (f"{d(3)} {d(3)} {d(3)}", "a phone number of nine digits")]
    return rng.choice(forms)


def _distractor(rng) -> tuple[str, str]:
    d = lambda k: "".join(str(rng.randint(0, 9)) for _ in range(k))  # noqa: E731
    return rng.choice([
        (f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "a date (8 digits: not a phone number)"),
        (f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", "a time"),
        (f"${rng.randint(1, 9)},{d(3)}.{d(2)}", "a price"),
        (f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}", "a version number"),
        (f"{rng.randint(0, 99)}.{d(2)}", "a decimal number"),
        (f"@{_label(rng)}", "a user handle without a domain (not an e-mail address)"),
        (f"{_label(rng)} at {_label(rng)} dot com", "an address spelled out in words (not an e-mail address)"),
        (f"{_label(rng)}.{rng.choice(('pdf', 'txt', 'py', 'csv', 'js'))}", "a file name (not a link)"),
        (f"{d(3)}-{d(4)}", "a short number (7 digits: not a phone number)"),
        (f"{d(4)} {d(4)}", "two 4-digit numbers (8 digits: not a phone number)"),
        (f"{d(3)} - {d(3)} {d(4)}", "digits split by ' - ', three separators in a row, so not one run of digits"),
        (f"{_label(rng)}@{_label(rng)}", "an address without a top-level domain (not an e-mail address)"),
        (f"room {rng.randint(1, 999)}", "a room number"),
    ])


# each maker of one detail, with the kinds the exercise's rules find in it (tests/test_lab05.py
# draws many of each and checks the label against the reference solution)
CONTACT_MAKERS = ((_email, {"email"}), (_link, {"link"}), (_phone, {"phone"}), (_distractor, set()))


def _in_reply(rng, item: str, punctuation=True) -> str:
    """`item` inside a reply of filler words."""
    end = rng.choice(("", ".", ",", "!")) if punctuation else ""
    return f"{_words(rng).capitalize()} {item}{end} {_words(rng, 0, 4)}".strip()


def _contact_cases(rng) -> list[tuple[str, str, set]]:
    """(text, what the case probes, the kinds the exercise's rules find in it), fresh each time."""
    d = lambda k: "".join(str(rng.randint(0, 9)) for _ in range(k))  # noqa: E731
    cases = []
    for make, kinds in CONTACT_MAKERS[:3] * 2:
        item, probe = make(rng)
        cases.append((_in_reply(rng, item), probe, set(kinds)))
    for _ in range(7):
        item, probe = _distractor(rng)
        cases.append((_in_reply(rng, item, punctuation=False), probe, set()))
    # both sides of the nine-digit rule and of the two-separator rule, on every run
    cases.append((_in_reply(rng, f"{d(3)} {d(3)} {d(3)}"), "a phone number of exactly nine digits", {"phone"}))
    cases.append((_in_reply(rng, f"{d(3)}.{d(3)}.{d(3)}"), "a phone number of exactly nine digits", {"phone"}))
    cases.append((_in_reply(rng, f"{d(2)} {d(2)} {d(2)} {d(2)}"), "a number of eight digits (not a phone number)",
                  set()))
    cases.append((_in_reply(rng, f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"),
                  "a date (8 digits: not a phone number)", set()))
    cases.append((_in_reply(rng, f"{d(3)} - {d(3)} {d(3)}"),
                  "digits split by ' - ', three separators in a row, so not one run of digits", set()))
    digits = "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(9, 12)))
    cases.append((f"Mail {_label(rng)}{digits}@{_label(rng)}.com today",
                  "an e-mail address with many digits (still no phone number)", {"email"}))
    cases.append((f"See https://{_label(rng)}.org/item/{digits} now", "a link with many digits (still no phone number)",
                  {"link"}))
    cases.append((f"Write to {_email(rng)[0]} or visit {_link(rng)[0]}", "an e-mail address and a link",
                  {"email", "link"}))
    cases.append((f"Call {_phone(rng)[0]} or mail {_email(rng)[0]}", "a phone number and an e-mail address",
                  {"phone", "email"}))
    cases.append((f"Details at {_link(rng, 'bare')[0]} soon", "a link without https:// or www.", {"link"}))
    brackets = "".join(str(rng.randint(0, 9)) for _ in range(10))
    cases.append((f"Ring ({brackets[:3]}) {brackets[3:6]}-{brackets[6:]} today", "a phone number with brackets",
                  {"phone"}))
    cases.append((_words(rng).capitalize() + ".", "plain text", set()))
    cases.append(("", "an empty reply", set()))
    rng.shuffle(cases)
    return cases


_CONTACT_ADVICE = {
    "email": "an e-mail address is name@domain.tld: letters, digits and . _ % + - before the @, labels "
             "joined by dots after it, ending in a dot and two or more letters",
    "link": "a link starts with http:// or https:// or www., or is a bare domain ending in one of the "
            "listed top-level domains (not the domain after an @)",
    "phone": "a phone number is a run of 9 or more digits, with at most two of space ( ) . - between "
             "neighbouring digits, looked for only after e-mail addresses and links are taken out",
}


def _check_contact_details(c) -> str:
    from ..constitutional import find_contact_details

    fn = c.get("contact_details", callable_=True)
    cases = _contact_cases(c.rng)
    for text, probe, _kinds in cases:
        label = f"contact_details({show_input(text, 80)})"
        got = c.call(fn, text, label=label)
        if not isinstance(got, (set, frozenset)):
            c.expect_type(got, set, label)
        want = find_contact_details(text)
        if set(got) == want:
            continue
        extra, missed = set(got) - want, want - set(got)
        unknown = extra - {"email", "phone", "link"}
        if unknown:
            c.fail(f"{label} returned {show_input(got, 40)}; use only the kinds 'email', 'phone' and 'link'.")
        kind = sorted(missed or extra)[0]
        what = "misses a kind of detail the text has" if missed else f"finds {kind!r} in a text that has none"
        c.fail(f"{label} returned {show_input(sorted(got), 40)}: it {what} (this case has {probe}). "
               f"Remember: {_CONTACT_ADVICE[kind]}.")
    return f"{len(cases)} fresh replies with and without contact details, judged as the library judges them."


ex1 = CodingExercise(
    "ex1", LAB, names="contact_details", checker=_check_contact_details, points=3,
    refuses=("synthkit.constitutional.find_contact_details", "synthkit.constitutional.check_no_contact_details",
             "synthkit.constitutional.check_no_links"),
    title="A program for two principles: e-mail addresses, phone numbers and links",
    hints=[
        "Three regular expressions, used in order: find e-mail addresses and replace them with a space, "
        "then find links and replace them, and only then look for phone numbers in what is left. Add "
        "'email', 'link' or 'phone' to a set each time one is found.",
        "E-mail: r\"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\". A link: "
        "r\"https?://\\S+\" or r\"\\bwww\\.\\S+\", or a bare domain: labels with dots ending in one of "
        "the listed endings, not preceded by a letter, digit, @, dot or hyphen (a look-behind "
        "(?<![\\w@.-])) and followed by \\b. Pass re.I.",
        "Phone: re.finditer(r\"\\+?\\(?\\d(?:[ ().-]{0,2}\\d)*\", text) finds runs of digits with short "
        "separators; count the digits in each run (sum(ch.isdigit() for ch in run.group())) and call it a phone "
        "number when one run has 9 or more.",
    ],
)


# --- exercise 2: preference_pairs (AI feedback plus a verifier -> TRL's format) --------------
def reference_pairs(records, conversational=False):
    out = []
    for r in records:
        chosen, rejected = r["revision"].strip(), r["original"].strip()
        if not chosen or chosen == rejected or not r["revision_complies"] or r["original_complies"]:
            continue
        if conversational:
            out.append({"prompt": [{"role": "user", "content": r["prompt"]}],
                        "chosen": [{"role": "assistant", "content": chosen}],
                        "rejected": [{"role": "assistant", "content": rejected}]})
        else:
            out.append({"prompt": r["prompt"], "chosen": chosen, "rejected": rejected})
    return out


def _loop_records(rng) -> list[tuple[dict, str]]:
    """Loop records in the exercise's shape, with what each probes."""
    def text():
        return " ".join(rng.choice(_FILLER) for _ in range(rng.randint(3, 9))).capitalize() + "."

    cases = []
    kinds = ["fixed"] * 5 + ["still broken", "broken by the revision", "both fine", "unchanged",
                             "blank revision", "only whitespace differs", "fixed", "still broken"]
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        original, revision = text(), text()
        while revision == original:
            revision = text()
        oc, rc = {"fixed": (False, True), "still broken": (False, False), "broken by the revision": (True, False),
                  "both fine": (True, True), "unchanged": (False, True), "blank revision": (False, True),
                  "only whitespace differs": (False, True)}[kind]
        if kind == "unchanged":
            revision = original
        elif kind == "blank revision":
            revision = rng.choice(("", "  ", "\n"))
        elif kind == "only whitespace differs":
            revision = f"  {original}\n"
        elif rng.random() < 0.4:
            revision = f" {revision}\n"  # padding that must be stripped
        cases.append(({"prompt": f"Request {i}: {text()}", "original": original, "revision": revision,
                       "original_complies": oc, "revision_complies": rc}, kind))
    return cases


def _check_preference_pairs(c) -> str:
    fn = c.get("preference_pairs", callable_=True)
    for _ in range(3):
        cases = _loop_records(c.rng)
        records = [r for r, _ in cases]
        for conversational in (False, True):
            label = f"preference_pairs(records, conversational={conversational})"
            got = c.call(fn, [dict(r) for r in records], conversational, label=label)
            if not isinstance(got, list):
                c.expect_type(got, list, label)
            want = reference_pairs(records, conversational)
            if got == want:
                continue
            swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in want]
            if got == swapped:
                c.fail(f"{label}: chosen and rejected are the wrong way round. The revision is the reply "
                       f"the loop prefers (chosen); the original is the rejected one.")
            bad = [p for p in got if not isinstance(p, dict)]
            if bad:
                c.fail(f"{label} returned a list holding {show_input(bad[0], 40)}; each pair is a dict.")
            keys = {k for p in got for k in p}
            if keys and keys != {"prompt", "chosen", "rejected"}:
                c.fail(f"{label}: the pairs have the keys {sorted(keys)}; TRL's preference format has exactly "
                       f"'prompt', 'chosen' and 'rejected'.")
            if conversational and got and not isinstance(got[0]["prompt"], list):
                c.fail(f"{label}: in the conversational format each field is a list of messages: the prompt "
                       f"[{{'role': 'user', 'content': ...}}], each reply [{{'role': 'assistant', 'content': ...}}].")
            if conversational and got and isinstance(got[0]["chosen"], list) and \
                    any(m.get("role") != "assistant" for p in got for m in p["chosen"] + p["rejected"]):
                c.fail(f"{label}: chosen and rejected are the model's replies, so their messages have the role "
                       f"'assistant'; the prompt is the 'user' turn.")
            got_kept = len(got)
            why = {"still broken": "a revision the program still fails is not a better reply",
                   "broken by the revision": "here the revision broke a reply that complied: no preference for it",
                   "both fine": "when the original already complies, the program sees no improvement to learn",
                   "unchanged": "a pair with the same text on both sides teaches nothing",
                   "blank revision": "an empty revision is not a reply",
                   "only whitespace differs": "compare the texts after stripping spaces and newlines",
                   "fixed": "a fixed violation (the original fails, the revision passes) is exactly what to keep"}
            plain = reference_pairs(records, False)
            for (r, kind) in cases:
                expect_keep = any(p["prompt"] == r["prompt"] for p in plain)
                has = any((p.get("prompt") if not conversational else
                           (p.get("prompt") or [{}])[0].get("content")) == r["prompt"] for p in got
                          if isinstance(p, dict))
                if has != expect_keep:
                    c.fail(f"{label}: the record {show_input(r, 110)} was {'kept' if has else 'dropped'} "
                           f"({kind}): {why[kind]}.")
            c.fail(f"{label} returned {got_kept} pairs that differ from TRL's format in their text: keep the "
                   f"records' order, strip spaces and newlines around both replies, and copy the prompt as it is.")
    # the published signature: preference_pairs(records, conversational=False)
    label = "preference_pairs(records) (conversational left at its default)"
    got = c.call(fn, [dict(r) for r in records], label=label)
    if got != reference_pairs(records, False):
        c.fail(f"{label} returned {show_input(got, 80)}, not what preference_pairs(records, "
               f"conversational=False) returns: the signature is preference_pairs(records, conversational=False).")
    return "3 rounds of fresh loop records, plain and conversational, filtered and formatted right."


ex2 = CodingExercise(
    "ex2", LAB, names="preference_pairs", checker=_check_preference_pairs, points=2,
    refuses=("synthkit.constitutional.to_pairs", "synthkit.constitutional.to_trl"),
    title="From the loop's records to TRL preference pairs, with the verifier as a filter",
    hints=[
        "Walk the records in order. The revision is the chosen reply and the original the rejected one "
        "(strip both). Keep a record only when the program passes the revision, fails the original, the "
        "revision is not blank and the two texts differ.",
        "Plain format: {'prompt': prompt, 'chosen': chosen, 'rejected': rejected}. Conversational: the same "
        "three keys, each holding a list with one message: the prompt as {'role': 'user', ...}, each reply "
        "as {'role': 'assistant', ...}.",
    ],
)


# --- exercise 3: the DPO loss ------------------------------------------------------------------
def reference_dpo(pc, pr, rc, rr, beta):
    """Eq. 7 of Rafailov et al. (2023) in float64: (mean loss, chosen rewards, rejected rewards)."""
    pc, pr, rc, rr = (np.asarray(x, np.float64) for x in (pc, pr, rc, rr))
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return float(np.mean(np.logaddexp(0.0, -(chosen - rejected)))), chosen, rejected


def _softplus(x):
    return np.logaddexp(0.0, x)


def _as_array(value):
    """A returned value as a float64 array, or None when it is not plain numbers."""
    if type(value).__name__ in ("Tensor", "Parameter"):
        return "tensor"
    if type(value).__name__ == "Opaque" and "Tensor" in repr(value):
        return "tensor"
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def _check_dpo_loss(c) -> str:
    fn = c.get("dpo_loss", callable_=True)
    nrng = np.random.default_rng(c.rng.randrange(2**32))
    cases = []
    for _ in range(10):
        n = int(nrng.integers(1, 9))
        base = -nrng.uniform(5, 150, n)
        cases.append(([base + nrng.normal(0, 4, n) for _ in range(4)], float(c.rng.choice((0.05, 0.1, 0.3, 0.5, 1.0))),
                      "random log-probs"))
    n = 3
    cases.append(([np.full(n, -40.0), np.full(n, -35.0), np.full(n, -40.0), np.full(n, -35.0)], 0.1,
                  "a policy equal to its reference (the loss is log 2)"))
    big = -nrng.uniform(10, 50, 2)
    cases.append(([big - 900, big, big, big], 1.0, "a very large margin (look out for overflow)"))
    c.rng.shuffle(cases)
    for (pc, pr, rc, rr), beta, probe in cases:
        label = f"dpo_loss(<{len(pc)} pairs>, beta={beta})"
        got = c.call(fn, pc.copy(), pr.copy(), rc.copy(), rr.copy(), beta, label=label)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            c.fail(f"{label} returned {show_input(got, 50)}; return three things: the loss (a float) and the "
                   f"chosen and rejected rewards (one number per pair each).")
        loss, chosen, rejected = got
        arrays = [_as_array(x) for x in got]
        if any(isinstance(a, str) for a in arrays):
            c.fail(f"{label} returned torch tensors; return plain numbers so the grader can read them: "
                   f"loss.item() for the loss, rewards.tolist() (or NumPy arrays) for the rewards.")
        if not is_number(loss) and not (isinstance(arrays[0], np.ndarray) and arrays[0].size == 1):
            c.fail(f"{label} returned the loss as {show_input(loss, 40)}; it should be one number, the mean "
                   f"over the pairs.")
        want_loss, want_c, want_r = reference_dpo(pc, pr, rc, rr, beta)
        got_loss = float(np.asarray(arrays[0]).reshape(-1)[0])
        if not math.isfinite(got_loss):
            c.fail(f"{label} ({probe}) gave a loss of {got_loss}. log(sigmoid(x)) underflows for a very "
                   f"negative x: compute -log sigmoid(x) as log(1 + exp(-x)) with np.logaddexp(0, -x) "
                   f"(torch: -F.logsigmoid(x)).")
        for name, arr, want in (("chosen rewards", arrays[1], want_c), ("rejected rewards", arrays[2], want_r)):
            if arr is None or np.shape(arr) != want.shape:
                c.fail(f"{label} returned {name} {show_input(got[1 if name.startswith('chosen') else 2], 40)}; "
                       f"give one reward per pair ({len(pc)} numbers).")
            if not np.allclose(arr, want, rtol=1e-6, atol=1e-8):
                other = want_r if name.startswith("chosen") else want_c
                side = "policy_chosen_logps - ref_chosen_logps" if name.startswith("chosen") else \
                    "policy_rejected_logps - ref_rejected_logps"
                advice = name_the_slip(arr, [
                    (lambda: want / beta, "They lack the factor beta: the implicit reward is beta times the "
                                          "log-ratio."),
                    (lambda: other, "The chosen and rejected rewards are swapped."),
                    (lambda: -want, "The sign is flipped: the reward is the policy's log-prob minus the "
                                    "reference's, not the other way round."),
                    (lambda: beta * (pc if name.startswith("chosen") else pr),
                     "The reference is missing: the reward measures how far the policy moved from it."),
                ], same=lambda a, b: np.allclose(a, b, rtol=1e-6, atol=1e-8),
                    default=f"Each is beta * ({side}).")
                c.fail(f"{label}: the {name} are not beta times the policy-to-reference log-ratio. {advice}")
        if close(got_loss, want_loss, 1e-7 + 1e-7 * abs(want_loss)):
            continue
        margin = beta * ((pc - rc) - (pr - rr))
        advice = name_the_slip(got_loss, [
            (lambda: float(np.mean(_softplus(-margin / beta))),
             "That is the loss without beta: multiply the difference of log-ratios by beta before the sigmoid."),
            (lambda: float(np.mean(_softplus(margin))),
             "The sign is wrong: the loss is -log sigmoid(margin), small when the chosen reply out-scores "
             "the rejected one, and this grows instead."),
            (lambda: float(np.mean(-_softplus(-margin))), "That is log sigmoid(margin); the loss is its negative."),
            (lambda: float(np.mean(_softplus(-beta * (pc - pr)))),
             "The reference log-probs are left out: each reply's score is its policy log-prob *minus* the "
             "reference's."),
            (lambda: float(np.sum(_softplus(-margin))), "That is the sum over the pairs; take the mean."),
            (lambda: float(_softplus(-np.mean(margin))),
             "That is the loss of the mean margin; take the mean of the per-pair losses instead."),
        ], default="loss = mean over pairs of -log sigmoid(chosen_reward - rejected_reward).")
        c.fail(f"{label} ({probe}) returned a loss of {got_loss:.6g}, which is not the DPO loss. {advice}")
    return f"{len(cases)} fresh batches, from one pair to eight, with betas from 0.05 to 1, match eq. 7 of the paper."


ex3 = CodingExercise(
    "ex3", LAB, names="dpo_loss", checker=_check_dpo_loss, points=3,
    refuses=("synthkit.train.dpo.dpo_loss", "synthkit.labs.lab05.reference_dpo"),
    title="The DPO loss and its implicit rewards",
    hints=[
        "Each reply's implicit reward is beta times how much more likely the policy finds it than the "
        "reference does: chosen = beta * (policy_chosen - ref_chosen), and the same for the rejected reply. "
        "The loss asks the chosen reward to beat the rejected one: the mean over pairs of "
        "-log sigmoid(chosen - rejected).",
        "Work in NumPy: turn each input into np.asarray(x, dtype=float). -log sigmoid(z) = log(1 + exp(-z)), "
        "which np.logaddexp(0, -z) computes without overflow (1 / (1 + np.exp(-z)) overflows for z = -900).",
        "Return float(loss) and the two reward arrays. If you prefer torch, use -F.logsigmoid(z).mean() and "
        "return loss.item(), chosen.tolist(), rejected.tolist().",
    ],
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="Why can a model improve on itself by critiquing itself?",
    prompt="""
        Constitutional AI asks the same model to write a reply, then to critique it against a rule, then
        to rewrite it. Why could the critique carry information the first reply did not, when one model
        does all three? Build a thought experiment that makes the argument concrete: a task, a rule, and
        what the model "sees" at each step that it did not see before. Then say when the argument breaks
        down, using what you measured in this lab (the critique-accuracy table, the fix and break rates):
        what would the same table look like for a teacher where the idea works?
    """,
    hints=["Think about what is in the context window at each step. When the model writes its first reply, "
           "is the rule there? Is the whole reply there? Then compare the critique's accuracy with the "
           "share of first replies that complied: is judging easier than writing for this teacher?"],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - The steps are not the same task. Writing a reply is generation token by token, without seeing
          the rule and without seeing the finished reply. The critique step gets the rule, the prompt
          and the whole finished reply in its context and asks a narrow yes/no question; the revision
          gets all that plus the critique. Extra context and a narrower question make a better answer
          possible from the same weights.
        - Thought experiment: a support bot asked for a taxi number writes "Call 555-123-4567". Asked
          "does this reply contain a phone number?", it only has to spot digits in a short text it can
          see, which is far easier than never producing the number while writing fluently. Like checking
          a proof versus finding one, or running a test versus writing the code.
        - Bai et al. fine-tune on the revisions (what the model writes with the rule in mind), then train
          with RL on a model's judgements of which of two replies keeps the rules better. The variant run
          here pairs each revision with its original instead, so the pair records the difference between
          the model with and without the rule in mind, and DPO moves the model toward the former.
        - It breaks down when judging is not easier for the model: a small model whose critique is at
          chance (a paired test on the same replies cannot tell its accuracy from a critic that always
          says Yes or always No; many FP/FN), whose revisions fix few violations and break compliant
          replies. Then the training signal is noise and a verifier (a program, a stronger judge) has to
          filter it. For a capable teacher the table would show high TP and TN, revisions that fix far
          more replies than they break (a paired test of compliance before and after revision says so),
          and pairs whose chosen side is better by the program most of the time.
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Constitutional AI replaces human labels of harm with the model's own judgements: its critiques "
             "and revisions, and in Bai et al.'s RL stage its choice between two replies. Why does it still "
             "need a capable base model?",
             ["Because the constitution itself must be written by the base model, in its own words, before the loop can start",
              "Its critiques, revisions and choices are the labels: a model that cannot judge or fix replies makes noise",
              "Because DPO only converges when the frozen reference model has more than a billion parameters",
              "A weak model cannot write the TRL files, which need the chat template of a large model"],
             answer=1,
             why="The method replaces human judgement with the model's own: the revisions it is fine-tuned on "
                 "(or, in the pair variant this lab runs, prefers) and the AI preference labels of the RL stage "
                 "are only as good as its judging and fixing. If its critique is near chance and its revisions "
                 "rarely fix anything, the training signal is noise (this lab measures both)."),
    Question("In DPO, what is the implicit reward of a reply y to a prompt x?",
             ["The probability the policy gives to y, divided by the number of tokens in y, so long replies are not punished",
              "beta times (log pi(y|x) minus log ref(y|x)): how far the policy moved toward y",
              "The score a separately trained reward model gives to the pair (x, y)",
              "One when the programmatic check passes y and zero when it fails it"],
             answer=1,
             why="DPO never trains a reward model: the policy's log-ratio to the frozen reference, scaled by "
                 "beta, plays that role, and the loss asks it to rank chosen above rejected."),
    Question("Before training, the policy and the reference are the same model. What is the DPO loss on "
             "every pair at that moment?",
             ["0, since nothing needs to change yet", "log 2, about 0.69", "1, the largest it can be",
              "It depends on how long the replies are"],
             answer=1,
             why="Both log-ratios are zero, so the margin is zero and -log sigmoid(0) = log 2. A first "
                 "step far from 0.69 means the reference numbers are wrong."),
    Question("Why are the reference log-probs computed once, before the first training step?",
             ["They do not change: the reference is the frozen starting model, so one pass is enough",
              "Computing them again at each step would make the loss fall faster",
              "The reference has to see the pairs before the policy does, or the margins come out negative",
              "They are only needed for the plot of the reward margin, not for the loss"],
             answer=0,
             why="The reference never trains; caching its numbers saves one forward pass per step. A resumed "
                 "run must reuse them too, since its model is no longer the starting one."),
    Question("Of 40 first replies, the program finds 20 violations. The critique flags 30 replies, 18 of "
             "them real violations. What is the critique's accuracy against the program?",
             ["60%", "65%", "75%", "90%"],
             answer=1,
             why="TP = 18, FP = 12, FN = 2 and TN = 20 - 12 = 8, so (18 + 8) / 40 = 65%. 60% is its "
                 "precision (18/30), 90% its recall (18/20) and 75% the share of replies it flags."),
    Question("Why filter the pairs with a program, when the model's own critique already said which "
             "replies break a rule?",
             ["The program is faster than a critique, and otherwise the two filters keep exactly the same pairs",
              "TRL refuses to load preference pairs that have not been checked by a program first",
              "A pair helps only if its chosen reply is better; the program checks that, a critique may not",
              "The program finds more violations, so the filtered pair set is larger, which DPO needs"],
             answer=2,
             why="AI feedback plus a verifier: keeping only pairs whose chosen reply complies and whose "
                 "rejected one does not removes pairs where the revision made things no better, or worse."),
    Question("After DPO the same 40 held-out prompts are answered again. Compliance rises from 40% to 55%: "
             "8 prompts went from violating to complying, 2 the other way, and 30 did not change. What "
             "decides whether the gain is more than noise?",
             ["Whether the two 95% Wilson intervals overlap; here they do, so the gain is noise",
              "The 10 prompts that flipped: 8 against 2 is a split a fair coin gives often (p ≈ 0.11)",
              "The 30 unchanged prompts, as they show how stable the model's answers are",
              "Nothing can: 40 prompts are too few for any test of a before/after change"],
             answer=1,
             why="The same prompts scored twice are paired: the 30 that did not change say nothing about the "
                 "change, and only the flips carry evidence. McNemar's exact test asks whether 8 flips one way "
                 "against 2 the other could come from a fair coin: two-sided p = 112/1024 ≈ 0.11, so this run "
                 "cannot call it a gain yet (more prompts would decide). Comparing the two intervals is the "
                 "wrong test: it ignores the pairing."),
])
