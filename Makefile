# vmdash: `make run` serves the dashboard, `make test` runs every test.
# Each target does its own setup and is safe to repeat.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MO     := locale/ru/LC_MESSAGES/django.mo
HOST   ?= 127.0.0.1
PORT   ?= 8000

# What `make doctor` judges the machine against: run (only warns) or test.
DOCTOR_FOR ?= test

.PHONY: run test doctor system venv libvirtd guest lint typecheck pytest bench clean

run: system venv
	@$(MAKE) --no-print-directory doctor DOCTOR_FOR=run
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py vmdash_setup
	$(PY) manage.py vmdash_run --host $(HOST) --port $(PORT)

test: system venv
	@$(MAKE) --no-print-directory doctor DOCTOR_FOR=test
	scripts/make-test-guest
	@# The checkers are quick and mostly wait-free; they run beside the tests.
	$(MAKE) --no-print-directory -j3 lint typecheck pytest

system:
	@scripts/ensure-system-packages

venv: $(STAMP) $(MO)

# Repairs what it can (/dev/kvm, virtlogd, libvirtd; each fix is said), then
# checks everything and prints the command for each problem left. For `run`
# a missing libvirtd only warns (the demo host is used instead).
doctor: system venv
	@scripts/ensure-libvirtd || true
	@$(PY) manage.py vmdash_doctor --for=$(DOCTOR_FOR)

# uv (pinned in constraints.txt) fetches and builds the pinned packages in
# parallel: about 33 s on a new machine where pip takes 70 s. It reads no
# pip.conf: behind a package mirror set UV_INDEX_URL, or use INSTALLER=pip.
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (this
# kind of machine sets it) every process would otherwise compile Django anew,
# 4.4 s instead of 1.9 s per manage.py, and the suite starts hundreds.
INSTALLER ?= uv
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(PY) -m pip install -q -c constraints.txt uv
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -c constraints.txt -e '.[dev]'
else
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
endif
	@touch $(STAMP)

# The Russian catalogue, compiled when its .po changed (msgfmt: Debian's
# gettext). The .mo is build output, not in git.
$(MO): locale/ru/LC_MESSAGES/django.po
	msgfmt --check-format -o $@ $<

libvirtd:
	scripts/ensure-libvirtd

guest:
	scripts/make-test-guest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy vmdash hosts domains networks storage people stats api

# Three workers (pytest-xdist), on two cores too: most of the run waits on
# guests, browsers and servers, not on the CPU. The real-libvirtd folders each
# stay on one worker (tests/conftest.py groups them; the run's last lines say
# how long each group and worker took) and unit tests fill the gaps. Tests
# that restart libvirtd run after, alone; "no tests ran" (5) is fine there
# when PYTEST_ARGS picked none of them.
TEST_WORKERS ?= 3
# One test run at a time against the machine's libvirtd (another person's or
# tool's run waits rather than meeting our guests and sweeps).
LOCK := flock /tmp/vmdash-libvirtd.lock
pytest: venv
	$(LOCK) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not restarts_libvirtd" $(PYTEST_ARGS)
	$(LOCK) $(PY) -m pytest -m restarts_libvirtd $(PYTEST_ARGS) || test $$? -eq 5

bench: system venv
	scripts/ensure-libvirtd
	scripts/make-test-guest
	$(PY) bench/domain_list.py
	$(PY) bench/events.py
	$(PY) bench/console.py
	$(PY) bench/silent_host.py
	$(PY) bench/storage.py
	$(PY) bench/permissions.py
	$(PY) bench/stats.py
	$(PY) bench/ticks.py

clean:
	rm -rf $(VENV) var
