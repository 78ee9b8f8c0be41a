# Two commands for a fresh machine; each creates the virtual environment on first use.
#   make demo   train CRATE on the embedded digits, then write the layer-by-layer report (runs/demo)
#   make test   run the test suite
#   make claims run every published claim at the CPU scale (runs/claims) and put its table into README.md
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
MNIST  ?= ../shared/data/mnist

.PHONY: demo test claims install clean browser

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" || $(BIN)/python -m pip install -q "torch>=2.3"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/srr train --out runs/demo --overwrite
	$(BIN)/srr analyze runs/demo --data digits --out runs/demo/analysis

claims: $(BIN)/.installed
	$(BIN)/srr reproduce --all --scale cpu $(if $(wildcard $(MNIST)),--data idx:$(MNIST)) --out runs/claims --resume
	$(BIN)/python -c "import pathlib, srr.claims as c; r = pathlib.Path('README.md'); \
	t = pathlib.Path('runs/claims/claims.md').read_text().replace('idx:$(MNIST)', 'idx:MNIST_DIR'); \
	r.write_text(c.splice_readme(r.read_text(), t))"

test: $(BIN)/.installed browser
	$(BIN)/python -m pytest tests

# headless Chromium for the report's browser test (tests/analysis/test_report_browser.py), from the Debian packages
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "chromium could not be installed: the browser test skips (and fails on CI)"

clean:
	rm -rf $(VENV) runs
