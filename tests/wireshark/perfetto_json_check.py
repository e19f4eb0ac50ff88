#!/usr/bin/env python3
"""Checks `coreio-trace export --perfetto` against what Perfetto's legacy JSON
importer needs: valid JSON, named processes and threads (no pid/tid 0, a tid
in one process only), MMIO/DMA slices with their latency, IRQ lines as
counters, and DMA flows whose ends fall inside the causing MMIO slice and the
DMA slice. Usage: perfetto_json_check.py COREIO_TRACE GOLDEN_TRACE OUT_DIR"""
import json
import os
import subprocess
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def near(a, b):
    return abs(a - b) < 1e-6


def main():
    tool, golden, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "golden.json")
    subprocess.run([tool, "export", golden, "--perfetto", out], check=True)
    with open(out) as f:
        doc = json.load(f)  # must be valid JSON
    events = doc["traceEvents"]
    if doc.get("displayTimeUnit") != "ns":
        fail("displayTimeUnit is not ns")

    processes, threads, tid_pid = {}, {}, {}
    slices, counters, flows = [], {}, {}
    for e in events:
        ph = e["ph"]
        if ph not in "MXCisf":
            fail("unexpected phase %r" % ph)
        if e.get("pid") == 0 or e.get("tid") == 0:
            fail("pid/tid 0 is the idle task in Perfetto: %r" % e)
        if "tid" in e:
            if tid_pid.setdefault(e["tid"], e["pid"]) != e["pid"]:
                fail("tid %d used in two processes" % e["tid"])
        if ph == "M" and e["name"] == "process_name":
            processes[e["pid"]] = e["args"]["name"]
        elif ph == "M" and e["name"] == "thread_name":
            threads[e["tid"]] = e["args"]["name"]
        elif ph == "X":
            if e["tid"] not in threads:
                fail("slice on an unnamed thread before its name: %r" % e)
            if not e["dur"] > 0:
                fail("slice without duration: %r" % e)
            slices.append(e)
        elif ph == "C":
            for k, v in e["args"].items():
                counters.setdefault("%s %s" % (e["name"], k), []).append((e["ts"], v))
        elif ph in "sf":
            flows.setdefault(e["id"], {})[ph] = e
        elif ph == "i" and e["tid"] not in threads:
            fail("instant on an unnamed thread: %r" % e)

    if processes != {1: "client 0", 2: "client 1"}:
        fail("processes: %r" % processes)
    names = sorted(threads.values())
    if names != sorted(["events", "events", "MMIO rid 0", "MMIO rid 3", "DMA mid 0", "DMA mid 1"]):
        fail("thread tracks: %r" % names)

    read = [s for s in slices if s["name"] == "READ 0x10000004"]
    if len(read) != 1 or not near(read[0]["ts"], 2.5) or not near(read[0]["dur"], 1.234):
        fail("the 4-byte read is not a 1.234 us slice at 2.5 us: %r" % read)
    if read[0]["cat"] != "mmio" or threads[read[0]["tid"]] != "MMIO rid 0" or read[0]["args"]["data"] != "0x2a":
        fail("the read's track or arguments: %r" % read[0])
    dma = [s for s in slices if s["cat"] == "dma"]
    if sorted(threads[s["tid"]] for s in dma) != ["DMA mid 0", "DMA mid 1"]:
        fail("DMA slices: %r" % dma)
    err = [s for s in slices if s["args"]["error"]]
    if sorted(s["name"] for s in err) != ["READ 0x20003100", "READ 0x80000000"]:
        fail("error slices: %r" % err)

    if counters.get("IRQ rid 3 line5") != [(0.0, 0), (10.0, 1)]:
        fail("IRQ counter: %r" % counters)

    # Flows: the golden DMA write was caused by record 7, the posted pair write.
    def enclosing(point):
        return [s for s in slices if s["tid"] == point["tid"] and s["ts"] - 1e-9 <= point["ts"] < s["ts"] + s["dur"]]

    if len(flows) != 1:
        fail("expected one DMA flow: %r" % flows)
    for fid, f in flows.items():
        if set(f) != {"s", "f"} or f["s"]["name"] != f["f"]["name"] or f["s"]["cat"] != f["f"]["cat"]:
            fail("flow %r lacks a matching start and end" % fid)
        if f["f"].get("bp") != "e":
            fail("flow end must bind to its enclosing slice")
        src, dst = enclosing(f["s"]), enclosing(f["f"])
        if [s["name"] for s in src] != ["WRITEP 0x10000020"]:
            fail("flow start not inside the causing MMIO slice: %r" % src)
        if [s["name"] for s in dst] != ["WRITEA 0x80000010"] or dst[0]["cat"] != "dma":
            fail("flow end not inside the DMA slice: %r" % dst)
        if events.index(f["s"]) < events.index(src[0]) or events.index(f["f"]) < events.index(dst[0]):
            fail("a flow end precedes its slice in the file")
    print("PASS: %d events, %d slices, %d counters, %d flows" % (len(events), len(slices), len(counters), len(flows)))


main()
