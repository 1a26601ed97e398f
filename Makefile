# The two commands: `make reproduce` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
PRESET ?= cpu
FORCE ?= 0
# DATA=/path/to/musdb18 runs the whole report on that root (outputs under reports/<root-name>_<preset>/);
# SPLIT=seed|folders chooses its split (default: seed on MUSDB18's own 100/50 folders).
DATA ?=
SPLIT ?=
export MSS_PRESET ?= $(PRESET)

.PHONY: setup sysdeps data train reproduce verify test test-notebooks bench html clean

setup: $(STAMP) $(SYSSTAMP)

# A stamp file makes reruns instant; it is rebuilt when a requirements file changes.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# ffmpeg (musdb/museval need it even for wav folders) and the FluidR3_GM soundfont.
$(SYSSTAMP): scripts/install_system_deps.sh
	@bash scripts/install_system_deps.sh
	@mkdir -p $(VENV) && touch $@

data: setup
	$(PY) -m mss_helpers render --preset $(MSS_PRESET)

train: setup
	$(PY) -m mss_helpers train --preset $(MSS_PRESET)

# The start time is taken before the install, so results/reproduce_<preset>.json counts it too.
reproduce:
	@start=$$(date +%s); marker=$$(mktemp); $(MAKE) --no-print-directory setup && \
	installed=$$( [ $(STAMP) -nt $$marker ] && echo --installed ); rm -f $$marker; \
	$(PY) -m mss_helpers reproduce --preset $(MSS_PRESET) --started $$start $$installed $(if $(filter 1,$(FORCE)),--force,) \
	$(if $(DATA),--root "$(DATA)",) $(if $(SPLIT),--split-scheme $(SPLIT),)

# Every number in results/ against the committed report (HEAD), within the tolerances of mss_helpers.verify.
verify: setup
	$(PY) -m mss_helpers verify

# Two pytest workers (pytest-xdist): the suite is mostly notebooks and tiny trainings in subprocesses.
TEST_JOBS ?= 2
test: setup
	MSS_PRESET=tiny $(PY) -m pytest -q -n $(TEST_JOBS)

test-notebooks: setup
	MSS_PRESET=tiny $(PY) -m pytest -q -m notebooks --run-notebooks tests/test_notebooks.py

bench: setup
	$(PY) benchmarks/run_all.py --preset $(MSS_PRESET)

html: setup
	$(PY) -m mss_helpers html $(if $(DATA),--root "$(DATA)",)

clean:
	rm -rf runs/ html/ .pytest_cache
