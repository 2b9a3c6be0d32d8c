"""onnxshard: turn one ONNX model into per-rank ONNX models for a device mesh.

A ctypes binding of libonnxshard.so.0 (include/onnxshard.h); no compiled
extension, nothing from PyPI. The functions mirror the command's:

    import onnxshard
    plan = onnxshard.plan("gpt2.onnx", mesh={"data": 2, "model": 2},
                          dims={"batch": 8, "seq": 128})
    plan["step_time_s"]
    onnxshard.shard("gpt2.onnx", "gpt2.shards", mesh="data=2,model=2")
    info = onnxshard.inspect("gpt2.onnx")     # the object of inspect --json
    onnxshard.check("gpt2.shards")            # "ok: 4 ranks, ..."

A model is a path or the bytes of one (model.SerializeToString()). Plans,
inspections and analyses are the dicts the command prints as JSON. Every
failure raises onnxshard.Error: str(e) is the command's one-line message
(without "onnxshard: error: "), e.status its exit status (2 bad usage or
bad input, 1 failure while working).

shard and plan, called from the main thread, run the library in a worker
thread so that Ctrl-C stays live: the first KeyboardInterrupt asks the
library to stop (it removes its temp dir; the output directory is not made),
waits for it, and is raised again. From another thread, pass cancel=Cancel()
and call its set() to stop a run.

The library is found as ONNXSHARD_LIBRARY (a path) if set, else beside this
file (the build tree: PYTHONPATH=BUILD/python), else in the LIBDIR that
cmake --install recorded in _libdir.py, else by the dynamic loader.
"""

import ctypes
import json as _json
import os
import re
import shutil
import signal
import tempfile
import threading

__all__ = [
    "Error",
    "Cancel",
    "plan",
    "shard",
    "inspect",
    "analyze",
    "check",
    "stitch",
    "version",
    "__version__",
]

version = "0.1.0"  # ONNXSHARD_VERSION of onnxshard.h
__version__ = version

OK, EFAIL, EINPUT = 0, 1, 2
_SONAME = "libonnxshard.so.0"


class Error(Exception):
    """A failure of onnxshard: str() is the message, .status the exit status
    the command would give (2 bad usage or bad input, 1 failure)."""

    def __init__(self, message, status=EFAIL):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message


class Cancel:
    """A flag the library polls during shard and plan: set() stops the run
    (Error "interrupted", status 1; the output directory is not made)."""

    def __init__(self):
        self._flag = ctypes.c_int(0)  # sig_atomic_t is int with glibc

    def set(self):
        self._flag.value = 1

    def is_set(self):
        return self._flag.value != 0


class _Opts(ctypes.Structure):
    # onnxshard_opts, field for field (tests/python checks it against the
    # header's offsetof and sizeof)
    _fields_ = [
        ("model", ctypes.c_char_p),
        ("mesh", ctypes.c_char_p),
        ("out", ctypes.c_char_p),
        ("strategy", ctypes.c_char_p),
        ("dims", ctypes.POINTER(ctypes.c_char_p)),
        ("n_dims", ctypes.c_size_t),
        ("collectives", ctypes.c_char_p),
        ("force", ctypes.c_int),
        ("quiet", ctypes.c_int),
        ("json", ctypes.c_int),
        ("report", ctypes.c_void_p),
        ("report_html", ctypes.c_char_p),
        ("budget_ms", ctypes.c_uint64),
        ("budget_plans", ctypes.c_uint32),
        ("hardware", ctypes.c_char_p),
        ("seed", ctypes.c_uint64),
        ("cancel", ctypes.POINTER(ctypes.c_int)),
        ("gather_outputs", ctypes.POINTER(ctypes.c_char_p)),
        ("n_gather_outputs", ctypes.c_size_t),
        ("external_data", ctypes.c_char_p),
        ("jobs", ctypes.c_int),
    ]


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    names = []
    if os.environ.get("ONNXSHARD_LIBRARY"):
        names.append(os.environ["ONNXSHARD_LIBRARY"])
    names.append(os.path.join(here, _SONAME))
    try:
        from ._libdir import LIBDIR

        names.append(os.path.join(LIBDIR, _SONAME))
    except ImportError:
        pass
    names.append(_SONAME)
    last = None
    for name in names:
        if os.sep in name and not os.path.exists(name):
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            last = e
    raise ImportError("onnxshard: cannot load %s (%s)" % (_SONAME, last))


