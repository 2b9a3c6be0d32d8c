"""onnxshard: turn one ONNX model into per-rank ONNX models for a device mesh.

A ctypes binding of libonnxshard.so.0 (include/onnxshard.h); no compiled
extension, nothing from PyPI. The functions mirror the command's:

    import onnxshard
    plan = onnxshard.plan("gpt2.onnx", mesh={"data": 2, "model": 2},
                          dims={"batch": 8, "seq": 128})
    plan["step_time_s"]
    onnxshard.shard("gpt2.onnx", "gpt2.shards", mesh="data=2,model=2")
    onnxshard.shard("gpt2.onnx", "gpt2.shards", mesh="data=2,model=2",
                    ranks=[1])                # load-time: this process's rank
    info = onnxshard.inspect("gpt2.onnx")     # the object of inspect --json
    onnxshard.check("gpt2.shards")            # {"ok": True, "ranks": 4, ...}

A model is a path, the bytes of one (model.SerializeToString()) or an
onnx.ModelProto; for bytes or a ModelProto whose tensors are in external
data files, base_dir= names the folder those files are in (as onnx.load
resolves them beside the model file). Plans, inspections and analyses are
the dicts the command prints as JSON.

Errors: an argument of the wrong type raises TypeError, a value this
package can tell is wrong (budget="soon", an unknown format) ValueError,
and a misspelled keyword TypeError, as Python does. What the tool refuses
or fails at raises onnxshard.Error: str(e) is the command's one-line
message (without "onnxshard: error: ") naming the Python argument
("mesh='data=0': size of axis 'data' must be 1..65536", not "--mesh"),
e.status its exit status (2 bad usage or bad input, 1 failure while
working).

shard and plan, called from the main thread, run the library in a worker
thread so that Ctrl-C stays live: the first KeyboardInterrupt asks the
library to stop (it removes its temp dir; the output directory is not made),
waits for it, and is raised again. From another thread, pass cancel=Cancel()
and call its set() to stop a run.

The library is found as ONNXSHARD_LIBRARY (a path) if set, else beside this
file (the build tree: PYTHONPATH=BUILD/python, or a package that
`pip install BUILD/python` made, which carries it), else in the LIBDIR that
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
        ("ranks", ctypes.POINTER(ctypes.c_int64)),
        ("n_ranks", ctypes.c_size_t),
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


# The command's options as this package's arguments, for the tool's messages
# ("--mesh 'data=0': ..." -> "mesh='data=0': ...").
_ARGS = {"mesh": "mesh", "dim": "dims", "strategy": "strategy", "collectives": "collectives",
         "external-data": "external_data", "gather-outputs": "gather_outputs",
         "hardware": "hardware", "budget": "budget", "rank": "ranks", "jobs": "jobs",
         "max-model-bytes": "max_model_bytes", "max-nodes": "max_nodes", "seed": "seed",
         "report": "report_html", "force": "force=True"}


def _py_names(msg):
    def sub(m):
        name = _ARGS.get(m.group(1))
        if name is None:
            return m.group(0)
        if m.group(2) and "=" not in name:  # "--mesh 'x'" -> "mesh='x'"
            return name + "="
        return name + (m.group(2) or "")
    return re.sub(r"--([a-z][a-z-]*)( (?=[^ (]))?", sub, msg)


def _type(what, want, v):
    return TypeError("%s must be %s, not %s" % (what, want, type(v).__name__))


def _str(v, what):
    """An optional string argument: None, str or os.PathLike."""
    if v is None:
        return None
    if not isinstance(v, (str, os.PathLike)):
        raise _type(what, "a str", v)
    return os.fsencode(v)


class _Ctx:
    """An onnxshard_ctx and a report FILE* (a tmpfile) for one call."""

    def __init__(self, seed=0, max_model_bytes=None, max_nodes=None, alias=None):
        limits = (_size(max_model_bytes, "max_model_bytes"), _count(max_nodes, "max_nodes"))
        self.alias = alias  # (temp path, shown name) of a model given in memory
        self.c = _lib.onnxshard_new(None, None, seed)
        if not self.c:
            raise Error("out of memory", EFAIL)
        self.f = None
        _lib.onnxshard_set_limits(self.c, *limits)

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
        return Error(_py_names(msg) or "failed", rc)

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


def _tensors(g):
    """Every TensorProto of graph g and of its subgraphs (initializers,
    sparse initializers, attribute tensors)."""
    yield from g.initializer
    for sp in g.sparse_initializer:
        yield sp.values
        yield sp.indices
    for n in g.node:
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for sub in a.graphs:
                yield from _tensors(sub)


def _external_files(proto):
    """The external data locations a ModelProto's tensors name, in order."""
    seen = []
    for t in _tensors(proto.graph):
        if t.data_location == 1:  # TensorProto.EXTERNAL
            for e in t.external_data:
                if e.key == "location" and e.value not in seen:
                    seen.append(e.value)
    return seen


