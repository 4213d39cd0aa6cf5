#!/usr/bin/env python3
"""`make bench-pages`: how many synthetic pages validate, and whether any
validated record differs from what is written on the paper.

Synthesises BENCH_PAGES pages (default 1000; digits are real handwriting,
by default from the evaluation split the model never saw; BENCH_DIGITS=
validation for the fold thresholds are picked on), runs `todoke run`, and
compares every record with its truth file. Prints the share of
non-deliberate-mismatch pages validated, the wrong validated records (must
be 0), and that every deliberate mismatch reached staff.
"""
import csv, json, os, shutil, subprocess, sys, tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/todoke")
PAGES = os.environ.get("BENCH_PAGES", "1000")
SEED = os.environ.get("BENCH_SEED", "777")
# Evaluation handwriting by default: the model never saw it, so the figure is
# what a new writer gets. `validation` is for picking thresholds; never pick
# them on `evaluation`.
DIGITS = os.environ.get("BENCH_DIGITS", "evaluation")
# The day todoke takes the pages in, which no date on them may pass
# (`not_after_receipt`). Synthetic pages are one week's intake taken in on
# 2026-11-27 (synth::TAKEN_IN), so by default they are run on that day, the
# bound a weekly batch has; BENCH_TAKEN_IN=YYYY-MM-DD runs them on a later
# day (a batch left waiting), `today` on the real clock. The clock is moved
# with faketime, from outside: todoke has no setting that moves it.
TAKEN_IN = os.environ.get("BENCH_TAKEN_IN", "2026-11-27")


# ---------------------------------------------------------------- checkboxes
# Issue 14: checkbox answers by how they were marked (synth truth
# `mark_styles`; `/bw` for black-and-white scans). An answer is read right
# when its field is ok and holds it, doubtful when its field goes to staff,
# and wrong when its field is ok without it (or with an option not on the
# paper): the failure that must never happen. Reads the records of the
# bench's own run (below), not a second run of its own.
def checkbox_report(records, truth):
    from collections import defaultdict
    by_style = defaultdict(Counter)
    staff_pages = Counter()
    wrong_validated = 0
    for r in records:
        t = truth[(r["source"], r["page"])]
        styles = t.get("mark_styles", {})
        choice = [f for f, v in t["fields"].items() if f in styles and not isinstance(v, str)]
        for f in choice:
            want = t["fields"][f]
            want = want if isinstance(want, list) else [want]
            got = r["fields"].get(f, {})
            gv = got.get("value")
            gv = gv if isinstance(gv, list) else ([] if gv is None else [gv])
            key = styles[f] + ("/bw" if t.get("bilevel") else "")
            for o in want:
                if got.get("status") != "ok":
                    by_style[key]["doubtful"] += 1
                elif o in gv and sorted(gv) == sorted(want):
                    by_style[key]["right"] += 1
                else:
                    by_style[key]["wrong"] += 1
            if r["status"] == "validated" and sorted(gv) != sorted(want):
                wrong_validated += 1
                print(f"WRONG CHECKBOX {r['source']} p{r['page']} {f}", file=sys.stderr)
        if r["status"] != "validated" and choice:
            if any(x.split(":")[1] in choice for x in r["reasons"] if ":" in x):
                staff_pages["checkbox"] += 1
                if all(x.split(":")[1] in choice for x in r["reasons"] if ":" in x):
                    staff_pages["checkbox_only"] += 1
    print("checkbox answers by style (right / doubtful / wrong):")
    for k in sorted(by_style):
        c = by_style[k]
        n = sum(c.values())
        print(f"  {k:12} {n:5}  right {c['right']} ({100 * c['right'] / max(n, 1):.1f}%), "
              f"doubtful {c['doubtful']}, wrong {c['wrong']}")
    print(f"checkbox answers wrong in a validated record: {wrong_validated}; pages to staff "
          f"with a checkbox reason: {staff_pages['checkbox']} "
          f"(for that reason alone: {staff_pages['checkbox_only']})")


