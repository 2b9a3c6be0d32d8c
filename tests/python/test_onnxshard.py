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
        self.assertTrue(onnxshard.check(out).startswith("ok: 4 ranks"))
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
        self.assertTrue(onnxshard.check(os.path.join(self.tmp, "m.shards")).startswith("ok"))

    def test_bytes(self):
        with open(MLP, "rb") as f:
            data = f.read()
        self.assertEqual(onnxshard.plan(data, mesh="data=2"), onnxshard.plan(MLP, mesh="data=2"))
        out = os.path.join(self.tmp, "b.shards")
        onnxshard.shard(data, out, mesh="data=2")
        self.assertTrue(onnxshard.check(out).startswith("ok: 2 ranks"))
        self.assertEqual(onnxshard.inspect(data)["ops"], onnxshard.inspect(MLP)["ops"])
        self.assertEqual(onnxshard.analyze(data)["classes"], onnxshard.analyze(MLP)["classes"])
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(b"not a model", mesh="data=2")
        self.assertEqual(e.exception.status, 2)
        self.assertTrue(str(e.exception).startswith("<bytes>: "), str(e.exception))
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.shard(data, mesh="data=2")  # no out for bytes
        self.assertEqual(e.exception.status, 2)

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
        for bad in [dict(budget="soon"), dict(budget="0p"), dict(max_model_bytes="lots"),
                    dict(hardware="no-such-device")]:
            with self.assertRaises(onnxshard.Error) as e:
                onnxshard.plan(MLP, mesh="data=2", **bad)
            self.assertEqual(e.exception.status, 2, bad)
        with self.assertRaises(onnxshard.Error) as e:
            onnxshard.plan(MLP, mesh="data=2", max_model_bytes=1000)
        self.assertEqual(e.exception.status, 2)
        p = onnxshard.plan(MLP, mesh="data=2", hardware="cpu", budget=2.5,
                           collectives="ort", max_model_bytes="1G", max_nodes=1000)
        self.assertEqual(p["hardware"], "cpu")


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
        """shard in a worker thread, cancelled from this one mid-run."""
        out = os.path.join(self.tmp, "llm.shards")
        c = onnxshard.Cancel()
        box = {}

        def run():
            try:
                box["plan"] = onnxshard.shard(self.model, out, mesh="data=2,model=2", cancel=c)
            except onnxshard.Error as e:
                box["error"] = e

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.1)
        c.set()
        t.join()
        if "plan" in box:  # finished before the flag was seen: whole
            self.assertTrue(onnxshard.check(out).startswith("ok"))
            self.skipTest("shard finished before the cancel")
        self.assertEqual((box["error"].status, str(box["error"])), (1, "interrupted"))
        self.assertEqual(self.leftovers(out), [])

    def test_ctrl_c(self):
        """A SIGINT to the main thread during shard: KeyboardInterrupt, no out."""
        out = os.path.join(self.tmp, "llm.shards")
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with self.assertRaises(KeyboardInterrupt):
                onnxshard.shard(self.model, out, mesh="data=2,model=2")
        finally:
            timer.cancel()
        self.assertEqual(self.leftovers(out), [])


if __name__ == "__main__":
    unittest.main()
