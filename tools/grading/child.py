"""Phase 1 of the grader: run a submission's code cells, then answer the grader's requests.

This file is copied into the submission's scratch folder and run there by tools/grading/
sandbox.py, in its own process (time, memory and file-size limits; network and the grader's
folders hidden where the OS allows it). It is self-contained (standard library and NumPy).

    python child.py CELLS.json REQUEST_FD REPLY_FD BANNED,...

1. Before any student code: capture the references the exporter uses (``type``, ``len``,
   ``float.hex``, ``numpy.ndarray.tobytes``...), install an import hook that refuses the
   banned modules (``linflow.bounds`` where an assignment asks students to implement the
   bound), and a stand-in for ``otter`` (``grader.check`` does nothing here).
2. Run the code cells, each in turn, in one namespace; a cell that raises is recorded and the
   next one runs.
3. Read requests from the grader on REQUEST_FD and write replies on REPLY_FD, one line of JSON
   each: ``{"op": "export", "names": [...]}`` answers with the plain value of each name
   (Python bool/int/float/complex/str, NumPy scalars and arrays of a numeric dtype, lists and
   tuples of those; checked by exact type, never isinstance), ``{"kind": "function"}`` for a
   callable, or why the value is not plain data; ``{"op": "call", "name", "args"}`` calls the
   student's function on the grader's inputs and answers with its plain output.

The student's code can reach everything in this process, the exporter included: nothing it
writes is trusted beyond being a value. The grader (phase 2) decodes the replies as plain
data only, so an object, a subclass or a forged reply can at most be a wrong answer.
"""
import sys

# -------------------------------------------------------------- references taken first
_type, _len, _repr, _range, _isinstance = type, len, repr, range, isinstance
_list, _tuple, _str, _int, _float, _bool, _complex = list, tuple, str, int, float, bool, complex
_float_hex = float.hex
_str_encode = str.encode
_bytes_hex = bytes.hex
_join = str.join
_BaseException = BaseException

import json as _json_module  # noqa: E402
import os as _os  # noqa: E402

_os_read, _os_write, _os_exit = _os.read, _os.write, _os._exit

import functools as _functools  # noqa: E402
import types as _types  # noqa: E402

# what counts as a function answer (called in phase 1 on the grader's inputs); any other
# callable object is refused like any other object
_FUNCTION_TYPES = (_types.FunctionType, _types.BuiltinFunctionType, _types.MethodType,
                   _functools.partial)
_loads = _json_module.loads

import numpy as _np  # noqa: E402

_ndarray = _np.ndarray
_tobytes = _np.ndarray.tobytes
_ascontig = _np.ascontiguousarray
_frombuffer = _np.frombuffer
_np_scalars = {t: t.__name__ for t in (_np.bool_, _np.int8, _np.int16, _np.int32, _np.int64,
                                       _np.uint8, _np.uint16, _np.uint32, _np.uint64,
                                       _np.float16, _np.float32, _np.float64, _np.complex64,
                                       _np.complex128)}
_NUMERIC_KINDS = "biufc"
MAX_DEPTH = 4
MAX_ITEMS = 10_000_000


class NotPlain(Exception):
    pass


def _enc_str(s):
    return '"' + _bytes_hex(_str_encode(s, "utf-8")) + '"'


