# cnilab — see README.md. The two commands a user needs: `make e2e` and `make test`.
SHELL := /bin/bash
GO ?= go
OUT := $(CURDIR)/_output
BIN := $(OUT)/bin
REPORT := $(OUT)/report
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

# make e2e parameters.
PROVIDER ?= netns
# PROVIDER=existing runs the suite on the cluster of KUBECONFIG (passed on as
# CNILAB_KUBECONFIG), with its own pod network: CNI=existing.
CNI ?= $(if $(filter existing,$(PROVIDER)),existing,cnilab$(comma)flannel)
LABELS ?=
NODES ?= 2
E2E_TIMEOUT ?= 60m
# PROVIDER=qemu: the catalog kernels to boot (see `cnilab kernels list`); the
# host kernel is run on the netns provider into the same report unless
# HOST_RUN=0.
KERNELS ?= 6.1 6.12
HOST_RUN ?= 1
# KUBE_PROXY=0: labs without kube-proxy (netns and qemu providers; flannel
# labs always run it).
KUBE_PROXY ?= 1
# NODE_KIND: the netns provider's nodes. real (the default): containerd and
# the kubelet, kube-proxy, CoreDNS and the CNI as workloads; light: the lab's
# own node role, no runtime (faster; make test's widest run). The qemu
# provider's nodes are light whatever NODE_KIND says (real guests are not
# written yet).
NODE_KIND ?= real

comma := ,
PKGS_UNIT = $(shell $(GO) list ./... | grep -v '/e2e$$')

.PHONY: all build tools check unit e2e test clean lab-down help generate check-generate netns-dir kernels bench fuzz fuzz-smoke soak

all: build

help:
	@echo "make e2e   [PROVIDER=netns|qemu|kind] [KERNELS='6.1 6.12'] [CNI=flannel[,…]] [LABELS=connectivity] [NODES=2]  run the suite"
	@echo "make e2e   PROVIDER=existing KUBECONFIG=PATH [LABELS=connectivity]  run the suite on a cluster that has its own CNI"
	@echo "make test  the whole gate: format, vet, unit tests, and the connectivity suite on flannel"
	@echo "make build every binary into _output/bin;  make tools  third-party binaries into _output/tools"
	@echo "make bench [BENCH_REPS=5] [BENCH_ARGS=...]  pod→pod performance: cnilab vs flannel vs the bare kernel (_output/bench)"
	@echo "make lab-down  remove every lab on this machine (also after a killed run)"

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

tools:
	@tools/build.sh

check: lint-workflows
	@echo "[check] gofmt"; out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@echo "[check] go vet"; $(GO) vet ./...

# Named network namespaces live in /run/netns. Like iproute2, the lab makes it
# a shared bind mount of itself before its first namespace; doing that once,
# before any test runs, keeps one package's first bind mount from hiding the
# namespaces another package's tests made meanwhile (go test runs packages in
# parallel). Needs root; without it the root tests skip anyway.
netns-dir:
	@if [ "$$(id -u)" = 0 ]; then mkdir -p /run/netns; \
		mountpoint -q /run/netns || mount --bind /run/netns /run/netns; \
		mount --make-shared /run/netns; fi

unit: netns-dir
	$(GO) test -count=1 $(PKGS_UNIT)

