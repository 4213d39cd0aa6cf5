#!/usr/bin/env python3
"""`make bench-watch`: the watch daemon under a steady stream of scans.

Makes a working folder with `todoke init`, synthesises a set of pages at
300 dpi, then drops them into the branch inboxes over and over, each copy
made unique by bytes appended after the format's end marker (decoders
ignore them), until PAGES pages have been dropped. Reports:
- latency: from a file's last write to its record in the ledger, for files
  dropped one at a time while the daemon is idle (target: quiet + 2 s);
- throughput: pages per second while watching a backlog;
- memory: the daemon's resident set after the first 1,000 pages and at the end.
"""
import os, shutil, sqlite3, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/todoke")
PAGES = int(os.environ.get("BENCH_PAGES", "10000"))
QUIET = float(os.environ.get("BENCH_QUIET", "5"))
work = tempfile.mkdtemp(prefix="todoke-bench-")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ledger_counts(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        pages = con.execute("SELECT count(*) FROM pages").fetchone()[0]
        q = con.execute("SELECT count(*) FROM scans WHERE state = 'quarantined'").fetchone()[0]
        rec = con.execute("SELECT count(*) FROM scans WHERE state = 'received'").fetchone()[0]
        return pages, q, rec
    finally:
        con.close()


def main():
    synth = os.path.join(work, "synth")
    subprocess.run([BIN, "synth", "--count", "100", "--seed", "31", "--dpi", "300",
                    "--out", synth, "--branches", "honcho,sakura,yatabe"],
                   check=True, stdout=subprocess.DEVNULL)
    files = []
    for branch in ("honcho", "sakura", "yatabe"):
        d = os.path.join(synth, "inbox", branch)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                files.append((branch, name, f.read()))
    with open(os.path.join(synth, "summary.json")) as f:
        import json
        per_round = json.load(f)["pages"]
    wf = os.path.join(work, "todoke")
    subprocess.run([BIN, "init", wf], check=True, stdout=subprocess.DEVNULL)
    settings = os.path.join(wf, "todoke.toml")
    text = open(settings).read().replace('close_at = "Mon 09:00"', 'close_at = ""')
    text = text.replace("quiet_secs = 5.0", f"quiet_secs = {QUIET}")
    open(settings, "w").write(text)
    shutil.copy(os.path.join(synth, "register.csv"), os.path.join(wf, "register.csv"))
    db = os.path.join(wf, "todoke.db")
    env = dict(os.environ, TODOKE_LOG="warn")
    daemon = subprocess.Popen([BIN, "watch", "--config", settings], env=env)
    time.sleep(2)
    serial = 0

    def drop(branch, name, data):
        nonlocal serial
        serial += 1
        path = os.path.join(wf, "inbox", branch, f"{serial:06d}-{name}")
        with open(path + ".part", "wb") as f:
            f.write(data + b"\n%bench " + str(serial).encode() + b"\n")
        os.rename(path + ".part", path)  # as copy tools do
        return path

    # Latency: single files into an idle daemon.
    lat = []
    for branch, name, data in files[:5]:
        before = ledger_counts(db)[0]
        drop(branch, name, data)
        t = time.time()
        while ledger_counts(db)[0] == before:
            time.sleep(0.05)
        lat.append(time.time() - t)
    print(f"latency from last write to record (quiet {QUIET:g} s): "
          + ", ".join(f"{x:.2f}" for x in lat) + " s")

    # Throughput and memory: a steady backlog, in rounds of the synth set.
    dropped = sum(1 for _ in lat)
    pages_dropped = 0
    start_pages = ledger_counts(db)[0]
    t0 = time.time()
    rss_at_1000 = None
    # The first pages wait out the quiet period, which `run` does not; the
    # rate after the first record is the reading rate to compare with it.
    first = None
    i = 0
    while pages_dropped < PAGES:
        # Keep at most ~2 rounds waiting, so the backlog is real but bounded.
        while True:
            pages, q, rec = ledger_counts(db)
            if first is None and pages > start_pages:
                first = (time.time(), pages)
            if pages_dropped - (pages - start_pages) < 2 * per_round:
                break
            if rss_at_1000 is None and pages - start_pages >= 1000:
                rss_at_1000 = rss_mb(daemon.pid)
            time.sleep(0.5)
        for branch, name, data in files:
            drop(branch, name, data)
        pages_dropped += per_round
        i += 1
    expected = start_pages + pages_dropped
    while ledger_counts(db)[0] < expected:
        pages, q, rec = ledger_counts(db)
        if first is None and pages > start_pages:
            first = (time.time(), pages)
        if rss_at_1000 is None and pages - start_pages >= 1000:
            rss_at_1000 = rss_mb(daemon.pid)
        time.sleep(0.5)
    elapsed = time.time() - t0
    rss_end = rss_mb(daemon.pid)
    done = ledger_counts(db)[0] - start_pages
    daemon.terminate()
    daemon.wait()
    print(f"throughput while watching: {done} pages in {elapsed:.0f} s = {done / elapsed:.1f} pages/s "
          f"from the first drop; {(ledger_counts(db)[0] - first[1]) / (t0 + elapsed - first[0]):.1f} pages/s "
          "from the first record", flush=True)
    at_1000 = f"{rss_at_1000:.0f} MB after 1,000 pages, " if rss_at_1000 else ""
    print(f"daemon memory: {at_1000}{rss_end:.0f} MB after {done} pages")
    t = time.time()
    subprocess.run([BIN, "batch", "close", "--config", settings], check=True, stdout=subprocess.DEVNULL)
    print(f"batch close of {done} pages: {time.time() - t:.0f} s")


try:
    main()
finally:
    shutil.rmtree(work, ignore_errors=True)
