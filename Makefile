# storycluster: `make demo` runs the tool on the bundled seed archive, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed
DEMO_STORE := .demo-store
BENCH_STORE := .bench-store
ECB := ../shared/data/ecbplus/articles.jsonl

.PHONY: install demo test typecheck lint bench quality calibrate clean

install: $(STAMP)

# the tool alone (what `make demo` needs: no torch, Ray or browser)
$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(BASE)

# the dev extras for tests and benchmarks. torch==2.13.0 first: that CPU build is on this machine's disk;
# anything else pulls a multi-GB CUDA build when sentence-transformers (for the --model loader test) asks for torch.
$(STAMP): $(BASE)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(BASE)
	rm -rf $(DEMO_STORE)
	$(VENV)/bin/storycluster add --store $(DEMO_STORE) seeds/articles.jsonl
	@echo
	$(VENV)/bin/storycluster dedup --store $(DEMO_STORE) --all
	@echo
	$(VENV)/bin/storycluster related --store $(DEMO_STORE) seed-main -k 10
	@echo
	$(VENV)/bin/storycluster stats --store $(DEMO_STORE)

# the Ray tests run in a network namespace with loopback only (Ray listens on every interface)
test: $(STAMP)
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -m 'not ray'
	tests/isolated.sh $(PY) -m pytest -q -m ray

typecheck: $(STAMP)  # mypy over the package ([tool.mypy] in pyproject.toml); make test runs it first
	$(VENV)/bin/mypy

lint: $(STAMP)
	$(VENV)/bin/ruff check .

quality: $(STAMP)
	$(PY) bench/quality.py

calibrate: $(STAMP)  # refits storycluster/cluster/story_model.json on ECB+, SemEval-2022 dev and WMT (../shared/data)
	$(PY) bench/calibrate.py

bench: quality
	$(PY) bench/ecb_baseline.py
	$(PY) bench/representation.py
	$(PY) bench/title_weight.py
	$(PY) bench/serve_load.py
	$(PY) bench/recommend.py
	$(PY) bench/embed.py
	$(PY) bench/lexical.py
	$(PY) bench/incremental.py
	$(PY) bench/scale.py --store $(BENCH_STORE) --repeat 3
	$(PY) bench/related_scale.py --store $(BENCH_STORE) --regroup
	$(PY) bench/report.py --store $(BENCH_STORE)
	$(PY) bench/dist.py --n 100000

# an ECB+ store: real embeddings and terms for the scale benchmarks' synthetic articles
$(BENCH_STORE)/config.json: $(STAMP)
	rm -rf $(BENCH_STORE)
	$(VENV)/bin/storycluster add --store $(BENCH_STORE) --on-error skip $(ECB)

bench: $(BENCH_STORE)/config.json

clean:
	rm -rf $(VENV) $(DEMO_STORE) $(BENCH_STORE) .pytest_cache .ruff_cache *.egg-info .bench-devsets