def _is_proto(model):
    return hasattr(model, "SerializeToString") and hasattr(model, "graph")


class _Model:
    """A model path, or bytes or an onnx.ModelProto written to a private
    temp dir for the call, with the external data files it names (found
    in base_dir) hard-linked beside it, or copied where a link cannot be."""

    def __init__(self, model, base_dir=None):
        self.dir = None
        self.alias = None
        if base_dir is not None and not isinstance(base_dir, (str, os.PathLike)):
            raise _type("base_dir", "a path", base_dir)
        if isinstance(model, (str, os.PathLike)):
            if base_dir is not None:
                raise ValueError("base_dir: only for a model given as bytes or a ModelProto "
                                 "(a model file's data files are beside it)")
            self.path = os.fspath(model)
            return
        if _is_proto(model):
            data, proto, shown = model.SerializeToString(), model, "<ModelProto>"
        elif isinstance(model, (bytes, bytearray, memoryview)):
            data, proto, shown = bytes(model), None, "<bytes>"
        else:
            raise _type("model", "a path, bytes or an onnx.ModelProto", model)
        files = []
        if proto is not None or base_dir is not None:
            if proto is None:  # bytes with base_dir: the locations are in them
                try:
                    import onnx
                    proto = onnx.ModelProto.FromString(data)
                except Exception:  # not a model: the library says so
                    proto = None
            files = _external_files(proto) if proto is not None else []
        if files and base_dir is None:
            raise ValueError("base_dir: %s has tensors in external data files (%s): give "
                             "base_dir=, the folder they are in" % (shown, ", ".join(files)))
        self.dir = tempfile.mkdtemp(prefix="onnxshard-")
        try:
            self.path = os.path.join(self.dir, "model.onnx")
            with open(self.path, "wb") as f:
                f.write(data)
            for loc in files:
                src = os.path.join(os.fspath(base_dir), loc)
                dst = os.path.normpath(os.path.join(self.dir, loc))
                # a location leaving the folder, or a missing file, is the
                # library's to refuse: nothing is linked for it
                if not dst.startswith(self.dir + os.sep) or not os.path.isfile(src):
                    continue
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.alias = (self.path, shown)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _int(v, what, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int):
        raise _type(what, "an int", v)
    if not lo <= v <= hi:
        raise ValueError("%s: %d is not in %d..%d" % (what, v, lo, hi))
    return v


def _count(v, what):
    if v is None or (isinstance(v, int) and not isinstance(v, bool) and v == 0):
        return 0
    return _int(v, what, 1, 0xFFFFFFFF)


def _size(v, what):
    """An int or the command's size syntax ("512M", "2G") -> bytes; None: 0."""
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _type(what, "an int or a str such as '2G'", v)
    if isinstance(v, int):
        return _int(v, what, 0, (1 << 64) - 1)
    m = re.fullmatch(r"([0-9]+)(?:([kKmMgGtT])(?:iB|B)?|B)?", v)
    if not m or int(m.group(1)) == 0:
        raise ValueError("%s: '%s' is not a size (e.g. 512M, 2G)" % (what, v))
    n = int(m.group(1)) * 1024 ** ("kmgt".index(m.group(2).lower()) + 1 if m.group(2) else 0)
    if n >= 1 << 64:
        raise ValueError("%s: '%s' is not a size (e.g. 512M, 2G)" % (what, v))
    return n


