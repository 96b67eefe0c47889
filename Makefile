# Setup lives here: `make demo` and `make test` each build the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint format bench clean browser postgres slurm

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/lighter fit configs/digits.yaml

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# System packages some tests need: installed here when missing and allowed (root, as in CI, or password-less sudo);
# otherwise those tests skip, and fail under CI=true. $(call apt_need,CHECK,PACKAGES,WHAT) installs PACKAGES unless
# the shell test CHECK passes.
define apt_need
@$(1) || { \
  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
  if ! command -v apt-get >/dev/null 2>&1 || [ "$$SUDO" = no ]; then \
    echo "make: $(3) need $(2) (Debian/Ubuntu: sudo apt-get install $(2)); they skip"; \
  else \
    $$SUDO apt-get update -qq >/dev/null && \
    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $(2) >/dev/null; \
  fi; }
endef

# The dashboard's browser tests drive Debian's chromium through playwright (never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
browser:
	$(call apt_need,[ -x $(CHROMIUM) ],chromium,the browser tests)

# The SLURM tests start a single-node cluster (tests/slurm_cluster.py) from Debian's slurm-wlm and munge.
slurm:
	$(call apt_need,[ -x /usr/sbin/slurmctld ],slurm-wlm munge,the SLURM tests)

# The search tests put a study on a real PostgreSQL server (tests/postgres_server.py: initdb and pg_ctl under a
# temporary folder).
postgres:
	$(call apt_need,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1,postgresql,the PostgreSQL tests)

# A pytest-xdist worker per core; tests marked with one xdist_group (a SLURM cluster, a PostgreSQL server started
# for a module) share a worker.
test: lint browser slurm postgres
	$(BIN)/python -m pytest -q -n auto --dist loadgroup tests

bench: venv
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) runs lightning_logs .pytest_cache