def encode(x, depth=0, budget=None):
    """Plain data as a JSON text built here (no json.dumps the student could have replaced)."""
    budget = budget if budget is not None else [MAX_ITEMS]
    t = _type(x)
    if t is _bool:
        return '["bool",' + ("1" if x else "0") + "]"
    if t is _int:
        if not -2 ** 63 <= x < 2 ** 63:
            raise NotPlain("an int outside 64 bits")
        return '["int","' + int.__repr__(x) + '"]'
    if t is _float:
        return '["float","' + _float_hex(x) + '"]'
    if t is _complex:
        return '["complex","' + _float_hex(x.real) + '","' + _float_hex(x.imag) + '"]'
    if t is _str:
        return '["str",' + _enc_str(x) + "]"
    if t in _np_scalars:
        x = _np.asarray(x)
        t = _ndarray
        scalar = True
    else:
        scalar = False
    if t is _ndarray:
        kind = x.dtype.kind
        if kind not in _NUMERIC_KINDS:
            raise NotPlain(f"a NumPy array of dtype {x.dtype.str!s} (only numbers: bool, int, "
                           "float, complex)")
        budget[0] -= x.size
        if budget[0] < 0:
            raise NotPlain("too large")
        shape = _join(",", [int.__repr__(int(s)) for s in x.shape])
        data = _bytes_hex(_tobytes(_ascontig(x)))
        return ('["' + ("npscalar" if scalar else "ndarray") + '",' + _enc_str(x.dtype.str)
                + ",[" + shape + '],"' + data + '"]')
    if t is _list or t is _tuple:
        if depth >= MAX_DEPTH:
            raise NotPlain(f"lists or tuples nested deeper than {MAX_DEPTH}")
        budget[0] -= _len(x)
        if budget[0] < 0:
            raise NotPlain("too large")
        items = [encode(v, depth + 1, budget) for v in x]
        return '["' + ("list" if t is _list else "tuple") + '",[' + _join(",", items) + "]]"
    if x is None:
        raise NotPlain("None (not answered)")
    if x is Ellipsis:
        raise NotPlain("... (not answered)")
    what = f"{t.__module__}.{t.__qualname__}"
    if _isinstance(x, (_ndarray, _float, _int, _str, _list, _tuple)):
        raise NotPlain(f"an object of type {what}, a subclass of a plain type (only exact "
                       "types are accepted)")
    raise NotPlain(f"an object of type {what} (only numbers, strings, NumPy arrays of numbers, "
                   "and lists or tuples of those)")


def decode(obj, depth=0):
    """Plain data back from :func:`encode`'s text (parsed by json.loads), checked strictly:
    anything else raises NotPlain. Phase 2 decodes the submission's replies with it, phase 1
    the grader's call arguments."""
    if _type(obj) is not _list or not obj or _type(obj[0]) is not _str:
        raise NotPlain("not the grader's format")
    tag, rest = obj[0], obj[1:]
    try:
        if tag == "bool" and rest in ([0], [1]):
            return rest[0] == 1
        if tag == "int" and _len(rest) == 1 and _type(rest[0]) is _str and _len(rest[0]) < 24:
            return _int(rest[0])
        if tag == "float" and _len(rest) == 1 and _type(rest[0]) is _str:
            return _float.fromhex(rest[0])
        if tag == "complex" and _len(rest) == 2:
            return _complex(_float.fromhex(rest[0]), _float.fromhex(rest[1]))
        if tag == "str" and _len(rest) == 1 and _type(rest[0]) is _str:
            return bytes.fromhex(rest[0]).decode("utf-8")
        if tag in ("ndarray", "npscalar") and _len(rest) == 3:
            dtype = _np.dtype(bytes.fromhex(rest[0]).decode("ascii"))
            shape = rest[1]
            if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
                raise NotPlain(f"a NumPy array of dtype {dtype.str}")
            if _type(shape) is not _list or not all(_type(s) is _int and 0 <= s for s in shape):
                raise NotPlain("a bad array shape")
            data = bytes.fromhex(rest[2])
            size = 1
            for s in shape:
                size *= s
            if size * dtype.itemsize != _len(data):
                raise NotPlain("array data of the wrong length")
            arr = _frombuffer(data, dtype=dtype).reshape(shape).copy()
            return arr[()] if tag == "npscalar" and shape == [] else arr
        if tag in ("list", "tuple") and _len(rest) == 1 and _type(rest[0]) is _list:
            if depth >= MAX_DEPTH:
                raise NotPlain(f"lists or tuples nested deeper than {MAX_DEPTH}")
            items = [decode(v, depth + 1) for v in rest[0]]
            return items if tag == "list" else _tuple(items)
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError) as e:
        raise NotPlain(f"not the grader's format ({e})")
    raise NotPlain("not the grader's format")


