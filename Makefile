# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Each creates .venv, installs torch 2.13.0 (CPU build) first, then the package, and, when run as
# root, the Debian packages it needs (ARM toolchain, QEMU, Fashion-MNIST, Chromium).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist chromium

.PHONY: demo test test-slow system venv clean

demo: venv system
	$(VENV)/bin/mcuforge demo

test: venv system
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-slow: venv system
	$(PY) -m pytest -q -n 2 --dist loadgroup -m slow

venv: .stamp-venv

.stamp-venv: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

system: .stamp-system

.stamp-system:
	@if [ "$$(id -u)" = "0" ]; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  fi; \
	else echo "not root: install $(APT_PACKAGES) yourself if missing"; fi
	touch $@

clean:
	rm -rf $(VENV) .stamp-venv .stamp-system build out