_lib = _load()
_libc = ctypes.CDLL(None)

_P = ctypes.c_void_p
for _name, _res, _args in [
    ("onnxshard_new", _P, [_P, _P, ctypes.c_uint64]),
    ("onnxshard_free", None, [_P]),
    ("onnxshard_error", ctypes.c_char_p, [_P]),
    ("onnxshard_set_limits", None, [_P, ctypes.c_uint64, ctypes.c_uint64]),
    ("onnxshard_inspect", ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, _P]),
    ("onnxshard_analyze", ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, _P]),
    ("onnxshard_check", ctypes.c_int, [_P, ctypes.c_char_p, _P]),
    ("onnxshard_stitch", ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p]),
    ("onnxshard_shard", ctypes.c_int, [_P, ctypes.POINTER(_Opts)]),
]:
    _f = getattr(_lib, _name)
    _f.restype, _f.argtypes = _res, _args
for _name, _res, _args in [
    ("tmpfile", _P, []),
    ("fflush", ctypes.c_int, [_P]),
    ("fileno", ctypes.c_int, [_P]),
    ("fclose", ctypes.c_int, [_P]),
]:
    _f = getattr(_libc, _name)
    _f.restype, _f.argtypes = _res, _args


def _usage(msg):
    return Error(msg, EINPUT)


class _Ctx:
    """An onnxshard_ctx and a report FILE* (a tmpfile) for one call."""

    def __init__(self, seed=0, max_model_bytes=None, max_nodes=None, alias=None):
        self.alias = alias  # (temp path, shown name) of a model given as bytes
        self.c = _lib.onnxshard_new(None, None, seed)
        if not self.c:
            raise Error("out of memory", EFAIL)
        self.f = None
        _lib.onnxshard_set_limits(
            self.c,
            _size(max_model_bytes, "max_model_bytes"),
            _count(max_nodes, "max_nodes"),
        )

    def report(self):
        if self.f is None:
            self.f = _libc.tmpfile()
            if not self.f:
                raise Error("cannot make a temporary file: %s" % os.strerror(ctypes.get_errno()))
        return self.f

    def text(self):
        """What the library wrote to the report file."""
        if self.f is None:
            return ""
        if _libc.fflush(self.f) != 0:
            raise Error("cannot write output", EFAIL)
        fd = _libc.fileno(self.f)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")

    def fail(self, rc):
        msg = (_lib.onnxshard_error(self.c) or b"").decode("utf-8", "replace")
        if self.alias:
            msg = msg.replace(self.alias[0], self.alias[1])
        return Error(msg or "failed", rc)

    def close(self):
        if self.f is not None:
            _libc.fclose(self.f)
            self.f = None
        if self.c:
            _lib.onnxshard_free(self.c)
            self.c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Model:
    """A model path, or bytes written to a private temp file for the call."""

    def __init__(self, model):
        self.dir = None
        self.alias = None
        if isinstance(model, (bytes, bytearray, memoryview)):
            self.dir = tempfile.mkdtemp(prefix="onnxshard-")
            self.path = os.path.join(self.dir, "model.onnx")
            with open(self.path, "wb") as f:
                f.write(model)
            self.alias = (self.path, "<bytes>")
        elif isinstance(model, (str, os.PathLike)):
            self.path = os.fspath(model)
        else:
            raise _usage("the model must be a path or bytes, not %s" % type(model).__name__)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _b(s):
    return None if s is None else os.fsencode(s)


def _count(v, what):
    if v is None or v == 0:
        return 0
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
        raise _usage("%s: '%s' is not a positive number" % (what, v))
    return v


def _size(v, what):
    """An int or the command's size syntax ("512M", "2G") -> bytes; None: 0."""
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64:
        return v
    m = re.fullmatch(r"([0-9]+)(?:([kKmMgGtT])(?:iB|B)?|B)?", v) if isinstance(v, str) else None
    if not m or int(m.group(1)) == 0:
        raise _usage("%s: '%s' is not a size (e.g. 512M, 2G)" % (what, v))
    n = int(m.group(1)) * 1024 ** ("kmgt".index(m.group(2).lower()) + 1 if m.group(2) else 0)
    if n >= 1 << 64:
        raise _usage("%s: '%s' is not a size (e.g. 512M, 2G)" % (what, v))
    return n