def _mesh(mesh):
    if isinstance(mesh, str):
        return mesh
    if isinstance(mesh, dict):
        for k, v in mesh.items():
            if not isinstance(k, str):
                raise _type("mesh's axis names", "str", k)
            _int(v, "mesh['%s']" % k, -(1 << 62), 1 << 62)  # the size: the library's to judge
        return ",".join("%s=%s" % (k, v) for k, v in mesh.items())
    raise _type("mesh", "a dict ({'data': 2}) or a str ('data=2,model=4')", mesh)


def _dims(dims):
    if dims is None:
        return []
    if isinstance(dims, str):
        return [d for d in dims.split(",") if d]
    if isinstance(dims, dict):
        for k, v in dims.items():
            if not isinstance(k, str):
                raise _type("dims' names", "str", k)
            _int(v, "dims['%s']" % k, -(1 << 62), 1 << 62)
        return ["%s=%s" % (k, v) for k, v in dims.items()]
    if isinstance(dims, (list, tuple)):
        for d in dims:
            if not isinstance(d, str):
                raise _type("dims' entries", "str ('batch=8')", d)
        return list(dims)
    raise _type("dims", "a dict ({'batch': 8}), a list (['batch=8']) or a str", dims)


def _strs(v, what):
    """A str or a list of them (gather_outputs)."""
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    raise _type(what, "a str or a list of str", v)


def _ranks(ranks):
    """None, an int or an iterable of ints -> list (the library checks them
    against the mesh)."""
    if ranks is None:
        return []
    if isinstance(ranks, int) and not isinstance(ranks, bool):
        return [ranks]
    if isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
        raise _type("ranks", "an int or a list of ints", ranks)
    out = list(ranks)
    for r in out:
        if isinstance(r, bool) or not isinstance(r, int):
            raise _type("ranks' entries", "int", r)
        if not -(1 << 63) <= r < 1 << 63:
            raise ValueError("ranks: %d is no rank" % r)
    if not out:
        raise ValueError("ranks: an empty list (None writes every rank)")
    return out


def _budget(budget, o):
    """The command's --budget: "2s", "500ms", "1m", "1h", "500p" (plans), or
    a number of seconds."""
    if budget is None:
        return
    if isinstance(budget, bool) or not isinstance(budget, (int, float, str)):
        raise _type("budget", "seconds (a number) or a str ('2s', '500p')", budget)
    if isinstance(budget, (int, float)):
        ms = budget * 1000.0
        if not 1 <= ms <= 1e12:
            raise ValueError("budget: '%s' is not a duration (e.g. 2s, 500ms, 1m)" % budget)
        o.budget_ms = int(ms)
        return
    s = budget
    if s.endswith("p"):
        m = re.fullmatch(r"([0-9]+)p", s)
        if not m or not 1 <= int(m.group(1)) <= 10000000:
            raise ValueError("budget: '%s' is not a number of plans (e.g. 500p)" % s)
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
        raise ValueError("budget: '%s' is not a duration (e.g. 2s, 500ms, 1m)" % s)
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


