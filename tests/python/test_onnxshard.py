"""The Python package (python/onnxshard) over libonnxshard.so, from the build
tree. ctest runs it with PYTHONPATH=BUILD/python, ONNXSHARD_CLI (the
command) and ONNXSHARD_SRCDIR (the checkout)."""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import onnxshard

SRC = os.environ.get("ONNXSHARD_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("ONNXSHARD_CLI", "onnxshard")
MLP = os.path.join(SRC, "samples", "mlp.onnx")
GPT2 = os.path.join(SRC, "samples", "gpt2.onnx")


def cli_error(*args):
    """The command's status and one-line message, without its prefix."""
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True)
    err = p.stderr.strip().splitlines()[-1]
    prefix = "onnxshard: error: "
    assert err.startswith(prefix), err
    return p.returncode, err[len(prefix):]


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="onnxshard-pytest-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self, out):
        d, base = os.path.split(out)
        return [n for n in os.listdir(d) if n.startswith(base)]


class TestApi(Base):
    def test_opts_layout(self):
        """The ctypes mirror of onnxshard_opts has the header's layout."""
        cc = shutil.which("cc")
        if not cc:
            self.skipTest("no C compiler")
        fields = [f[0] for f in onnxshard._Opts._fields_]
        prog = os.path.join(self.tmp, "layout.c")
        with open(prog, "w") as f:
            f.write("#include <stddef.h>\n#include <stdio.h>\n#include \"onnxshard.h\"\n"
                    "int main(void) {\n")
            for name in fields:
                f.write('printf("%%zu\\n", offsetof(onnxshard_opts, %s));\n' % name)
            f.write('printf("%zu\\n", sizeof(onnxshard_opts));\nreturn 0;\n}\n')
        exe = os.path.join(self.tmp, "layout")
        subprocess.run([cc, "-std=c11", "-I", os.path.join(SRC, "include"), prog, "-o", exe],
                       check=True)
        got = [int(x) for x in subprocess.run([exe], capture_output=True, text=True,
                                               check=True).stdout.split()]
        want = [getattr(onnxshard._Opts, n).offset for n in fields]
        want.append(ctypes.sizeof(onnxshard._Opts))
        self.assertEqual(got, want, "python/onnxshard/__init__.py _Opts != onnxshard_opts")

    def test_version(self):
        out = subprocess.run([CLI, "--version"], capture_output=True, text=True).stdout
        self.assertTrue(out.startswith("onnxshard %s (ONNX opsets " % onnxshard.version), out)
        self.assertEqual(onnxshard.__version__, onnxshard.version)

    def test_plan(self):
        p = onnxshard.plan(GPT2, mesh={"data": 2, "model": 2}, strategy="auto",
                           dims={"batch": 8, "seq": 128}, budget="100p", seed=1)
        self.assertIsInstance(p, dict)
        self.assertGreater(p["step_time_s"], 0)
        self.assertEqual(len(p["peak_memory_bytes"]), 4)
        # the same as the command's --json
        cli = subprocess.run([CLI, "plan", GPT2, "--mesh", "data=2,model=2", "--dim", "batch=8",
                              "--dim", "seq=128", "--budget", "100p", "--seed", "1", "--json",
                              "--quiet"], capture_output=True, text=True, check=True)
        import json
        self.assertEqual(p, json.loads(cli.stdout))
        # plan writes nothing
        self.assertEqual(os.listdir(self.tmp), [])

    def test_shard_check_stitch(self):
        out = os.path.join(self.tmp, "gpt2.shards")
        p = onnxshard.shard(GPT2, out, mesh="data=2,model=2", strategy="data,megatron")
        self.assertIn("step_time_s", p)
        self.assertTrue(os.path.isfile(os.path.join(out, "manifest.json")))
        chk = onnxshard.check(out)
        self.assertEqual((chk["ok"], chk["ranks"], chk["world_size"], chk["absent"]),
                         (True, 4, 4, []))
        # an existing out is refused unless force
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.shard(GPT2, out, mesh="data=2,model=2", strategy="data,megatron")
        self.assertEqual(e.exception.status, 2)
        onnxshard.shard(GPT2, out, mesh="data=2,model=2", strategy="data,megatron", force=True)
        stitched = os.path.join(self.tmp, "s.onnx")
        onnxshard.stitch(out, stitched)
        self.assertGreater(os.path.getsize(stitched), 0)

    def test_default_out(self):
        model = os.path.join(self.tmp, "m.onnx")
        shutil.copy(MLP, model)
        onnxshard.shard(model, mesh={"data": 2})
        self.assertTrue(onnxshard.check(os.path.join(self.tmp, "m.shards"))["ok"])

    def test_bytes(self):
        with open(MLP, "rb") as f:
            data = f.read()
        self.assertEqual(onnxshard.plan(data, mesh="data=2"), onnxshard.plan(MLP, mesh="data=2"))
        out = os.path.join(self.tmp, "b.shards")
        onnxshard.shard(data, out, mesh="data=2")
        self.assertEqual(onnxshard.check(out)["ranks"], 2)
        self.assertEqual(onnxshard.inspect(data)["ops"], onnxshard.inspect(MLP)["ops"])
        self.assertEqual(onnxshard.analyze(data)["classes"], onnxshard.analyze(MLP)["classes"])
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(b"not a model", mesh="data=2")
        self.assertEqual(e.exception.status, 2)
        self.assertTrue(str(e.exception).startswith("<bytes>: "), str(e.exception))
        with self.assertRaises(TypeError):
            onnxshard.shard(data, mesh="data=2")  # no out for bytes

    def test_inspect_analyze(self):
        info = onnxshard.inspect(MLP)
        import json
        cli = subprocess.run([CLI, "inspect", MLP, "--json"], capture_output=True, text=True,
                             check=True)
        self.assertEqual(info, json.loads(cli.stdout))
        self.assertIn("ops", onnxshard.inspect(MLP, "text"))
        self.assertIsInstance(onnxshard.analyze(GPT2), dict)
        self.assertIsInstance(onnxshard.analyze(GPT2, format="text"), str)

    def test_bad_mesh(self):
        status, msg = cli_error("shard", MLP, "--mesh", "data=0", "-o",
                                os.path.join(self.tmp, "x"))
        self.assertEqual(status, 2)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.shard(MLP, os.path.join(self.tmp, "x"), mesh="data=0")
        self.assertEqual(e.exception.status, 2)
        # the command's message, naming the Python argument
        self.assertTrue(msg.startswith("--mesh 'data=0': "), msg)
        msg = msg.replace("--mesh ", "mesh=", 1)
        self.assertEqual(str(e.exception), msg)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(MLP, mesh={"data": 0})
        self.assertEqual((e.exception.status, str(e.exception)), (2, msg))
        self.assertEqual(os.listdir(self.tmp), [])

    def test_missing(self):
        missing = os.path.join(self.tmp, "missing.onnx")
        status, msg = cli_error("plan", missing, "--mesh", "data=2")
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(missing, mesh="data=2")
        self.assertEqual((e.exception.status, str(e.exception)), (status, msg))
        self.assertEqual(status, 2)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.inspect(missing)
        self.assertEqual(e.exception.status, 2)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.check(os.path.join(self.tmp, "nothing"))
        self.assertEqual(e.exception.status, 2)

    def test_options(self):
        for bad in [dict(budget="soon"), dict(budget="0p"), dict(max_model_bytes="lots")]:
            with self.assertRaises(ValueError, msg=bad):
                onnxshard.plan(MLP, mesh="data=2", **bad)
        with self.assertRaises(onnxshard.Error) as e:  # the tool's to refuse
            onnxshard.plan(MLP, mesh="data=2", hardware="no-such-device")
        self.assertEqual(e.exception.status, 2)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(MLP, mesh="data=2", max_model_bytes=1000)
        self.assertEqual(e.exception.status, 2)
        p = onnxshard.plan(MLP, mesh="data=2", hardware="cpu", budget=2.5,
                           collectives="ort", max_model_bytes="1G", max_nodes=1000)
        self.assertEqual(p["hardware"], "cpu")


