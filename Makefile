# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip
DB_NAME ?= evplatform
DB_HOST ?= 127.0.0.1
DB_PORT ?= 5432
DB_USER ?= postgres
export DB_NAME DB_HOST DB_PORT DB_USER

# `make run SIMULATE=0` starts no simulated piles.
SIMULATE ?= 1
PROCESSES = web worker beat ykc ocpp fake_wechat fake_wechatpay fake_fapiao fake_sms fake_cec $(if $(filter 1,$(SIMULATE)),sim ocpp_sim,)

.PHONY: run test setup services db venv compiled lint bench faults messages clean-db miniprogram h5 browser static-vendor

run: setup h5
	$(PY) manage.py seed_demo
	.venv/bin/honcho start $(PROCESSES)

# The layer and style checks run first: a broken import contract fails the build like a test.
test: venv services static-vendor lint h5 browser
	$(PY) -m pytest $(PYTEST_ARGS)

setup: venv services db static-vendor
	$(PY) manage.py platform_setup -v 0
	$(PY) manage.py collectstatic --noinput -v 0

venv: .venv/.installed compiled

# The YKC gateway's compiled heartbeat loop (Cython; protocols/ykc/heartbeats.py falls back
# to the same loop in Python without it): rebuilt when its .pyx changed.
compiled: .venv/.installed
	.venv/bin/cythonize -i -q protocols/ykc/_heartbeats.pyx
	rm -rf build

# Apache ECharts from npm (package-lock.json pins it), copied into the app's static files;
# no page loads anything from a CDN.
ECHARTS := analytics/static/analytics/vendor/echarts.min.js
static-vendor: $(ECHARTS)

$(ECHARTS): package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(dir $@)
	cp node_modules/echarts/dist/echarts.min.js $@

.venv/.installed: requirements.txt
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

# PostgreSQL and Redis are installed on this kind of machine; start them if stopped.
services:
	@pg_isready -q -h $(DB_HOST) -p $(DB_PORT) || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 30); do pg_isready -q -h $(DB_HOST) -p $(DB_PORT) && break; sleep 1; done; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  echo "starting Redis"; mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
	    --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
	  for i in $$(seq 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done; }

db:
	@psql -h $(DB_HOST) -p $(DB_PORT) -U $(DB_USER) -d postgres -tAc \
	  "SELECT 1 FROM pg_database WHERE datname='$(DB_NAME)'" | grep -q 1 || \
	  psql -h $(DB_HOST) -p $(DB_PORT) -U $(DB_USER) -d postgres -qc "CREATE DATABASE $(DB_NAME)"

# The drivers' app (uni-app, miniprogram/): npm ci from the committed lockfile, then the
# H5 build (served by Django at /m/) and the WeChat mini-program build (the code template).
MP_DIR := miniprogram
MP_SOURCES := $(shell find $(MP_DIR)/src -type f 2>/dev/null) $(MP_DIR)/index.html \
	$(MP_DIR)/vite.config.js $(MP_DIR)/package.json

miniprogram: h5 $(MP_DIR)/dist/build/mp-weixin/app.json

h5: $(MP_DIR)/dist/build/h5/index.html

$(MP_DIR)/node_modules/.installed: $(MP_DIR)/package-lock.json
	cd $(MP_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MP_DIR)/dist/build/h5/index.html: $(MP_DIR)/node_modules/.installed $(MP_SOURCES)
	cd $(MP_DIR) && npm run -s build:h5 >/dev/null
	test -f $@

$(MP_DIR)/dist/build/mp-weixin/app.json: $(MP_DIR)/node_modules/.installed $(MP_SOURCES)
	cd $(MP_DIR) && npm run -s build:mp-weixin >/dev/null
	test -f $@

# Browser tests use Debian's Chromium (no browser downloads) with CJK fonts.
browser:
	@test -x /usr/bin/chromium && fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  echo "installing Chromium and CJK fonts"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

lint: venv
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache

# Every benchmark prints its figures with their targets and ratios to a baseline measured
# in the same run, and the load average (the machine is shared). The station search needs
# wrk (Debian: apt-get install wrk). `make bench BENCH_ONLY=station_search` runs one.
BENCH_ONLY ?=
bench: setup
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	@for f in $(if $(BENCH_ONLY),$(addprefix benchmarks/,$(addsuffix .py,$(BENCH_ONLY))),benchmarks/*.py); do \
	  echo "== $$f (load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(nproc) CPUs)"; \
	  $(PY) $$f || exit 1; done

# Fault matrix on an isolated stack (own database evp_faults, Redis DB 3, ports 18110-18113):
# `make faults FAULT_SESSIONS=100`.
FAULT_SESSIONS ?= 100
faults: venv services
	$(PY) benchmarks/fault_matrix.py --sessions $(FAULT_SESSIONS)

messages: venv
	$(PY) manage.py makemessages -l zh_Hans -l en --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv

clean-db:
	psql -h $(DB_HOST) -p $(DB_PORT) -U $(DB_USER) -d postgres -qc "DROP DATABASE IF EXISTS $(DB_NAME)"