def _mesh(mesh):
    if isinstance(mesh, str):
        return mesh
    if isinstance(mesh, dict):
        return ",".join("%s=%s" % (k, v) for k, v in mesh.items())
    raise _usage("mesh: give a dict ({'data': 2}) or a string ('data=2,model=4')")


def _dims(dims):
    if dims is None:
        return []
    if isinstance(dims, str):
        return [d for d in dims.split(",") if d]
    if isinstance(dims, dict):
        return ["%s=%s" % (k, v) for k, v in dims.items()]
    return [str(d) for d in dims]


def _budget(budget, o):
    """The command's --budget: "2s", "500ms", "1m", "1h", "500p" (plans), or
    a number of seconds."""
    if budget is None:
        return
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        ms = budget * 1000.0
        if not 1 <= ms <= 1e12:
            raise _usage("budget: '%s' is not a duration (e.g. 2s, 500ms, 1m)" % budget)
        o.budget_ms = int(ms)
        return
    s = str(budget)
    if s.endswith("p"):
        m = re.fullmatch(r"([0-9]+)p", s)
        if not m or not 1 <= int(m.group(1)) <= 10000000:
            raise _usage("budget: '%s' is not a number of plans (e.g. 500p)" % s)
        o.budget_plans = int(m.group(1))
        return
    m = re.fullmatch(r"([0-9][0-9.]*)(s|ms|m|h|)", s)
    ms = None
    if m:
        try:
            ms = float(m.group(1)) * {"": 1000, "s": 1000, "ms": 1, "m": 60000, "h": 3600000}[m.group(2)]
        except ValueError:
            ms = None
    if ms is None or not 1 <= ms <= 1e12:
        raise _usage("budget: '%s' is not a duration (e.g. 2s, 500ms, 1m)" % s)
    o.budget_ms = int(ms)


