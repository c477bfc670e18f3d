# make demo / make test on a fresh Debian 12 machine (as root): each installs what it needs.

# CI runs with a plain environment where swift may not be on PATH.
SWIFT := $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
export PATH := $(dir $(SWIFT)):$(PATH)

# One package per line: several branches add to this list.
APT_PACKAGES := \
	criu python3-protobuf runc crun podman busybox-static \
	libcap-dev libseccomp-dev zstd gcc libc6-dev make util-linux \
	libarchive-dev libssl-dev \
	skopeo iptables redis-server redis-tools \
	docker.io \
	containerd \
	gnuplot-nox \
	lxc
DEBUG_BIN := $(CURDIR)/.build/debug/ocicheckpoint
RELEASE_BIN := $(CURDIR)/.build/release/ocicheckpoint

.PHONY: deps build test fuzz demo bench clean

# apt-get runs only when a package is missing, so repeated runs stay offline and fast.
# Recommends come along on purpose: gcc brings libc6-dev, criu brings iproute2.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	    dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q $$missing </dev/null; \
	else \
	    echo "deps: all installed"; \
	fi

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build
	# A session led from outside our pid namespace (as under CI) is one CRIU 4.2 refuses
	# to dump a shell job from; the tests then get a session of their own.
	OCICHECKPOINT_BIN=$(DEBUG_BIN) $$(test "$$(awk '{print $$6}' /proc/self/stat)" = 0 && echo setsid -w) \
	    $(SWIFT) test --no-parallel

# libFuzzer over image decoding, restore's image validation and archive reading, from the
# seeds in Fuzz/corpus; a build of its own in .build/fuzz. CI runs a short pass.
FUZZ_RUNS ?= 200000
fuzz: deps
	SWIFT=$(SWIFT) FUZZ_RUNS=$(FUZZ_RUNS) bash scripts/fuzz.sh

demo: build
	OCICHECKPOINT_BIN=$(DEBUG_BIN) bash scripts/demo.sh

bench: deps
	$(SWIFT) build -c release
	OCICHECKPOINT_BIN=$(RELEASE_BIN) bash scripts/bench.sh

clean:
	rm -rf .build /dev/shm/ocb
