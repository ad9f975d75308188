# storycluster: `make demo` runs the tool on the bundled seed archive, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STORE := .demo-store

.PHONY: install demo test lint bench quality calibrate clean

install: $(STAMP)

# torch==2.13.0 first: that CPU build is on this machine's disk; anything else pulls a multi-GB CUDA build
# when sentence-transformers (a dev extra, for the --model loader test) asks for torch.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_STORE)
	$(VENV)/bin/storycluster add --store $(DEMO_STORE) seeds/articles.jsonl
	@echo
	$(VENV)/bin/storycluster dedup --store $(DEMO_STORE) --all
	@echo
	$(VENV)/bin/storycluster related --store $(DEMO_STORE) seed-main -k 10
	@echo
	$(VENV)/bin/storycluster stats --store $(DEMO_STORE)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

quality: $(STAMP)
	$(PY) bench/quality.py

calibrate: $(STAMP)  # refits storycluster/cluster/story_model.json on ECB+
	$(PY) bench/calibrate.py

bench: quality
	$(PY) bench/ecb_baseline.py
	$(PY) bench/representation.py
	$(PY) bench/title_weight.py
	$(PY) bench/serve_load.py
	$(PY) bench/embed.py
	$(PY) bench/lexical.py
	$(PY) bench/incremental.py
	# bench/scale.py --store DIR and bench/report.py --store DIR need an ECB+ store (e.g. from bench/serve_load.py)

clean:
	rm -rf $(VENV) $(DEMO_STORE) .pytest_cache .ruff_cache *.egg-info