def same_files(a, b):
    """The file names of directory b that differ from a's, or are not in a."""
    import filecmp
    return [f for f in sorted(os.listdir(b))
            if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False)]


class TestPipeline(Base):
    """What a registry pipeline does with the package: models in memory
    (onnx.ModelProto with external data), check's dict, Python's errors for
    wrong arguments, load-time sharding (ranks=), pip install."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="onnxshard-pyext-")
        cls.model = os.path.join(cls.dir, "small.onnx")  # weights in small.onnx.data
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "bench", "make_llm.py"),
                        cls.model, "--layers", "1", "--hidden", "64", "--heads", "4",
                        "--vocab", "128"], check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_model_proto(self):
        import onnx
        proto = onnx.load(self.model, load_external_data=False)
        self.assertTrue(any(t.data_location == onnx.TensorProto.EXTERNAL
                            for t in proto.graph.initializer))
        # the data files found in base_dir: the same plan, the same rank files
        kw = dict(mesh="model=2", strategy="megatron")
        self.assertEqual(onnxshard.plan(proto, base_dir=self.dir, **kw),
                         onnxshard.plan(self.model, **kw))
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        onnxshard.shard(proto, a, base_dir=self.dir, **kw)
        onnxshard.shard(self.model, b, **kw)
        self.assertEqual(same_files(a, b), ["manifest.json"])  # its source's file name
        self.assertTrue(os.path.getsize(os.path.join(a, "rank1.onnx.data")) > 0)
        # bytes with base_dir too
        onnxshard.shard(proto.SerializeToString(), a, base_dir=self.dir, force=True, **kw)
        self.assertEqual(same_files(a, b), ["manifest.json"])
        self.assertEqual(onnxshard.inspect(proto, base_dir=self.dir)["ops"],
                         onnxshard.inspect(self.model)["ops"])
        a1, a2 = onnxshard.analyze(proto, base_dir=self.dir), onnxshard.analyze(self.model)
        self.assertEqual((a1.pop("file"), a2.pop("file")), ("<ModelProto>", self.model))
        self.assertEqual(a1, a2)
        # without base_dir, the data files are nowhere: said before any work
        with self.assertRaises(ValueError) as e:
            onnxshard.plan(proto, mesh="model=2")
        self.assertIn("base_dir", str(e.exception))
        self.assertIn("small.onnx.data", str(e.exception))
        # a base_dir without the files: the tool's error, naming the model so
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(proto, mesh="model=2", base_dir=self.tmp)
        self.assertEqual(e.exception.status, 2)
        self.assertTrue(str(e.exception).startswith("<ModelProto>: tensor "), str(e.exception))
        self.assertIn("small.onnx.data", str(e.exception))
        # a ModelProto without external data needs no base_dir
        self.assertEqual(onnxshard.plan(onnx.load(MLP), mesh="data=2"),
                         onnxshard.plan(MLP, mesh="data=2"))
        # nothing left behind in the temp dir
        self.assertFalse([n for n in os.listdir(tempfile.gettempdir())
                          if n.startswith("onnxshard-") and
                          os.path.exists(os.path.join(tempfile.gettempdir(), n, "model.onnx"))])

    def test_check_dict(self):
        out = os.path.join(self.tmp, "m.shards")
        onnxshard.shard(GPT2, out, mesh="data=2,model=2", strategy="data,megatron")
        cli = subprocess.run([CLI, "check", out], capture_output=True, text=True,
                             check=True).stdout
        c = onnxshard.check(out)
        self.assertEqual(set(c), {"ok", "ranks", "world_size", "collectives", "bytes", "absent"})
        self.assertEqual(cli.strip(), "ok: %d ranks, %d collectives, %d bytes" % (
            c["ranks"], c["collectives"], c["bytes"]))
        self.assertGreater(c["collectives"], 0)
        self.assertEqual(c["bytes"], sum(os.path.getsize(os.path.join(out, f))
                                         for f in os.listdir(out) if f != "manifest.json"))
        # a broken directory: Error, or with raises=False a dict saying why
        with open(os.path.join(out, "rank1.onnx"), "ab") as f:
            f.write(b"x")
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.check(out)
        r = onnxshard.check(out, raises=False)
        self.assertEqual(r, {"ok": False, "error": str(e.exception), "status": 2})
        self.assertIn("rank1.onnx", r["error"])

    def test_argument_errors(self):
        """Python's exceptions for what Python can tell; Error, naming the
        argument, for what the tool refuses."""
        for kw, exc in [(dict(mesh=4), TypeError), (dict(mesh={"data": "2"}), TypeError),
                        (dict(mesh="data=2", dims=7), TypeError),
                        (dict(mesh="data=2", dims=[8]), TypeError),
                        (dict(mesh="data=2", strategy=1), TypeError),
                        (dict(mesh="data=2", budget=True), TypeError),
                        (dict(mesh="data=2", budget=[1]), TypeError),
                        (dict(mesh="data=2", seed=-1), ValueError),
                        (dict(mesh="data=2", seed="1"), TypeError),
                        (dict(mesh="data=2", max_nodes=1.5), TypeError),
                        (dict(mesh="data=2", max_nodes=-3), ValueError),
                        (dict(mesh="data=2", cancel=True), TypeError),
                        (dict(mesh="data=2", gather_outputs=3), TypeError),
                        (dict(mesh="data=2", mseh="data=2"), TypeError),  # misspelled
                        (dict(mesh="data=2", budget="1 minute"), ValueError)]:
            with self.assertRaises(exc, msg=kw):
                onnxshard.plan(MLP, **kw)
        with self.assertRaises(TypeError):
            onnxshard.plan(12345, mesh="data=2")  # no model
        with self.assertRaises(TypeError):
            onnxshard.plan(MLP)  # no mesh
        with self.assertRaises(ValueError):
            onnxshard.inspect(MLP, "yaml")
        with self.assertRaises(TypeError):
            onnxshard.inspect(MLP, formt="json")
        with self.assertRaises(TypeError):
            onnxshard.check(42)
        with self.assertRaises(ValueError):
            onnxshard.plan(MLP, mesh="data=2", base_dir=self.tmp)  # a path needs none
        for kw in [dict(ranks="1"), dict(ranks=[1.0]), dict(ranks=True), dict(jobs="2")]:
            with self.assertRaises(TypeError, msg=kw):
                onnxshard.shard(MLP, os.path.join(self.tmp, "x"), mesh="data=2", **kw)
        with self.assertRaises(ValueError):
            onnxshard.shard(MLP, os.path.join(self.tmp, "x"), mesh="data=2", ranks=[])
        # the tool's own errors name the Python arguments, as the command its options
        out = os.path.join(self.tmp, "o")
        onnxshard.shard(MLP, out, mesh="data=2")
        for call, cli, want, cli_want in [
                (lambda: onnxshard.plan(MLP, mesh="data=2", dims={"nosuch": 3}),
                 ["plan", MLP, "--mesh", "data=2", "--dim", "nosuch=3"],
                 "dims='nosuch=3': the model has no symbolic dim 'nosuch'",
                 "--dim 'nosuch=3': the model has no symbolic dim 'nosuch'"),
                (lambda: onnxshard.shard(MLP, out, mesh="data=2"),
                 ["shard", MLP, "--mesh", "data=2", "-o", out],
                 "%s: already exists (use force=True to replace it)" % out,
                 "%s: already exists (use --force to replace it)" % out),
                (lambda: onnxshard.shard(MLP, out + "2", mesh="data=2", ranks=[2]),
                 ["shard", MLP, "--mesh", "data=2", "-o", out + "2", "--rank", "2"],
                 "ranks=2: the mesh data=2 has ranks 0 to 1",
                 "--rank 2: the mesh data=2 has ranks 0 to 1"),
                (lambda: onnxshard.plan(MLP, mesh="data=2", collectives="nccl"),
                 ["plan", MLP, "--mesh", "data=2", "--collectives", "nccl"],
                 "collectives='nccl': want onnxshard or ort",
                 "--collectives 'nccl': want onnxshard or ort")]:
            with self.assertRaises(onnxshard.Error) as e:
                call()
            self.assertEqual((e.exception.status, str(e.exception)), (2, want))
            self.assertEqual(cli_error(*cli), (2, cli_want))

    def test_ranks(self):
        """ranks=: the full run's bytes for those ranks; the directory checks
        and names the rest; one out shared by two calls ends whole."""
        kw = dict(mesh="data=2,model=2", strategy="data,megatron")
        full, part = os.path.join(self.tmp, "full"), os.path.join(self.tmp, "part")
        onnxshard.shard(GPT2, full, **kw)
        onnxshard.shard(GPT2, part, ranks=[2, 1], jobs=2, **kw)
        self.assertEqual(sorted(os.listdir(part)),
                         ["manifest.json", "rank1.onnx", "rank1.onnx.data", "rank2.onnx",
                          "rank2.onnx.data"])
        self.assertEqual(same_files(full, part), ["manifest.json"])
        c = onnxshard.check(part)
        self.assertEqual((c["ranks"], c["world_size"], c["absent"]), (2, 4, [0, 3]))
        import json
        with open(os.path.join(part, "manifest.json")) as f:
            m = json.load(f)
        self.assertEqual([r.get("written", True) for r in m["ranks"]], [False, True, True, False])
        with self.assertRaises(onnxshard.Error):
            onnxshard.stitch(part, os.path.join(self.tmp, "s.onnx"))
        onnxshard.shard(GPT2, part, ranks=0, **kw)
        onnxshard.shard(GPT2, part, ranks=(3,), **kw)
        self.assertEqual(same_files(full, part), [])
        self.assertEqual(onnxshard.check(part)["absent"], [])

    def test_pip_install(self):
        """pip install of the build's python folder, offline, with the
        distribution's setuptools: the installed package carries the library."""
        build_py = os.path.dirname(os.path.dirname(os.path.abspath(onnxshard.__file__)))
        if not os.path.isfile(os.path.join(build_py, "pyproject.toml")):
            self.skipTest("onnxshard is not imported from a build's python folder")
        src = os.path.join(self.tmp, "src")  # a copy: the build folder stays clean
        shutil.copytree(build_py, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        target = os.path.join(self.tmp, "site")
        p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index",
                            "--no-build-isolation", "--no-cache-dir", "--target", target, src],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.isfile(os.path.join(target, "onnxshard", "libonnxshard.so.0")))
        self.assertFalse(os.path.islink(os.path.join(target, "onnxshard", "libonnxshard.so.0")))
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "ONNXSHARD_LIBRARY")}
        env["PYTHONPATH"] = target
        code = ("import onnxshard, sys; print(onnxshard.__file__); print(onnxshard._lib._name); "
                "print(onnxshard.plan(sys.argv[1], mesh='data=2')['step_time_s'] > 0)")
        r = subprocess.run([sys.executable, "-c", code, MLP], capture_output=True, text=True,
                           env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.split()
        self.assertEqual(lines[0], os.path.join(target, "onnxshard", "__init__.py"))
        self.assertEqual(lines[1], os.path.join(target, "onnxshard", "libonnxshard.so.0"))
        self.assertEqual(lines[2], "True")


class Paused:
    """ONNXSHARD_TEST_PAUSE=PHASE:FILE (a test-only hook of api/pipeline.c)
    while in the block: a run of this process makes FILE at PHASE and waits
    until something is written into it. wait() until it has; go() lets it
    on."""

    def __init__(self, tmp, phase):
        self.file = os.path.join(tmp, "pause")
        self.phase = phase

    def __enter__(self):
        os.environ["ONNXSHARD_TEST_PAUSE"] = "%s:%s" % (self.phase, self.file)
        return self

    def __exit__(self, *exc):
        del os.environ["ONNXSHARD_TEST_PAUSE"]
        if os.path.exists(self.file):
            self.go()
            os.remove(self.file)

    def wait(self, alive):
        """True once the run paused; False if alive() turned false first."""
        while not os.path.exists(self.file):
            if not alive():
                return os.path.exists(self.file)
            time.sleep(0.005)
        return True

    def go(self):
        with open(self.file, "a") as f:
            f.write("go")


class TestCancel(Base):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="onnxshard-pyllm-")
        cls.model = os.path.join(cls.dir, "llm.onnx")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "bench", "make_llm.py"),
                        cls.model, "--layers", "8", "--hidden", "512", "--weights", "random"],
                       check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_cancel_before(self):
        out = os.path.join(self.tmp, "llm.shards")
        c = onnxshard.Cancel()
        c.set()
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.shard(self.model, out, mesh="data=2,model=2", cancel=c)
        self.assertEqual((e.exception.status, str(e.exception)), (1, "interrupted"))
        self.assertEqual(self.leftovers(out), [])

    def test_cancel_from_thread(self):
        """shard in a worker thread, cancelled from this one mid-run: while
        the run waits in the search, after planning, and after rank 0 is
        written (the hook holds it there, so the cancel is certainly seen
        mid-run)."""
        for phase in ("search", "emit", "rank"):
            out = os.path.join(self.tmp, "llm.shards")
            c = onnxshard.Cancel()
            box = {}

            def run():
                try:
                    box["plan"] = onnxshard.shard(self.model, out, mesh="data=2,model=2",
                                                  cancel=c)
                except onnxshard.Error as e:
                    box["error"] = e

            with Paused(self.tmp, phase) as p:
                t = threading.Thread(target=run)
                t.start()
                self.assertTrue(p.wait(t.is_alive), "%s: the run never paused" % phase)
                c.set()
                p.go()
                t.join()
            self.assertNotIn("plan", box, phase)
            self.assertEqual((box["error"].status, str(box["error"])), (1, "interrupted"),
                             phase)
            self.assertEqual(self.leftovers(out), [], phase)

    def test_ctrl_c(self):
        """A SIGINT to the main thread during shard (sent while the run waits
        in the search, and after rank 0 is written): KeyboardInterrupt, no
        out."""
        for phase in ("search", "rank"):
            out = os.path.join(self.tmp, "llm.shards")
            with Paused(self.tmp, phase) as p:
                done = threading.Event()

                def interrupt():
                    if p.wait(lambda: not done.is_set()):
                        os.kill(os.getpid(), signal.SIGINT)
                        p.go()

                sender = threading.Thread(target=interrupt)
                sender.start()
                try:
                    with self.assertRaises(KeyboardInterrupt, msg=phase):
                        onnxshard.shard(self.model, out, mesh="data=2,model=2")
                finally:
                    done.set()
                    sender.join()
            self.assertEqual(self.leftovers(out), [], phase)


if __name__ == "__main__":
    unittest.main()
