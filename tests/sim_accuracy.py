#!/usr/bin/python3
"""The simulator's accuracy, held out (ctest sim_accuracy).

    /usr/bin/python3 tests/sim_accuracy.py BUILD [--runs N] [--rounds R] [--min RHO]

The (model, plan) pairs of tests/sim_validate.py (every model of samples/
and samples/corpus/, each under data on data=2 and megatron on model=2 and
model=4; rank 0 timed in ONNX Runtime on one thread, the median of N runs
or more, in R rounds over all pairs, each pair keeping its least median)
are split by model, so that no model is in both halves: a model
is in the calibration half when the crc32 of its name is even, else held
out. The cpu profile is fitted on the calibration half (sim_validate's
grid search); the held-out pairs are simulated on the fitted profile and
Spearman's rank correlation between simulated and measured times over them
must be RHO (default 0.9) or more. Ranks, not times, are asserted: a busy
machine shifts every time, much less their order. Prints the calibration
half's and the held-out half's correlation, and the cpu preset's on the
held-out half.
"""
import argparse
import os
import shutil
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_validate as sv  # noqa: E402


def held_out(name):
    """The split: by the model's name, fixed and independent of the others."""
    return zlib.crc32(name.encode()) & 1 == 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min", type=float, default=0.9)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sim_accuracy.")
    try:
        done, call = sv.measure(a.build, "cpu", sv.models(""), a.runs, work, a.rounds)
        cal = [p for p in done if not held_out(p["model"])]
        test = [p for p in done if held_out(p["model"])]
        cal_models = sorted({p["model"] for p in cal})
        test_models = sorted({p["model"] for p in test})
        print("calibration half: %d pairs of %d models: %s" % (len(cal), len(cal_models),
                                                                 " ".join(cal_models)))
        print("held-out half: %d pairs of %d models: %s" % (len(test), len(test_models),
                                                            " ".join(test_models)))
        if len(cal) < 20 or len(test) < 20:
            sys.exit("FAIL: too few pairs ran (%d and %d; want 20 in each half)" % (
                len(cal), len(test)))
        fitted = os.path.join(work, "cpu-fit.json")
        fl, bw, oh, rms = sv.fit(a.build, cal, fitted)
        print("fit on the calibration half: peak_flops.float32 %.3g  memory_bandwidth %.3g  "
              "op_overhead %.3g  (rms log error %.3f)" % (fl, bw, oh, rms))
        for p in test:
            p["fit_s"] = sv.simulate(a.build, fitted, p["path"], p["mesh"], p["strategy"],
                                     p["dims"])["compute_s"]
        rho_cal = sv.spearman([p["fit_s"] for p in cal], [p["measured_s"] for p in cal])
        rho = sv.spearman([p["fit_s"] for p in test], [p["measured_s"] for p in test])
        rho_preset = sv.spearman([p["compute_s"] for p in test],
                                 [p["measured_s"] for p in test])
        print("Spearman, fitted profile, calibration half: %.3f" % rho_cal)
        print("Spearman, fitted profile, held-out half: %.3f (want >= %.2f)" % (rho, a.min))
        print("Spearman, cpu preset, held-out half: %.3f" % rho_preset)
        if not rho >= a.min:
            sv.summary(test, "fit_s")
            sys.exit("FAIL: held-out Spearman %.3f < %.2f" % (rho, a.min))
        print("sim_accuracy: 1 passed, 0 failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