work = tempfile.mkdtemp(prefix="todoke-pages-")
# Synthesis is the slow part and depends only on count and seed (and the
# synth code): kept under target/ so a re-measurement after a reader or
# threshold change reads the very same pages.
synth = os.path.join(ROOT, "target", f"bench-pages-{PAGES}-{SEED}-{DIGITS}")
try:
    if not os.path.exists(os.path.join(synth, "summary.json")):
        shutil.rmtree(synth, ignore_errors=True)
        subprocess.run([BIN, "synth", "--count", PAGES, "--seed", SEED, "--out", synth,
                        "--branches", "honcho,sakura,yatabe", "--digits", DIGITS], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(work, "out")
    # BENCH_CONFIG: settings to run with (e.g. forms with other thresholds).
    extra = ["--config", os.environ["BENCH_CONFIG"]] if os.environ.get("BENCH_CONFIG") else []
    clock = [] if TAKEN_IN == "today" else ["faketime", "-f", f"@{TAKEN_IN} 17:00:00"]
    print(f"pages taken in on {TAKEN_IN}", flush=True)
    subprocess.run(clock + [BIN, "run", os.path.join(synth, "inbox"), "--register",
                    os.path.join(synth, "register.csv"), "--out", out, "--batch-id", "b"] + extra,
                   check=True, stdout=subprocess.DEVNULL)
    truth = {}
    for branch in os.listdir(os.path.join(synth, "truth")):
        d = os.path.join(synth, "truth", branch)
        for name in os.listdir(d):
            t = json.load(open(os.path.join(d, name)))
            for p in t["pages"]:
                truth[(t["file"], p["page"])] = p
    # records.jsonl masks My Number; the core system's CSV carries it whole,
    # so that is what a validated My Number is checked against.
    my_numbers = {}
    batch = os.path.join(out, "batches/b")
    for name in os.listdir(batch):
        if name.endswith(".csv") and name != "mismatches.csv":
            with open(os.path.join(batch, name), encoding="cp932", newline="") as f:
                for row in csv.DictReader(f):
                    if "個人番号" in row:
                        my_numbers[(row["ファイル名"], int(row["ページ"]))] = row["個人番号"]
    readable = validated = wrong = deliberate = caught = 0
    # What no threshold can change: pages whose digit fields the reader's
    # first choice gets right (My Number aside: records.jsonl masks it), and
    # its first choice per cell on the addressee numbers, which are not masked.
    all_right = atena_cells = atena_right = 0
    reasons = Counter()
    records = [json.loads(line) for line in open(os.path.join(out, "batches/b/records.jsonl"))]
    for r in records:
        t = truth[(r["source"], r["page"])]
        if t["mismatch"]:
            deliberate += 1
            caught += r["status"] == "mismatch"
        elif t["fields"]:
            readable += 1
            all_right += all(r["fields"].get(f, {}).get("value") == v
                             for f, v in t["fields"].items()
                             if f != "my_number" and isinstance(v, str))
            got = r["fields"].get("atena_no", {}).get("value")
            want = t["fields"].get("atena_no")
            if isinstance(got, str) and isinstance(want, str) and len(got) == len(want):
                atena_cells += len(want)
                atena_right += sum(a == b for a, b in zip(got, want))
            if r["status"] != "validated":
                for x in r["reasons"]:
                    reasons[x.split(":")[0] + ":" + (x.split(":")[1] if ":" in x else "")] += 1
        if r["status"] == "validated":
            validated += 1
            for fid, want in t["fields"].items():
                got = r["fields"].get(fid, {}).get("value")
                if fid == "my_number":
                    ok = my_numbers.get((r["source"], r["page"])) == want
                else:
                    ok = got == want
                if not ok:
                    wrong += 1
                    print(f"WRONG {r['source']} p{r['page']} {fid}", file=sys.stderr)
                    break
    print(f"pages: {len(truth)}; read sides that should validate: {readable}; "
          f"validated: {validated} ({100 * validated / max(readable, 1):.1f}%); "
          f"validated but differing from the paper: {wrong}; "
          f"deliberate mismatches reaching staff: {caught} of {deliberate}")
    print(f"read right at the reader's first choice: every digit field but the My Number on "
          f"{all_right} of {readable} pages ({100 * all_right / max(readable, 1):.1f}%); "
          f"addressee-number cells {100 * atena_right / max(atena_cells, 1):.2f}% of {atena_cells}")
    print("most common reasons on pages that did not validate:",
          ", ".join(f"{k} {v}" for k, v in reasons.most_common(8)))
    if os.environ.get("BENCH_CHECKBOXES", "1") != "0":
        checkbox_report(records, truth)
finally:
    shutil.rmtree(work, ignore_errors=True)