def _shard(model, out, mesh, strategy, dims, hardware, budget, seed, collectives, force,
           quiet, max_model_bytes, max_nodes, cancel, report_html, gather_outputs, base_dir,
           ranks=None, jobs=None, external_data=None):
    if mesh is None:
        raise TypeError("needs mesh= (e.g. mesh={'data': 2, 'model': 4})")
    if cancel is None:
        cancel = Cancel()
    elif not isinstance(cancel, Cancel):
        raise _type("cancel", "an onnxshard.Cancel", cancel)
    o = _Opts()
    _budget(budget, o)
    o.seed = _int(seed, "seed", 0, (1 << 64) - 1)
    o.force = 1 if force else 0
    o.quiet = 1 if quiet else 0
    o.json = 1
    o.mesh = _mesh(mesh).encode()
    o.strategy = _str(strategy, "strategy")
    o.collectives = _str(collectives, "collectives")
    o.hardware = _str(hardware, "hardware")
    o.report_html = _str(report_html, "report_html")
    o.external_data = _str(external_data, "external_data")
    o.jobs = 1 if jobs is None else _int(jobs, "jobs", 1, 256)
    dl = [d.encode() for d in _dims(dims)]
    arr = (ctypes.c_char_p * (len(dl) + 1))(*dl)
    o.dims = arr
    o.n_dims = len(dl)
    gl = [g.encode() for g in _strs(gather_outputs, "gather_outputs")]
    garr = (ctypes.c_char_p * (len(gl) + 1))(*gl)
    o.gather_outputs = garr
    o.n_gather_outputs = len(gl)
    rl = _ranks(ranks)
    rarr = (ctypes.c_int64 * (len(rl) + 1))(*rl)
    o.ranks = rarr if rl else None
    o.n_ranks = len(rl)
    o.cancel = ctypes.pointer(cancel._flag)
    out = _str(out, "out")
    with _Model(model, base_dir) as m:
        o.model = os.fsencode(m.path)
        o.out = out
        with _Ctx(o.seed, max_model_bytes, max_nodes, m.alias) as c:
            o.report = c.report()
            rc = _in_worker(lambda: _lib.onnxshard_shard(c.c, ctypes.byref(o)), cancel)
            if rc:
                raise c.fail(rc)
            text = c.text()
    return _json.loads(text) if text.strip() else {}


def plan(model, mesh, *, strategy=None, dims=None, hardware=None, budget=None, seed=0,
         collectives=None, quiet=True, max_model_bytes=None, max_nodes=None, cancel=None,
         report_html=None, gather_outputs=None, base_dir=None):
    """The plan `onnxshard plan MODEL --mesh MESH --json` prints, as a dict
    (step_time_s, peak_memory_bytes, comm_bytes, baselines, ...); writes
    nothing. model: a path, bytes or an onnx.ModelProto (base_dir: the
    folder of its external data files); mesh: {"data": 2, "model": 4} or
    "data=2,model=4"; dims: {"batch": 8} or ["batch=8"]; budget: "2s",
    "500p" or seconds; report_html: a file for the plan as one HTML page
    (--report); gather_outputs: a pattern or list of them
    (--gather-outputs); the rest as the command's options of the same
    names. cancel: a Cancel to stop the run from another thread."""
    return _shard(model, None, mesh, strategy, dims, hardware, budget, seed, collectives,
                  False, quiet, max_model_bytes, max_nodes, cancel, report_html, gather_outputs,
                  base_dir)


def shard(model, out=None, mesh=None, *, strategy=None, dims=None, hardware=None,
          budget=None, seed=0, collectives=None, force=False, quiet=True,
          max_model_bytes=None, max_nodes=None, cancel=None, report_html=None,
          gather_outputs=None, base_dir=None, ranks=None, jobs=None, external_data=None):
    """Write per-rank models and manifest.json to the directory out (default,
    for a model path: the path without .onnx plus .shards), atomically: it
    appears whole or not at all. Returns the plan as a dict. force replaces
    an existing out. ranks: an int or a list of them (--rank): only those
    ranks' files are written (the full run's bytes), the others marked
    "written": false in the manifest; out may then exist, and processes
    writing their own ranks into one out each add theirs. jobs: processes
    writing rank models (--jobs, default 1); external_data: "auto",
    "always" or "never" (--external-data). Options as for plan()."""
    if out is None:
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError("shard() needs out= for a model given as bytes or a ModelProto")
        p = os.fspath(model)
        out = (p[:-5] if len(p) > 5 and p.endswith(".onnx") else p) + ".shards"
    return _shard(model, out, mesh, strategy, dims, hardware, budget, seed, collectives,
                  force, quiet, max_model_bytes, max_nodes, cancel, report_html, gather_outputs,
                  base_dir, ranks, jobs, external_data)