def _in_worker(fn, cancel):
    """Run fn() in a thread while the main thread waits, so that Ctrl-C is
    seen: during the call a SIGINT handler sets cancel (the library stops,
    removing what it wrote) and, once the run has stopped, KeyboardInterrupt
    is raised. SIGINT is blocked in the worker, so that no system call of
    the library sees EINTR. From other threads, or under a SIGINT handler of
    the program's own, fn() just runs."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        return fn()
    box = {}
    done = threading.Event()
    hit = []

    def run():
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            box["value"] = fn()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e
        finally:
            done.set()

    def on_sigint(signum, frame):
        hit.append(signum)
        cancel.set()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        t = threading.Thread(target=run, name="onnxshard", daemon=True)
        t.start()
        while not done.wait(0.1):  # wakes up for the handler to run
            pass
        t.join()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if hit:
        raise KeyboardInterrupt
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _shard(model, out, mesh, strategy, dims, hardware, budget, seed, collectives,
           force, quiet, max_model_bytes, max_nodes, cancel, report_html=None,
           gather_outputs=None):
    if mesh is None:
        raise _usage("needs a mesh (e.g. mesh={'data': 2, 'model': 4})")
    if cancel is None:
        cancel = Cancel()
    elif not isinstance(cancel, Cancel):
        raise _usage("cancel must be an onnxshard.Cancel")
    o = _Opts()
    _budget(budget, o)
    o.seed = int(seed)
    o.force = 1 if force else 0
    o.quiet = 1 if quiet else 0
    o.json = 1
    o.mesh = _mesh(mesh).encode()
    o.strategy = _b(strategy)
    o.collectives = _b(collectives)
    o.hardware = _b(hardware)
    o.report_html = _b(report_html)
    dl = [d.encode() for d in _dims(dims)]
    arr = (ctypes.c_char_p * (len(dl) + 1))(*dl)
    o.dims = arr
    o.n_dims = len(dl)
    gl = [g.encode() for g in ([gather_outputs] if isinstance(gather_outputs, str)
                               else list(gather_outputs or []))]
    garr = (ctypes.c_char_p * (len(gl) + 1))(*gl)
    o.gather_outputs = garr
    o.n_gather_outputs = len(gl)
    o.cancel = ctypes.pointer(cancel._flag)
    with _Model(model) as m:
        o.model = _b(m.path)
        o.out = _b(out)
        with _Ctx(o.seed, max_model_bytes, max_nodes, m.alias) as c:
            o.report = c.report()
            rc = _in_worker(lambda: _lib.onnxshard_shard(c.c, ctypes.byref(o)), cancel)
            if rc:
                raise c.fail(rc)
            text = c.text()
    return _json.loads(text) if text.strip() else {}


def plan(model, mesh, *, strategy=None, dims=None, hardware=None, budget=None, seed=0,
         collectives=None, quiet=True, max_model_bytes=None, max_nodes=None, cancel=None,
         report_html=None, gather_outputs=None):
    """The plan `onnxshard plan MODEL --mesh MESH --json` prints, as a dict
    (step_time_s, peak_memory_bytes, comm_bytes, baselines, ...); writes
    nothing. mesh: {"data": 2, "model": 4} or "data=2,model=4"; dims:
    {"batch": 8} or ["batch=8"]; budget: "2s", "500p" or seconds;
    report_html: a file for the plan as one HTML page (--report);
    gather_outputs: a pattern or list of them (--gather-outputs); the rest
    as the command's options of the same names. cancel: a Cancel to stop
    the run from another thread."""
    return _shard(model, None, mesh, strategy, dims, hardware, budget, seed, collectives,
                  False, quiet, max_model_bytes, max_nodes, cancel, report_html, gather_outputs)


def shard(model, out=None, mesh=None, *, strategy=None, dims=None, hardware=None,
          budget=None, seed=0, collectives=None, force=False, quiet=True,
          max_model_bytes=None, max_nodes=None, cancel=None, report_html=None,
          gather_outputs=None):
    """Write per-rank models and manifest.json to the directory out (default,
    for a model path: the path without .onnx plus .shards), atomically: it
    appears whole or not at all. Returns the plan as a dict. force replaces
    an existing out. Options as for plan()."""
    if out is None:
        if not isinstance(model, (str, os.PathLike)):
            raise _usage("shard needs out for a model given as bytes")
        p = os.fspath(model)
        out = (p[:-5] if len(p) > 5 and p.endswith(".onnx") else p) + ".shards"
    return _shard(model, out, mesh, strategy, dims, hardware, budget, seed, collectives,
                  force, quiet, max_model_bytes, max_nodes, cancel, report_html, gather_outputs)


def _report(fn, model, fmt, max_model_bytes, max_nodes):
    with _Model(model) as m, _Ctx(0, max_model_bytes, max_nodes, m.alias) as c:
        rc = fn(c.c, _b(m.path), fmt, c.report())
        if rc:
            raise c.fail(rc)
        return c.text()


def inspect(model, format="json", *, max_model_bytes=None, max_nodes=None):
    """`onnxshard inspect`: format "json" (default) gives the dict of
    --json (ops, opsets, inputs, outputs, every value's dtype and shape),
    "text" the text report, "ir" the lifted IR's text (--dump ir)."""
    fmts = {"text": 0, "json": 1, "ir": 2}
    if format not in fmts:
        raise _usage("inspect: unknown format '%s' (known: json, text, ir)" % format)
    text = _report(_lib.onnxshard_inspect, model, fmts[format], max_model_bytes, max_nodes)
    return _json.loads(text) if format == "json" else text


def analyze(model, format="json", *, max_model_bytes=None, max_nodes=None):
    """`onnxshard analyze`: dimension classes, conflicts, opaque ops, decision
    groups; format "json" (default, a dict) or "text"."""
    fmts = {"text": 0, "json": 1}
    if format not in fmts:
        raise _usage("analyze: unknown format '%s' (known: json, text)" % format)
    text = _report(_lib.onnxshard_analyze, model, fmts[format], max_model_bytes, max_nodes)
    return _json.loads(text) if format == "json" else text


def check(out):
    """`onnxshard check OUT`: verify an output directory (manifest, sizes and
    crc32, rank models, collectives). Returns the line "ok: N ranks, C
    collectives, B bytes"; raises Error when something is wrong."""
    with _Ctx() as c:
        rc = _lib.onnxshard_check(c.c, _b(out), c.report())
        if rc:
            raise c.fail(rc)
        return c.text().strip()


def stitch(out, path):
    """`onnxshard stitch OUT -o PATH`: one model of all ranks at path,
    collectives as standard ops, large initializers in PATH.data."""
    with _Ctx() as c:
        rc = _lib.onnxshard_stitch(c.c, _b(out), _b(path))
        if rc:
            raise c.fail(rc)
