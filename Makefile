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

# The dashboard's browser tests drive Debian's chromium through playwright (never a downloaded browser). Installed
# here when missing and allowed (root, as in CI, or password-less sudo); otherwise they skip, and fail under CI=true.
CHROMIUM ?= /usr/bin/chromium
browser:
	@[ -x $(CHROMIUM) ] || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
	  if ! command -v apt-get >/dev/null 2>&1 || [ "$$SUDO" = no ]; then \
	    echo "make: the browser tests need $(CHROMIUM) (Debian/Ubuntu: sudo apt-get install chromium); they skip"; \
	  else \
	    $$SUDO apt-get update -qq >/dev/null && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  fi; }

# The SLURM tests start a single-node cluster (tests/slurm_cluster.py) from Debian's slurm-wlm and munge, installed
# here when missing and allowed, as chromium is; otherwise they skip, and fail under CI=true.
slurm:
	@command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
	  if ! command -v apt-get >/dev/null 2>&1 || [ "$$SUDO" = no ]; then \
	    echo "make: the SLURM tests need slurm-wlm and munge (Debian/Ubuntu: sudo apt-get install slurm-wlm munge); they skip"; \
	  else \
	    $$SUDO apt-get update -qq >/dev/null && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
	      slurm-wlm munge >/dev/null; \
	  fi; }

# The search tests put a study on a real PostgreSQL server (tests/postgres_server.py: initdb and pg_ctl under a
# temporary folder), from Debian's postgresql, installed here when missing and allowed; otherwise they skip, and fail
# under CI=true.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=no; fi; \
	  if ! command -v apt-get >/dev/null 2>&1 || [ "$$SUDO" = no ]; then \
	    echo "make: the PostgreSQL tests need postgresql (Debian/Ubuntu: sudo apt-get install postgresql); they skip"; \
	  else \
	    $$SUDO apt-get update -qq >/dev/null && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
	      postgresql >/dev/null; \
	  fi; }

# A pytest-xdist worker per core; tests marked with one xdist_group (a SLURM cluster, a PostgreSQL server started
# for a module) share a worker.
test: lint browser slurm postgres
	$(BIN)/python -m pytest -q -n auto --dist loadgroup tests

bench: venv
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) runs lightning_logs .pytest_cache
