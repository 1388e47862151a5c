# ingressd — the two commands most people need:
#
#   make run    install what is missing, build release, start the demo upstreams and run the
#               Istio workshop (examples/) on port 80 in the foreground; Ctrl-C stops everything
#   make test   install what the tests need, build, run every test target (unit + integration),
#               then fuzz the codecs (HTTP/1, TLS ClientHello) for FUZZ_SECONDS (24) in all
#
# Others: make build | release | bench | profile | scaling | soak | clean | run-canary | deps-run | deps-test | install | uninstall
# Works from a fresh clone on Debian 12 as root (or with sudo); Swift must be on PATH.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

SWIFT        ?= swift
RELEASE_BIN  := .build/release/ingressd
DEBUG_BIN    := .build/debug/ingressd
DEMO         := examples/upstreams/run_demo.sh

# Debian packages. Build: liburing, RE2, OpenSSL and nghttp2 headers (Sources/CURing, CRE2, COpenSSL, CNGHTTP2).
# Run: curl to try the gateway, python3 for the demo upstreams (python3-grpcio: the gRPC one).
# Test: also nginx, HAProxy and wrk (integration tests and perf/bench), nghttp2-client (h2load and
# nghttp: HTTP/2 tests, perf/bench's h2, h2s and h2up scenarios), nghttp2-server (nghttpd: h2up's
# HTTP/2 upstream), python3-h2 and python3-grpcio (HTTP/2 frame-level and gRPC tests).
BUILD_PKGS   := liburing-dev libre2-dev libssl-dev libnghttp2-dev
RUN_PKGS     := $(BUILD_PKGS) curl python3 python3-grpcio procps openssl
TEST_PKGS    := $(RUN_PKGS) nginx haproxy wrk nghttp2-client nghttp2-server python3-h2 python3-grpcio python3-pip

# The demo's HTTPS certificate (self-signed, made on first `make run`; not committed).
DEMO_CREDENTIALS := examples/https/credentials
DEMO_CERT        := $(DEMO_CREDENTIALS)/hipster-example-com/tls.crt
WORKSHOP_CONFIG := -c examples/workshop/frontend-ingress.yaml \
                   -c examples/workshop/addons-ingress.yaml \
                   -c examples/https/https-gateway.yaml \
                   -c examples/grpc/grpc-gateway.yaml \
                   -c examples/services.yaml \
                   --credentials-dir $(DEMO_CREDENTIALS)
CANARY_CONFIG   := -c examples/canary/app-gateway.yaml \
                   -c examples/workshop/frontend-canary.yaml \
                   -c examples/workshop/addons-ingress.yaml \
                   -c examples/services.yaml
RUN_FLAGS    ?=
BENCH_ARGS   ?=
PROFILE_ARGS ?=
SCALING_ARGS ?=
FUZZ_SECONDS ?= 24

# Installs the Debian packages named in $(1) that are not installed yet (a command of the same
# name on PATH, such as a pyenv python3, counts as installed). apt-get update runs
# first, and only when something is missing. A package's own service (nginx) is not started:
# policy-rc.d forbids it for the duration, so nothing takes port 80 behind our back.
define apt_install
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || \
	    command -v "$$p" >/dev/null || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null; then sudo="sudo"; \
	  else echo "missing Debian packages:$$missing (run as root, or install them)" >&2; exit 1; fi; \
	  echo "installing:$$missing"; \
	  policy=/usr/sbin/policy-rc.d; made_policy=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' | $$sudo tee $$policy >/dev/null; \
	    $$sudo chmod +x $$policy; made_policy=1; fi; \
	  rc=0; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing || rc=$$?; \
	  if [ -n "$$made_policy" ]; then $$sudo rm -f $$policy; fi; \
	  exit $$rc; \
	fi
endef

.PHONY: help run run-canary test build release bench profile scaling soak clean deps-run deps-test install uninstall

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

deps-run:
	$(call apt_install,$(RUN_PKGS))

deps-test:
	$(call apt_install,$(TEST_PKGS))
	@# The stats tests parse /stats/prometheus with the official Python parser.
	@python3 -c 'import prometheus_client' 2>/dev/null || \
	  pip3 install -q --break-system-packages prometheus_client 2>/dev/null || \
	  pip3 install -q prometheus_client

