# The two commands the README starts with: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup demo demo-more test matrix unit lint sanity molecule clean lab-down
setup:
	./scripts/setup.sh

demo: setup
	$(VENV)/bin/python -m tests.lab demo

# a certificate, a database password (alternating roles) and an AWS key, rotated end to end
demo-more: setup
	$(VENV)/bin/python -m tests.lab demo-more

# The whole suite on the ansible-core requirements.txt resolves to, then the matrix (noxfile.py):
# the unit tests and a lab subset on every supported ansible-core, from the collection as
# ansible-galaxy installs it. MATRIX="core(2.21)" runs one release; MATRIX= none.
MATRIX ?= core
test: setup
	$(VENV)/bin/python -m pytest
	$(if $(strip $(MATRIX)),$(VENV)/bin/nox --no-color -s "$(MATRIX)")

matrix: setup
	$(VENV)/bin/nox -s "$(MATRIX)"

lint: setup
	.venv-lint/bin/ansible-lint --profile production
	.venv-lint/bin/antsibull-changelog lint

unit: setup
	$(VENV)/bin/python -m pytest tests/unit

sanity: setup
	./scripts/sanity.sh

# the molecule scenario: the standard rotation on the lab's systemd hosts (extensions/molecule)
molecule: setup
	$(VENV)/bin/molecule test -s systemd_rotation

lab-down:
	$(VENV)/bin/python -m tests.lab down

clean: lab-down
	rm -rf .lab .pytest_cache .nox
