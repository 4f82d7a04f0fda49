# The two commands the README starts with: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup demo test unit lint sanity clean lab-down
setup:
	./scripts/setup.sh

demo: setup
	$(VENV)/bin/python -m tests.lab demo

test: setup
	$(VENV)/bin/python -m pytest

unit: setup
	$(VENV)/bin/python -m pytest tests/unit

sanity: setup
	./scripts/sanity.sh

lab-down:
	$(VENV)/bin/python -m tests.lab down

clean: lab-down
	rm -rf .lab .pytest_cache
