"""The channel between the grader and a student's kernel: plain data only.

``synthkit grade`` never runs its checks in the student's kernel, where any cell could
patch them. The checks run in the grader's own process; when one calls a student's
function (``Checker.call``), the call travels to the kernel, the function runs there, and
what comes back is *data*: the return value encoded as tagged JSON (None, bool, int,
float, str, bytes, list, tuple, dict, set, numpy scalars and arrays), decoded in the
grader with ``json.loads`` and nothing else. An object of any other type arrives as an
inert stand-in of the grader's own making (``Opaque``) that equals nothing, so a
student's class with ``__eq__`` always True compares as false. Patching ``json``,
``importlib``, ``sys.stdout``, the checks or the exercises module in the kernel can at
most change what a student's function seems to return, which is no more than writing
that function: the verdict is made where their code cannot reach. The grader also keeps
the clock: a call that does not answer in time is interrupted, then the kernel killed.

Two halves:

- kernel side, ``serve(namespace, request)``: runs one request (an inventory of the
  names the checks need, or one call) and returns the encoded answer;
- grader side, ``KernelSandbox`` (a connection to the kernel, ``request`` under a
  deadline) and ``RemoteNamespace`` (what the checks see as the student's namespace:
  values as data, functions as ``RemoteFunction``).

Arguments go the other way pickled (the grader's data, unpickled in the student's
process, so no trust is needed there). Objects that cannot be pickled, such as a loaded
model, travel as a recipe: ``by_reference`` marks a zero-argument factory whose result is
rebuilt in the kernel by calling the same factory there.
"""
from __future__ import annotations

import ast
import base64
import functools
import io
import json
import os
import pickle
import re
import signal
import time
from typing import Any, Callable

from .checks import refusal_message, refusing
from .outcomes import Failed, Missing, Raised, Stopped, TooSlow, _Alarm, time_limit

MAX_REPLY_CHARS = 50_000_000
MAX_DEPTH = 60
_REFERENCES: dict[int, tuple[str, str, Any]] = {}  # id(object) -> (module, factory name, object)


def by_reference(factory: Callable[[], Any]) -> Callable[[], Any]:
    """Decorate a zero-argument factory of an object a check passes to a student's function
    (a loaded model, say): in another process it is rebuilt by calling the factory there."""

    @functools.wraps(factory)
    def wrapper():
        obj = factory()
        _REFERENCES[id(obj)] = (factory.__module__, factory.__qualname__, obj)
        return obj

    return wrapper


# --- encoding values as plain data ----------------------------------------------------------
class Opaque:
    """What the grader gets for an object that is not plain data: its type's name and a
    short repr, and no behaviour. It equals only itself."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text or f"<{self.type_name} object>"

    def __eq__(self, other) -> bool:
        return self is other

    __hash__ = object.__hash__


@functools.lru_cache(maxsize=256)
def _opaque_class(type_name: str) -> type:
    """A class named after the student's type, so feedback reads 'returned a Foo'."""
    name = re.sub(r"\W", "_", type_name)[:60] or "object"
    if not name.isidentifier():
        name = "_" + name
    return type(name, (Opaque,), {})


