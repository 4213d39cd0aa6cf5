# The two commands a newcomer needs are `make demo` and `make test`.
# Everything builds in release mode so dependencies compile once.
CARGO ?= cargo
OUT ?= out/demo
BIN = target/release/todoke

.PHONY: setup build demo test deb test-deb bench bench-watch bench-pages bench-digits bench-hostile train-digits lint samples

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

demo: build
	$(BIN) run samples/inbox --register seeds/register.csv --out $(OUT)
	@echo "batch and report: $$(ls -d $(OUT)/batches/* | tail -n 1)"
	$(BIN) tally --batches $(OUT)/batches --from 2025-04-01 --to 2027-03-31 --by branch --out $(OUT)/tally

test: setup
	$(CARGO) test --release

# The Debian package, target/debian/todoke_<version>_amd64.deb (cargo-deb,
# pinned in scripts/deb.sh and installed on first use).
deb: setup
	@bash scripts/deb.sh

# Builds the package, checks it with lintian, unpacks it into an empty root
# and runs it from outside the checkout: init, run on the samples and watch
# on a few must give make demo's records (about 3 minutes once built).
test-deb: setup
	bash scripts/test-deb.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# 200 synthetic pages at 300 dpi through `todoke run`; prints pages/s and peak memory.
bench: build
	bash scripts/bench.sh

# The daemon under a stream of scans: latency, pages/s, memory after 1,000
# and BENCH_PAGES (default 10,000) pages.
bench-watch: build
	python3 scripts/bench-watch.py

# 1,000 synthetic pages: share validated, and validated records that differ
# from the paper (must be none).
bench-pages: build
	python3 scripts/bench-pages.py

# One core, as the figure in the issue is stated per core.
bench-digits: build
	RAYON_NUM_THREADS=1 $(BIN) bench digits

# Five members, two at a time, 16 epochs each, then joined (a pair took
# 21 minutes on the quiet 2-core machine, so about 65 minutes in all; see
# models/README.md). Interrupted, it resumes after the last finished epoch
# when run again.
train-digits: build
	bash scripts/train-digits.sh

# Regenerates samples/ and seeds/register.csv (seed 11, 18 pages, two branches; digits from the training split).
samples: build
	TODOKE_SAMPLE_SEED=11 $(CARGO) test --release --lib synth::tests::make_samples -- --ignored

# Peak memory of `todoke run` and `todoke watch` on single hostile files
# (huge Group 4 pages, huge or many PDF pages, a 1 GB file); must stay
# under 500 MB each. TODOKE_BENCH_BIN measures another build.
bench-hostile: build
	$(CARGO) test --release --test bench_hostile -- --ignored --nocapture