# The suite runs once per CNI in $(CNI) (and, for PROVIDER=qemu, once per
# kernel in $(KERNELS), plus the host kernel on the netns provider). The loop
# and each run are tagged (CNILAB_LAB), so `cnilab lab down --all` also stops
# a run whose make was killed, and the loop does not go on. The kernel
# compatibility report (report.md, report.html) is written at the end.
E2E_TARGETS = $(if $(filter qemu,$(PROVIDER)),$(if $(filter 1,$(HOST_RUN)),netns:host) $(foreach k,$(KERNELS),qemu:$(k)),$(PROVIDER):host)
E2E_LABELS = $(if $(LABELS),$(LABELS),$(if $(filter qemu,$(PROVIDER)),!perf))
e2e: build tools netns-dir $(if $(and $(filter real,$(NODE_KIND)),$(filter netns:%,$(E2E_TARGETS))),images)
	@mkdir -p $(REPORT); [ -n "$(E2E_KEEP_REPORT)" ] || rm -rf $(REPORT)/report.json $(REPORT)/logs
	$(GO) test -c -o $(BIN)/e2e.test ./e2e
	@export CNILAB_LAB=make-e2e; rc=0; start=$$(date +%s); for target in $(E2E_TARGETS); do \
	  provider=$${target%%:*}; kernel=$${target#*:}; [ "$$kernel" = host ] && kernel=; \
	  for cni in $(subst $(comma), ,$(CNI)); do \
		id=$$provider-$${kernel:-host}-$$cni; \
		lab=e2e-$$cni; [ -z "$$kernel" ] || lab=q$${kernel//./}-$$cni; \
		echo "=== e2e: provider=$$provider kernel=$${kernel:-host} cni=$$cni labels='$(E2E_LABELS)' ==="; \
		CNILAB_E2E=1 CNILAB_KUBE_PROXY=$(KUBE_PROXY) CNILAB_NODE_KIND=$$( [ "$$provider" = netns ] && echo $(NODE_KIND) ) CNILAB_PROVIDER=$$provider CNILAB_KERNEL=$$kernel CNILAB_CNI=$$cni CNILAB_NODES=$(NODES) \
		CNILAB_LAB=$$lab CNILAB_OUTPUT=$(OUT) CNILAB_REPORT_DIR=$(REPORT) \
		$(if $(filter existing,$(PROVIDER)),CNILAB_KUBECONFIG='$(KUBECONFIG)') \
		$(BIN)/e2e.test -test.timeout=$(E2E_TIMEOUT) -ginkgo.v -ginkgo.timeout=$(E2E_TIMEOUT) \
			-ginkgo.label-filter='$(E2E_LABELS)' \
			-ginkgo.junit-report=$(REPORT)/junit-$$id.xml \
			-ginkgo.json-report=$(REPORT)/ginkgo-$$id.json || rc=1; \
		$(BIN)/cnilab report summary --input $(REPORT) --last 1 || rc=1; \
	  done; \
	done; \
	$(BIN)/cnilab report --input $(REPORT) --output $(REPORT) || rc=1; \
	echo "e2e: $$(( $$(date +%s) - start ))s for $(E2E_TARGETS) x $(CNI); report: $(REPORT)/report.html"; exit $$rc

# The gate: static checks, the committed eBPF objects match their sources,
# unit tests (root ones included when run as root), then on the netns
# provider: the connectivity suite on cnilab (native and VXLAN, TCX and the tc
# fallback) and flannel, and the upstream NetworkPolicy cases on cnilab and on
# the flannel baseline, and the reliability specs (agent restarts, agent
# down) on cnilab. `make e2e` runs the whole policy catalog. Then the
# connectivity and services specs on real nodes (containerd and the kubelet,
# kube-proxy, CoreDNS and the CNI as workloads), on cnilab native and VXLAN
# and flannel.
#
# Then, on the qemu provider, the connectivity suite on cnilab with the
# Debian 6.1 (tc attach) and 6.12 (TCX) kernels. The unit stage runs after
# build, tools and kernels so that the qemu failure tests (a kernel that does
# not boot, a VM that hangs, a missing module) run rather than skip.
test: check check-generate build tools kernels unit fuzz-smoke
	$(MAKE) e2e PROVIDER=netns NODE_KIND=light CNI=cnilab,cnilab-vxlan,flannel LABELS='connectivity || services || observability || manifests || reliability || (policy && upstream)'
	CNILAB_ATTACH=tc $(MAKE) e2e PROVIDER=netns NODE_KIND=light CNI=cnilab LABELS=connectivity E2E_KEEP_REPORT=1
	$(MAKE) e2e PROVIDER=netns CNI=cnilab,cnilab-vxlan,flannel NODE_KIND=real LABELS='connectivity || services || manifests' E2E_KEEP_REPORT=1
	$(MAKE) e2e PROVIDER=qemu HOST_RUN=0 KERNELS="$(KERNELS)" CNI=cnilab LABELS=connectivity E2E_KEEP_REPORT=1

# Performance, measured and never asserted: pod→pod TCP_STREAM, TCP_RR,
# TCP_CRR and UDP_RR for cnilab (native, VXLAN), flannel and the limit (bare
# veth, bare underlay), interleaved, BENCH_REPS runs each; cnilab with 0, 100
# and 1,000 NetworkPolicies; lab bring-up for 2, 4 and 8 nodes. Writes
# $(BENCH)/bench.json, bench.md and bench.svg; then the agent's policy
# compiler benchmarks with allocations into $(BENCH)/policy-compile.txt.
BENCH := $(OUT)/bench
BENCH_REPS ?= 5
BENCH_ARGS ?=
bench: build tools netns-dir
	@mkdir -p $(BENCH)
	$(BIN)/cnilab bench --output $(BENCH) --repetitions $(BENCH_REPS) $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench 'Compile|Diff' -benchmem -count 1 ./datapath/policy/ | tee $(BENCH)/policy-compile.txt

# Soak (not part of make test): SOAK_CYCLES lab up/down cycles (2 nodes, 6
# pods) per CNI, then SOAK_KILLS runs of make e2e killed with SIGKILL and
# `cnilab lab down --all`; fails on any leak. Removes every lab on the machine.
SOAK_CYCLES ?= 100
SOAK_KILLS ?= 10
soak: build tools netns-dir $(if $(filter real,$(NODE_KIND)),images)
	$(BIN)/cnilab soak --node-kind $(NODE_KIND) --cycles $(SOAK_CYCLES) --kills $(SOAK_KILLS) --output $(OUT)/soak

# Fuzz targets: every one runs FUZZTIME (default 10m) with `make fuzz`, and a
# few seconds in `make test` (fuzz-smoke). Seed corpora are committed under
# each package's testdata/fuzz/.
FUZZ_TARGETS = ./datapath/cni:FuzzParseConfig ./datapath/cni:FuzzCNIEnvironment ./datapath/flows:FuzzParseFilter ./internal/differential:FuzzPolicyDifferential
FUZZTIME ?= 10m
fuzz:
	@for t in $(FUZZ_TARGETS); do echo "=== fuzz $${t#*:} ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; done
fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=5s

# Fetch (or verify the cache of) the catalog kernels in $(KERNELS).
kernels: build
	$(BIN)/cnilab kernels fetch $(KERNELS)

lab-down: build
	$(BIN)/cnilab lab down --all

clean:
	rm -rf $(BIN) $(REPORT)

# eBPF objects: bpf2go (clang-14) compiles bpf/ into datapath/loader; the
# generated .go and .o are committed, so `go build` needs no clang.
# Needs: apt-get install clang-14 llvm-14 libbpf-dev linux-libc-dev
BPF_GENERATED = find datapath -name '*_bpfe[lb].go' -o -name '*_bpfe[lb].o' | LC_ALL=C sort | xargs -r sha256sum

generate:
	@command -v clang-14 >/dev/null && command -v llvm-strip-14 >/dev/null || { \
		echo "generate: needs clang-14 and llvm-strip-14: apt-get install clang-14 llvm-14 libbpf-dev linux-libc-dev"; exit 1; }
	$(GO) generate ./datapath/...

# Regenerates into the tree and fails if the generated objects change.
check-generate:
	@if ! command -v clang-14 >/dev/null || ! command -v llvm-strip-14 >/dev/null; then \
		echo "[check-generate] SKIP: clang-14/llvm-strip-14 not installed (apt-get install clang-14 llvm-14 libbpf-dev linux-libc-dev)"; \
		if [ -n "$$CI" ]; then echo "[check-generate] CI must check the objects: failing"; exit 1; fi; \
		exit 0; fi; \
	before=$$($(BPF_GENERATED)); \
	$(MAKE) --no-print-directory generate || exit 1; \
	after=$$($(BPF_GENERATED)); \
	if [ "$$before" != "$$after" ]; then \
		echo "[check-generate] the generated eBPF objects differ from bpf/ sources: run make generate and commit"; \
		diff <(echo "$$before") <(echo "$$after"); exit 1; fi; \
	echo "[check-generate] generated eBPF objects match bpf/ sources"; echo "$$after"

# Container images, built without Docker (`cnilab images build`,
# lab/internal/images): one `docker save` tarball per image in $(OUT)/images,
# named as the manifests and kubelets expect (cnilab, cnilab-probe, and the
# upstream images a lab with real nodes runs: agnhost, pause, kube-proxy,
# CoreDNS, flannel), and images.json listing each one's reference, digest and
# files. An image is rebuilt only when one of its inputs changed.
# IMAGES=cnilab,cnilab-probe builds a subset. Where a Docker engine answers,
# the cnilab and cnilab-probe images are loaded into it too (the kind
# provider takes them from there). images/*/Dockerfile build those two with
# Docker, to the same content.
.PHONY: images actionlint lint-workflows
DOCKER ?= docker
IMAGES ?=

# Only the upstream images need the tools (make tools).
IMAGES_NEED_TOOLS = $(if $(IMAGES),$(filter-out cnilab cnilab-probe pause,$(subst $(comma), ,$(IMAGES))),all)
images: build $(if $(IMAGES_NEED_TOOLS),tools)
	$(BIN)/cnilab images build --output $(OUT)/images $(if $(IMAGES),--only $(IMAGES))
	@if command -v $(DOCKER) >/dev/null 2>&1 && $(DOCKER) info >/dev/null 2>&1; then \
		for i in cnilab cnilab-probe; do \
			[ ! -f $(OUT)/images/$$i.tar ] || $(DOCKER) load -i $(OUT)/images/$$i.tar || exit 1; \
		done; fi

# actionlint (built from tools/actionlint) checks every workflow; it runs
# shellcheck on `run:` scripts when shellcheck is installed, and skips that
# part otherwise.
actionlint:
	@tools/build.sh actionlint

lint-workflows: actionlint
	@echo "[check] actionlint"; $(OUT)/tools/bin/actionlint $(wildcard .github/workflows/*.yml)
