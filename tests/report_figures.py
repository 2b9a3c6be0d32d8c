#!/usr/bin/python3
"""The plan report's figures against `plan --json`'s (tests/report.sh).

    /usr/bin/python3 tests/report_figures.py PAGE PLAN.json

PAGE: the HTML report, or the DOM Chromium dumped of it. Its text (tags,
styles and charts stripped) must give the step time, compute and
communication times, peak memory per rank (the largest rank's), bytes sent
per rank and the count of collectives that PLAN.json (`plan --json` of the
same run) has, to the page's 3 significant digits. Prints that count;
exits non-zero naming the first figure that differs.
"""
import html
import json
import re
import sys

SECS = {"\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0}
BYTES = {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15}
NUM = r"([0-9]+(?:\.[0-9]+)?) "
SEC_UNIT = r"(\u00b5s|ms|s)\b"
BYTE_UNIT = r"(B|KB|MB|GB|TB|PB)\b"
# the communicating reshard steps; Slice and Mask are local
COLLECTIVES = ("AllReduce", "ReduceScatter", "AllGather", "AllToAll")


def page_text(path):
    page = open(path, encoding="utf-8").read()
    page = re.sub(r"<(style|svg)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def read(text, pattern, units):
    m = re.search(pattern, text)
    if not m:
        sys.exit("no match for %r in the page's text: %s" % (pattern, text[:300]))
    return float(m.group(1)) * units[m.group(2)]


def near(what, got, want):
    """3 significant digits: within half a unit of the third."""
    if abs(got - want) > 0.0051 * abs(want) + 1e-15:
        sys.exit("%s: the page says %.4g, plan --json %.4g" % (what, got, want))


def main():
    text = page_text(sys.argv[1])
    plan = json.load(open(sys.argv[2]))
    near("step time", read(text, "step time " + NUM + SEC_UNIT, SECS), plan["step_time_s"])
    near("compute", read(text, "compute / communication " + NUM + SEC_UNIT, SECS),
         plan["compute_s"])
    near("communication", read(text, "compute / communication [^/]*/ " + NUM + SEC_UNIT, SECS),
         plan["comm_s"])
    near("peak memory", read(text, r"peak memory per rank \(of [^)]*\) " + NUM + BYTE_UNIT, BYTES),
         max(plan["peak_memory_bytes"]))
    near("bytes sent", read(text, "sent per rank per step " + NUM + BYTE_UNIT, BYTES),
         plan["comm_bytes"])
    want = sum(1 for r in plan["reshards"] if r["op"] in COLLECTIVES)
    m = re.search(r"Collectives ([0-9]+) collectives?;", text)
    if not m or int(m.group(1)) != want:
        sys.exit("collectives: the page says %s, plan --json %d" % (m and m.group(1), want))
    print(want)


if __name__ == "__main__":
    main()