# -------------------------------------------------------------- banned modules
class _Banned:
    """Import hook (first on sys.meta_path): the banned modules cannot be imported."""

    def __init__(self, banned, why):
        self.banned, self.why = tuple(banned), why

    def find_spec(self, name, path=None, target=None):
        for b in self.banned:
            if name == b or name.startswith(b + "."):
                raise ImportError(f"{b} is not available in this assignment ({self.why})",
                                  name=name)
        return None


# -------------------------------------------------------------- otter and IPython stand-ins
class _NoOp:
    """``otter.Notebook`` (checks run in the grader, not here) and ``get_ipython()`` (magics
    and ``!`` commands do nothing here): every method accepts anything and returns None."""

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return lambda *a, **k: None


def _otter_stub():
    import types

    mod = types.ModuleType("otter")
    mod.Notebook = _NoOp
    return mod


def _transform(src):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:   # no IPython: magics then fail as the syntax errors they are
        return src
    return TransformerManager().transform_cell(src)


# -------------------------------------------------------------- main
def main(argv):
    cells_path, req_fd, rep_fd, banned = argv[1], int(argv[2]), int(argv[3]), argv[4]
    banned = [b for b in banned.split(",") if b]
    with open(cells_path) as fh:
        cells = _loads(fh.read())
    for name in list(sys.modules):
        if any(name == b or name.startswith(b + ".") for b in banned):
            del sys.modules[name]
    if banned:
        sys.meta_path.insert(0, _Banned(banned, "the assignment asks you to compute it yourself"))
    sys.modules["otter"] = _otter_stub()
    ns = {"__name__": "__main__", "__builtins__": __builtins__,
          "get_ipython": _NoOp, "display": lambda *a, **k: None}
    errors = []
    for i, src in cells:
        try:
            code = compile(_transform(src), f"<cell {i}>", "exec")
            exec(code, ns)
        except _BaseException as e:   # SystemExit and KeyboardInterrupt too: next cell
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            errors.append(f"cell {i}: {_type(e).__name__}: {msg}")

    def reply(text):
        data = _str_encode(text + "\n", "utf-8")
        while data:
            n = _os_write(rep_fd, data)
            data = data[n:]

    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = _os_read(req_fd, 1 << 20)
            if not chunk:
                _os_exit(0)
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        req = _loads(line.decode())
        if req["op"] == "export":
            items = []
            for name in req["names"]:
                if name not in ns:
                    items.append(_enc_str(name) + ':{"missing":1}')
                    continue
                x = ns[name]
                if _type(x) in _FUNCTION_TYPES:
                    items.append(_enc_str(name) + ':{"kind":"function"}')
                    continue
                try:
                    items.append(_enc_str(name) + ':{"value":' + encode(x) + "}")
                except NotPlain as e:
                    items.append(_enc_str(name) + ':{"not_plain":' + _enc_str(str(e.args[0])) + "}")
                except _BaseException as e:
                    items.append(_enc_str(name) + ':{"not_plain":' + _enc_str(
                        f"could not be read ({_type(e).__name__})") + "}")
            errs = "[" + _join(",", [_enc_str(e) for e in errors]) + "]"
            reply('{"answers":{' + _join(",", items) + '},"errors":' + errs + "}")
        elif req["op"] == "call":
            f = ns.get(req["name"])
            try:
                args = [decode(a) for a in req["args"]]
                out = f(*args)
                reply('{"value":' + encode(out) + "}")
            except NotPlain as e:
                reply('{"error":' + _enc_str("it returned " + str(e.args[0])) + "}")
            except _BaseException as e:
                msg = str(e).splitlines()[0][:200] if str(e) else ""
                reply('{"error":' + _enc_str(f"{_type(e).__name__}: {msg}") + "}")
        else:
            _os_exit(0)


if __name__ == "__main__":
    main(sys.argv)