def _report(fn, model, fmt, max_model_bytes, max_nodes, base_dir):
    with _Model(model, base_dir) as m, _Ctx(0, max_model_bytes, max_nodes, m.alias) as c:
        rc = fn(c.c, os.fsencode(m.path), fmt, c.report())
        if rc:
            raise c.fail(rc)
        text = c.text()
        # the report names the model as given ("<bytes>"), not its temp copy
        return text.replace(m.alias[0], m.alias[1]) if m.alias else text


def inspect(model, format="json", *, max_model_bytes=None, max_nodes=None, base_dir=None):
    """`onnxshard inspect`: format "json" (default) gives the dict of
    --json (ops, opsets, inputs, outputs, every value's dtype and shape),
    "text" the text report, "ir" the lifted IR's text (--dump ir). model:
    a path, bytes or an onnx.ModelProto (base_dir as for plan())."""
    fmts = {"text": 0, "json": 1, "ir": 2}
    if not isinstance(format, str):
        raise _type("format", "a str", format)
    if format not in fmts:
        raise ValueError("format: unknown format '%s' (known: json, text, ir)" % format)
    text = _report(_lib.onnxshard_inspect, model, fmts[format], max_model_bytes, max_nodes,
                   base_dir)
    return _json.loads(text) if format == "json" else text


def analyze(model, format="json", *, max_model_bytes=None, max_nodes=None, base_dir=None):
    """`onnxshard analyze`: dimension classes, conflicts, opaque ops, decision
    groups; format "json" (default, a dict) or "text". model as for
    inspect()."""
    fmts = {"text": 0, "json": 1}
    if not isinstance(format, str):
        raise _type("format", "a str", format)
    if format not in fmts:
        raise ValueError("format: unknown format '%s' (known: json, text)" % format)
    text = _report(_lib.onnxshard_analyze, model, fmts[format], max_model_bytes, max_nodes,
                   base_dir)
    return _json.loads(text) if format == "json" else text


_CHECKED = re.compile(r"ok: (?:(\d+) of )?(\d+) ranks, (\d+) collectives, (\d+) bytes"
                      r"(?:; not written: ranks? ([0-9,]+))?")


def check(out, *, raises=True):
    """`onnxshard check OUT`: verify an output directory (manifest, sizes and
    crc32, rank models, collectives). Returns a dict: ok (True), ranks (the
    ranks checked), world_size, collectives (distinct collective nodes),
    bytes (of the files checked) and absent (the ranks a --rank run left to
    other processes, "written": false; [] for a whole directory). When
    something is wrong, raises Error, or with raises=False returns
    {"ok": False, "error": the message, "status": 2 or 1}."""
    _str(out, "out")
    with _Ctx() as c:
        rc = _lib.onnxshard_check(c.c, os.fsencode(out), c.report())
        if rc:
            e = c.fail(rc)
            if raises:
                raise e
            return {"ok": False, "error": str(e), "status": e.status}
        line = c.text().strip()
    m = _CHECKED.fullmatch(line)
    if not m:
        raise Error("check: unexpected report '%s'" % line, EFAIL)
    world = int(m.group(2))
    return {"ok": True, "ranks": int(m.group(1) or world), "world_size": world,
            "collectives": int(m.group(3)), "bytes": int(m.group(4)),
            "absent": [int(r) for r in m.group(5).split(",")] if m.group(5) else []}


def stitch(out, path):
    """`onnxshard stitch OUT -o PATH`: one model of all ranks at path,
    collectives as standard ops, large initializers in PATH.data."""
    _str(out, "out")
    _str(path, "path")
    with _Ctx() as c:
        rc = _lib.onnxshard_stitch(c.c, os.fsencode(out), os.fsencode(path))
        if rc:
            raise c.fail(rc)