def encode(value, depth: int = 0):
    """`value` as JSON-able data (runs in the student's process)."""
    import numpy as np

    if depth > MAX_DEPTH:
        return {"$t": "obj", "type": type(value).__name__, "repr": "(nested too deeply)"}
    if value is None or type(value) in (bool, str) or (type(value) is float):
        return value
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (np.bool_,)):
        return {"$t": "np.bool", "v": bool(value)}
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return {"$t": "bytes", "v": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"$t": "tuple", "v": [encode(v, depth + 1) for v in tuple.__iter__(value)]}
    if isinstance(value, dict):
        return {"$t": "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    if isinstance(value, (set, frozenset)):
        tag = "set" if isinstance(value, set) else "frozenset"
        return {"$t": tag, "v": [encode(v, depth + 1) for v in (set.__iter__(value) if tag == "set"
                                                                  else frozenset.__iter__(value))]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":
        return {"$t": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "v": encode(value.tolist(), depth + 1)}
    try:
        text = repr(value)[:200]
    except Exception:  # noqa: BLE001 - a repr that raises still gets a stand-in
        text = ""
    return {"$t": "obj", "type": type(value).__name__, "repr": text}


def decode(data):
    """Plain data back into values (runs in the grader: builds only built-in types, numpy
    arrays of numbers or text, and ``Opaque`` stand-ins)."""
    import numpy as np

    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise ValueError(f"unexpected {type(data).__name__} in a reply")
    tag = data.get("$t")
    if tag == "tuple":
        return tuple(decode(v) for v in data["v"])
    if tag == "dict":
        return {_hashable(decode(k)): decode(v) for k, v in data["v"]}
    if tag in ("set", "frozenset"):
        items = [_hashable(decode(v)) for v in data["v"]]
        return set(items) if tag == "set" else frozenset(items)
    if tag == "bytes":
        return base64.b64decode(data["v"])
    if tag == "np.bool":
        return np.bool_(bool(data["v"]))
    if tag == "ndarray":
        dtype = np.dtype(str(data["dtype"]))
        if dtype.kind not in "biufU":
            raise ValueError("unexpected array type in a reply")
        return np.array(decode(data["v"]), dtype=dtype).reshape([int(n) for n in data["shape"]])
    if tag == "obj":
        type_name = str(data.get("type", "object"))[:100]
        return _opaque_class(type_name)(type_name, str(data.get("repr", ""))[:200])
    raise ValueError(f"unexpected tag {tag!r} in a reply")


def _hashable(key):
    try:
        hash(key)
    except TypeError:
        raise ValueError("unhashable key in a reply") from None
    return key


# --- kernel side ----------------------------------------------------------------------------
_REBUILT: dict[tuple[str, str], Any] = {}


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        module, name = pid
        key = (module, name)
        if key not in _REBUILT:
            import importlib
            obj = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
            _REBUILT[key] = obj()
        return _REBUILT[key]


def _student_line(e: BaseException) -> int | None:
    tb, line = e.__traceback__, None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if "synthkit" not in fname and "site-packages" not in fname:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def serve(namespace: dict, request: str) -> str:
    """Answer one request from the grader (in the student's kernel); returns JSON text."""
    try:
        req = _Unpickler(io.BytesIO(base64.b64decode(request))).load()
        if req["op"] == "inventory":
            reply = {"names": {}}
            for name in req["names"]:
                if name not in namespace:
                    reply["names"][name] = {"state": "missing"}
                elif callable(namespace[name]):
                    reply["names"][name] = {"state": "callable",
                                            "name": str(getattr(namespace[name], "__name__", name))}
                else:
                    reply["names"][name] = {"state": "value", "value": encode(namespace[name])}
        else:
            reply = _call(namespace, req)
    except KeyboardInterrupt:
        reply = {"interrupted": True}
    except BaseException as e:  # noqa: BLE001 - the grader reads what went wrong
        reply = {"protocol_error": f"{type(e).__name__}: {e}"}
    return json.dumps(reply)


def _call(namespace: dict, req: dict) -> dict:

    fn = namespace.get(req["name"])
    if not callable(fn):
        return {"protocol_error": f"{req['name']} is no longer a function"}
    args, kwargs = req["args"], req["kwargs"]
    hits: list = []
    start = time.perf_counter()
    try:
        try:
            with refusing(req["refuses"], fn) as hits, time_limit(req["limit"]):
                value = fn(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - start
        return {"value": encode(value), "args_after": encode(list(args)), "refused": hits, "seconds": seconds}
    except _Alarm:
        return {"slow": True, "refused": hits}
    except KeyboardInterrupt:
        return {"interrupted": True, "refused": hits}
    except BaseException as e:  # noqa: BLE001 - reported to the grader as data
        try:
            message = str(e)[:2000]
        except Exception:  # noqa: BLE001
            message = "(its message could not be read)"
        return {"raised": {"type": type(e).__name__, "message": message, "line": _student_line(e),
                           "not_implemented": isinstance(e, NotImplementedError),
                           "system_exit": isinstance(e, SystemExit)},
                "refused": hits}


# --- grader side ----------------------------------------------------------------------------
class SandboxGone(Exception):
    """The kernel died, or stopped answering and was killed."""


class KernelSandbox:
    """A blocking connection of the grader's own to a running kernel."""

    SLACK = 30.0  # seconds on top of a call's limit (rebuilding a model in the kernel, IPC)
    GRACE = 10.0  # seconds an interrupted kernel gets to answer before it is killed
    BUDGET = 300.0  # seconds of requests in all, for one notebook's checks

    def __init__(self, connection_info: dict, process, interrupt: Callable[[], None] | None = None):
        from jupyter_client import BlockingKernelClient

        self.process = process  # a Popen-like object: poll(), pid
        self.interrupt = interrupt or (lambda: os.kill(process.pid, signal.SIGINT))
        self.client = BlockingKernelClient()
        self.client.load_connection_info(connection_info)
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self.dead: str = ""  # why, once the kernel is gone
        self.spent = 0.0  # seconds spent waiting for answers so far

    def close(self) -> None:
        try:
            self.client.stop_channels()
        except Exception:  # noqa: BLE001
            pass

    def _alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def request(self, payload: dict, deadline: float) -> dict:
        """Send one request; its decoded reply, or SandboxGone. `deadline`: seconds."""
        if self.dead:
            raise SandboxGone(self.dead)
        start = time.monotonic()
        try:
            return self._request(payload, deadline)
        finally:
            self.spent += time.monotonic() - start

    def _request(self, payload: dict, deadline: float) -> dict:
        data = base64.b64encode(_pickle(payload)).decode()
        code = f"import synthkit.grading.sandbox as _sk_sandbox\n_synthkit_reply = _sk_sandbox.serve(globals(), {data!r})"
        msg_id = self.client.execute(code, silent=False, store_history=False, allow_stdin=False,
                                     user_expressions={"r": "globals().pop('_synthkit_reply', None)"})
        reply = self._wait(msg_id, deadline)
        if reply is None:  # no answer in time: interrupt, then kill
            self.interrupt()
            reply = self._wait(msg_id, self.GRACE)
            if reply is None:
                self.kill("it did not answer, even after an interrupt")
                return {"slow": True, "killed": True}
        content = reply.get("content", {})
        if content.get("status") == "aborted":
            return {"aborted": True}
        if content.get("status") != "ok":
            if content.get("ename") == "KeyboardInterrupt":
                return {"interrupted": True}
            if content.get("ename"):
                return {"protocol_error": f"{content.get('ename')}: {str(content.get('evalue'))[:200]}"}
            return {"protocol_error": f"the kernel answered with status {str(content.get('status'))[:40]!r} "
                                      f"(did a cell replace json or the kernel's messaging code?)"}
        expr = content.get("user_expressions", {}).get("r", {})
        text = expr.get("data", {}).get("text/plain") if expr.get("status") == "ok" else None
        if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
            return {"protocol_error": "no readable reply"}
        try:
            raw = ast.literal_eval(text)
            return json.loads(raw) if isinstance(raw, str) else {"protocol_error": "no readable reply"}
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return {"protocol_error": "no readable reply"}

    def _wait(self, msg_id: str, seconds: float):
        from queue import Empty

        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self.client.get_shell_msg(timeout=min(0.25, left))
            except Empty:
                if not self._alive():
                    self.dead = "the kernel died while your code ran (did something call os._exit or crash?)"
                    raise SandboxGone(self.dead) from None
                continue
            except Exception as e:  # noqa: BLE001 - e.g. a cell replaced json.dumps, which the kernel's messages use
                self.kill(f"its replies could not be read ({type(e).__name__}: {str(e)[:80]}); did a cell "
                          f"replace json or the kernel's messaging code?")
                raise SandboxGone(self.dead) from None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    def kill(self, why: str) -> None:
        self.dead = f"the kernel was stopped: {why}"
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _pickle(payload) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)

    def persistent_id(obj):
        ref = _REFERENCES.get(id(obj))
        return (ref[0], ref[1]) if ref is not None and ref[2] is obj else None

    pickler.persistent_id = persistent_id
    pickler.dump(payload)
    return buf.getvalue()


class RemoteFunction:
    """A student's function that lives in the kernel; ``Checker.call`` calls it there."""

    def __init__(self, sandbox: KernelSandbox, name: str, func_name: str):
        self._sandbox, self._name, self.__name__ = sandbox, name, func_name

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        raise TypeError("call a student's function through Checker.call, which knows the rules")

    def remote_call(self, args: tuple, kwargs: dict, *, limit: float, refuses: list, label: str):

        try:
            payload = {"op": "call", "name": self._name, "args": tuple(args), "kwargs": dict(kwargs),
                       "refuses": list(refuses), "limit": limit}
            _pickle(payload)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise Failed(f"the check cannot send its input to your kernel ({type(e).__name__}: {e}); "
                         f"this is a bug in the lab's check, please report it.") from None
        slow = TooSlow(f"{label} was still running after {limit:g} s; it should take well under a "
                       f"second. Look for a loop that never ends or work repeated inside a loop.")
        if self._sandbox.spent > KernelSandbox.BUDGET:
            raise TooSlow(f"{label} was not run: the checks of this notebook had already spent "
                          f"{KernelSandbox.BUDGET:g} s in your code, the most they may.")
        try:
            reply = self._sandbox.request(payload, limit + KernelSandbox.SLACK)
        except SandboxGone as e:
            raise Stopped(f"{label}: {e}.") from None
        if reply.get("refused"):
            raise Failed(refusal_message(label, list(map(str, reply["refused"]))))
        if reply.get("slow") or reply.get("interrupted"):
            raise slow
        if reply.get("aborted"):
            raise Stopped(f"{label}: the kernel refused to run the call (it was still aborting after an "
                          f"interrupted cell).")
        if "raised" in reply:
            r = reply["raised"]
            name, message = str(r.get("type")), str(r.get("message"))
            if r.get("not_implemented"):
                raise Missing(f"{label} raised NotImplementedError ({message or 'no message'}): replace the "
                              f"`raise NotImplementedError(...)` line with your code, run that cell, then "
                              f"check again.")
            where = f" (line {int(r['line'])} of the cell that defines it)" if isinstance(r.get("line"), int) else ""
            raise Raised(f"{label} raised {name}: {message}{where}")
        if "value" not in reply:
            raise Failed(f"{label}: the grader could not read what your function returned "
                         f"({reply.get('protocol_error', 'no reply')}). Return plain values (str, int, "
                         f"float, list, dict, tuple).")
        try:
            value = decode(reply["value"])
            after = decode(reply.get("args_after", []))
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise Failed(f"{label}: the grader could not read what your function returned "
                         f"({type(e).__name__}: {str(e)[:100]}).") from None
        _write_back(args, after)
        return value


def _write_back(args: tuple, after) -> None:
    """Mirror a student's changes to list, dict and set arguments (checks test that the
    inputs are left alone)."""
    if not isinstance(after, list) or len(after) != len(args):
        return
    for original, changed in zip(args, after):
        try:
            if isinstance(original, list) and isinstance(changed, list) and original != changed:
                original[:] = changed
            elif isinstance(original, dict) and isinstance(changed, dict) and original != changed:
                original.clear()
                original.update(changed)
            elif isinstance(original, set) and isinstance(changed, set) and original != changed:
                original.clear()
                original.update(changed)
        except Exception:  # noqa: BLE001 - e.g. comparing arrays; leave it
            continue


class RemoteNamespace:
    """The student's namespace as the checks see it: what the kernel holds under each name
    the exercises need, fetched once before any student code is called."""

    def __init__(self, sandbox: KernelSandbox, names: list[str], deadline: float = 60.0):
        self._sandbox = sandbox
        reply = sandbox.request({"op": "inventory", "names": list(names)}, deadline)
        if "names" not in reply or not isinstance(reply["names"], dict):
            raise InventoryError(reply)
        self._items: dict[str, Any] = {}
        for name in names:
            entry = reply["names"].get(name)
            if not isinstance(entry, dict) or entry.get("state") == "missing":
                continue
            if entry.get("state") == "callable":
                self._items[name] = RemoteFunction(sandbox, name, str(entry.get("name", name))[:80])
            else:
                try:
                    self._items[name] = decode(entry.get("value"))
                except (ValueError, KeyError, TypeError, RecursionError):
                    self._items[name] = _opaque_class("unreadable")("unreadable", "(a value the grader could not read)")

    def __contains__(self, name) -> bool:
        return name in self._items

    def __getitem__(self, name):
        return self._items[name]

    def get(self, name, default=None):
        return self._items.get(name, default)

    def keys(self):
        return self._items.keys()


class InventoryError(Exception):
    """The kernel did not answer the first request (what it said is in ``reply``)."""

    def __init__(self, reply: dict):
        super().__init__(str(reply))
        self.reply = reply