build: deps-run
	$(SWIFT) build

release: deps-run
	$(SWIFT) build -c release

test: deps-test
	$(SWIFT) build --build-tests
	@# A short libFuzzer pass over the codecs (skips, saying why, without the toolchain);
	@# first, so that the test runner's summary is the last thing printed.
	Tests/Fuzz/run.sh $(FUZZ_SECONDS)
	INGRESSD_BIN="$${INGRESSD_BIN:-$(CURDIR)/$(DEBUG_BIN)}" $(SWIFT) test

# The workshop on port 80. ingressd drains and exits on Ctrl-C (SIGINT); the trap stops the
# demo upstreams whatever way it ends.
run: release $(DEMO_CERT)
	@$(DEMO) start
	@trap '$(DEMO) stop' EXIT; \
	echo; \
	echo "ingressd: the workshop on http://127.0.0.1:80 (admin http://127.0.0.1:15000). Try:"; \
	echo "  curl -H 'Host: hipster.example.com'   http://127.0.0.1/         # frontend v1 or v2"; \
	echo "  curl -H 'Host: dashboard.example.com' http://127.0.0.1/kiali    # kiali"; \
	echo "  curl -H 'Host: dashboard.example.com' http://127.0.0.1/jaeger   # tracing (Jaeger)"; \
	echo "  curl -H 'Host: tracing.example.com'   http://127.0.0.1/         # tracing (Jaeger)"; \
	echo "  curl -i -H 'Host: nowhere.example.com' http://127.0.0.1/        # 404, no such host"; \
	echo "  curl --cacert $(DEMO_CERT) --resolve hipster.example.com:443:127.0.0.1 https://hipster.example.com/   # HTTPS"; \
	echo "  curl http://127.0.0.1:15000/ready ;  curl http://127.0.0.1:15000/config_dump"; \
	echo "Ctrl-C to stop."; \
	echo; \
	$(RELEASE_BIN) run $(WORKSHOP_CONFIG) $(RUN_FLAGS)

# A self-signed ECDSA P-256 certificate for the HTTPS demo, in the layout of a Kubernetes TLS
# secret (tls.crt, tls.key) under --credentials-dir.
$(DEMO_CERT): | deps-run
	@mkdir -p $(dir $@)
	@openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
	  -subj /CN=hipster.example.com -addext subjectAltName=DNS:hipster.example.com \
	  -keyout $(dir $@)tls.key -out $@ 2>/dev/null
	@chmod 600 $(dir $@)tls.key
	@echo "made the demo certificate $@ (self-signed)"

# The workshop's canary step: 80/20 between frontend v1 and v2 (see examples/README.md).
run-canary: release
	@$(DEMO) start
	@trap '$(DEMO) stop' EXIT; \
	echo; \
	echo "ingressd: the canary on http://127.0.0.1:80. Try:"; \
	echo "  for i in \$$(seq 100); do curl -s -H 'Host: hipster.example.com' http://127.0.0.1/ | head -1; done | sort | uniq -c"; \
	echo; \
	$(RELEASE_BIN) run $(CANARY_CONFIG) $(RUN_FLAGS)

# Side-by-side benchmark against nginx and HAProxy (perf/README.md). BENCH_ARGS="--rounds 3 ..."
bench: deps-test release
	perf/bench --binary $(RELEASE_BIN) $(BENCH_ARGS)

# As a systemd service (deploy/install.sh; idempotent). PREFIX=/usr/local, DESTDIR= for staging.
install: release
	deploy/install.sh --no-build

uninstall:
	deploy/install.sh --uninstall

# Flame graph under load + callgrind instructions per parse/lookup; req/s vs workers (perf/README.md).
profile: deps-test release
	perf/profile --binary $(RELEASE_BIN) $(PROFILE_ARGS)

scaling: deps-test release
	perf/scaling --binary $(RELEASE_BIN) $(SCALING_ARGS)

# Mixed traffic + worker kills, reloads, a flaky upstream; fails on RSS/fd growth (perf/README.md).
SOAK_ARGS ?=
soak: deps-run release
	perf/soak --binary $(RELEASE_BIN) $(SOAK_ARGS)

clean:
	rm -rf .build
