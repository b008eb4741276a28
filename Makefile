# `make book`: set up a fresh machine and build the whole book, each chapter with the most
# faithful profile whose runs are recorded in results/ (else quick on a CPU, paper on a GPU).
# `make test`: the whole test suite (unit tests, every chapter executed once and checked as nbval
# checks, new seeds, the built book in headless Chromium); `make test-fast`: the fast tier (no
# notebook, book, browser, subprocess or slow test), a couple of minutes on a 2-core CPU.
# The Python environment lives in .venv/ and is reused while pyproject.toml and the lock
# file are unchanged.

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup data browser book test test-fast clean

setup: $(STAMP) data browser

$(STAMP): pyproject.toml requirements-lock.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade "pip>=23.2"
	$(PYTHON) -m pip install --quiet -c requirements-lock.txt -e ".[paper,theory,book,test,ray]" --config-settings editable_mode=compat
	touch $@

# Fashion-MNIST comes from Debian's package; the other datasets download on first use.
data:
	@if [ -d $(FASHION_MNIST) ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else echo "Fashion-MNIST: no apt-get here; put the four idx .gz files in data/FashionMNIST/raw/"; fi

# Debian's Chromium for tests/test_browser.py (Playwright drives it; nothing downloads a browser).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "Chromium: no apt-get here; install chromium, else tests/test_browser.py skips (fails in CI)"; fi

book: setup
	$(VENV)/bin/localmixup book --profile auto

test: setup
	$(PYTHON) -m pytest

# the markers are set in tests/conftest.py (TIERS)
test-fast: $(STAMP)
	$(PYTHON) -m pytest -m "not slow and not notebook and not book and not browser and not subprocess"

clean:
	rm -rf _build
