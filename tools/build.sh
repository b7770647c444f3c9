#!/usr/bin/env bash
# tools/build.sh [TOOL...] — build the third-party binaries the lab runs, once.
#
# Tools: kubernetes, agnhost, containerd, runc, coredns, flannel, cni-plugins,
# etcd, actionlint, helm (no arguments: all of them).
#
#   kubernetes   kube-apiserver, kube-controller-manager, kube-scheduler,
#                kube-proxy, kubelet, kubectl                            -> _output/tools/bin/
#   agnhost      agnhost (the e2e test image's binary, from the same
#                k8s.io/kubernetes module)                               -> _output/tools/bin/
#   containerd   containerd, containerd-shim-runc-v2, ctr                -> _output/tools/bin/
#   runc         runc (cgo: static against Debian's libseccomp)          -> _output/tools/bin/
#   coredns      coredns                                                 -> _output/tools/bin/
#   flannel      flanneld                                                -> _output/tools/bin/
#   cni-plugins  bridge, host-local, loopback, portmap                   -> _output/tools/cni/bin/
#   etcd         symlinks to Debian's etcd-server (/usr/bin/etcd)        -> _output/tools/bin/
#   actionlint   actionlint (lints .github/workflows, make lint-workflows) -> _output/tools/bin/
#   helm         helm (lints and templates manifests/charts in make test) -> _output/tools/bin/
#
# Each Go tool is built from its own module under tools/<tool>/ (agnhost from
# tools/kubernetes) and cached: the stamp _output/tools/stamps/<tool> holds a
# sha256 of the module's go.mod and go.sum (and other inputs: local stand-in
# modules, the static libseccomp), the Go version, the build flags and the
# list of output binaries. When the stamp matches and every binary exists and
# is executable, the build is skipped. See tools/README.md.
#
# Environment: GO (default: go).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
GO="${GO:-go}"
OUT="$ROOT/_output/tools"
BIN_DIR="$OUT/bin"
CNI_BIN_DIR="$OUT/cni/bin"
STAMP_DIR="$OUT/stamps"
LOG_DIR="$OUT/logs"
HEARTBEAT_SECONDS=60
ALL_TOOLS=(kubernetes agnhost containerd runc coredns flannel cni-plugins etcd actionlint helm)

# The tool modules are standalone; never let a go.work elsewhere take over.
export GOWORK=off

log() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] error: %s\n' "$*" >&2; exit 1; }

# duration SECONDS -> "53s" or "14m02s"
duration() {
	local s=$1
	if ((s < 60)); then
		printf '%ds' "$s"
	else
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	fi
}

# module_version DIR MODULE: the version DIR/go.mod requires MODULE at.
module_version() {
	local v
	v="$(awk -v m="$2" '
		$1 == "require" && $2 == m { print $3; exit }
		$1 == m && $2 ~ /^v/        { print $2; exit }
	' "$1/go.mod")"
	[[ -n "$v" ]] || die "$1/go.mod does not require $2"
	printf '%s' "$v"
}

# module_sum DIR MODULE VERSION: MODULE's h1: hash in DIR/go.sum, the checksum
# of its exact source. The module proxy gives no commit id, so this is what
# the binaries get where upstream stamps a git commit.
module_sum() {
	local h
	h="$(awk -v m="$2" -v v="$3" '$1 == m && $2 == v { print $3; exit }' "$1/go.sum")"
	[[ -n "$h" ]] || die "$1/go.sum has no hash for $2 $3 (run go mod tidy there)"
	printf '%s' "$h"
}

# module_dir DIR MODULE: the module cache directory of MODULE at the version
# DIR/go.mod selects (downloading it if needed).
module_dir() {
	local d
	d="$(cd "$1" && "$GO" mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" || true
	[[ -n "$d" && -d "$d" ]] || die "cannot download $2 for $1 (cd $1 && $GO mod download $2)"
	printf '%s' "$d"
}

# kube_ldflags VERSION: the version stamps of the Kubernetes binaries. Keep
# this string byte-for-byte stable: the kubernetes and agnhost builds share
# it, and the Go build cache is keyed by the flags.
kube_ldflags() {
	local minor="${1#v*.}"
	minor="${minor%%.*}"
	local major="${1#v}"
	major="${major%%.*}"
	printf '%s' "-s -w -X k8s.io/component-base/version.gitVersion=$1 -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$1"
}

# Per-tool build description, filled by describe_tool.
T_DIR=""         # module directory
T_VERSION=""     # upstream version, for messages
T_ENV=()         # environment for go build (NAME=value ...)
T_FLAGS=()       # go build flags, without -o
T_OUT=""         # -o argument (a directory ending in / or a file)
T_PKGS=()        # packages to build
T_BINS=()        # output binaries (absolute paths)
T_INPUTS=()      # files whose content keys the cache, besides go.mod and go.sum
T_ETA=""         # cold build estimate, for messages
# Optional second go build of the same tool (same module and environment),
# for packages upstream builds with other flags; run after the first.
T_FLAGS2=()      # its go build flags, without -o
T_OUT2=""        # its -o argument
T_PKGS2=()       # its packages (none: no second build)

describe_tool() {
	T_ENV=() T_FLAGS=() T_PKGS=() T_BINS=() T_INPUTS=()
	T_FLAGS2=() T_OUT2="" T_PKGS2=()
	case "$1" in
	kubernetes)
		T_DIR="$ROOT/tools/kubernetes"
		T_VERSION="$(module_version "$T_DIR" k8s.io/kubernetes)"
		# Keep these flags byte-for-byte stable: they key the Go build cache.
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "$(kube_ldflags "$T_VERSION")")
		T_OUT="$BIN_DIR/"
		T_PKGS=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl)
		T_BINS=("$BIN_DIR/kube-apiserver" "$BIN_DIR/kube-controller-manager" "$BIN_DIR/kube-scheduler" "$BIN_DIR/kube-proxy" "$BIN_DIR/kubelet" "$BIN_DIR/kubectl")
		T_ETA="15-20 min"
		;;
	agnhost)
		# A package of k8s.io/kubernetes (test/images/agnhost), built apart
		# only because it takes one more -X: its version lives in
		# test/images/agnhost/VERSION, the tag of the image
		# (registry.k8s.io/e2e-test-images/agnhost) the e2e framework of
		# this Kubernetes version expects. Every package it shares with the
		# kubernetes build is a cache hit: -ldflags do not key compiles.
		T_DIR="$ROOT/tools/kubernetes"
		local kube_version agnhost_dir
		kube_version="$(module_version "$T_DIR" k8s.io/kubernetes)"
		agnhost_dir="$(module_dir "$T_DIR" k8s.io/kubernetes)/test/images/agnhost"
		[[ -f "$agnhost_dir/VERSION" ]] || die "$agnhost_dir/VERSION not found"
		local agnhost_version
		agnhost_version="$(tr -d '[:space:]' <"$agnhost_dir/VERSION")"
		T_VERSION="$agnhost_version"
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "$(kube_ldflags "$kube_version") -X main.Version=$agnhost_version")
		T_OUT="$BIN_DIR/agnhost"
		T_PKGS=(k8s.io/kubernetes/test/images/agnhost)
		T_BINS=("$BIN_DIR/agnhost")
		T_ETA="~30 s after kubernetes (~10 min alone)"
		;;
	containerd)
		T_DIR="$ROOT/tools/containerd"
		local ctrd=github.com/containerd/containerd/v2
		T_VERSION="$(module_version "$T_DIR" "$ctrd")"
		# Pure Go and static. The btrfs snapshotter needs cgo and is left
		# out by that already; devmapper and zfs are left out by tag (the
		# lab uses overlayfs). As upstream, the shim is built apart with
		# no_grpc (it serves ttrpc only; without the gRPC stubs it is
		# 8 MB instead of 14).
		local tags='urfave_cli_no_docs,no_btrfs,no_devmapper,no_zfs'
		local revision
		revision="$(module_sum "$T_DIR" "$ctrd" "$T_VERSION")"
		local ldflags="-s -w -X $ctrd/version.Version=$T_VERSION -X $ctrd/version.Revision=$revision"
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -tags "$tags" -ldflags "$ldflags")
		T_OUT="$BIN_DIR/"
		T_PKGS=("$ctrd/cmd/containerd" "$ctrd/cmd/ctr")
		T_FLAGS2=(-trimpath -tags "$tags,no_grpc" -ldflags "$ldflags")
		T_OUT2="$BIN_DIR/containerd-shim-runc-v2"
		T_PKGS2=("$ctrd/cmd/containerd-shim-runc-v2")
		T_BINS=("$BIN_DIR/containerd" "$BIN_DIR/ctr" "$BIN_DIR/containerd-shim-runc-v2")
		T_ETA="3-5 min"
		;;
	runc)
		T_DIR="$ROOT/tools/runc"
		local runc=github.com/opencontainers/runc
		T_VERSION="$(module_version "$T_DIR" "$runc")"
		# cgo is required (libcontainer/nsenter is C; seccomp is libseccomp).
		# Upstream's `make static`: a static PIE with the pure-Go resolver and
		# user lookup, seccomp on, against Debian's libseccomp.a. Its default
		# tag libpathrs (a Rust library Debian does not ship) is left out:
		# runc then uses its pure-Go pathrs-lite. The version comes from
		# runc's embedded VERSION file.
		T_ENV=(CGO_ENABLED=1)
		T_FLAGS=(-trimpath -buildmode=pie -tags 'seccomp,urfave_cli_no_docs,netgo,osusergo' -ldflags "-s -w -X main.gitCommit=$(module_sum "$T_DIR" "$runc" "$T_VERSION") -linkmode external -extldflags -static-pie")
		T_OUT="$BIN_DIR/runc"
		T_PKGS=("$runc")
		T_BINS=("$BIN_DIR/runc")
		# The static libseccomp is linked in: a new one must rebuild runc.
		local libdir
		libdir="$(pkg-config --variable=libdir libseccomp 2>/dev/null)" || libdir=""
		if [[ -n "$libdir" && -f "$libdir/libseccomp.a" ]]; then
			T_INPUTS+=("$libdir/libseccomp.a")
		fi
		T_ETA="~1.5 min"
		;;
	coredns)
		T_DIR="$ROOT/tools/coredns"
		T_VERSION="$(module_version "$T_DIR" github.com/coredns/coredns)"
		# As upstream's Makefile: pure Go, grpc without x/net/trace. Its
		# version is a constant; the commit stamp gets the source's hash.
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -tags grpcnotrace -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$(module_sum "$T_DIR" github.com/coredns/coredns "$T_VERSION")")
		T_OUT="$BIN_DIR/coredns"
		T_PKGS=(github.com/coredns/coredns)
		T_BINS=("$BIN_DIR/coredns")
		T_ETA="~7 min"
		;;
	flannel)
		T_DIR="$ROOT/tools/flannel"
		T_VERSION="$(module_version "$T_DIR" github.com/flannel-io/flannel)"
		# cgo is required on amd64: the udp backend's proxy is C. Link statically
		# (as upstream does) with the pure-Go resolver and user lookup, so the
		# binary runs on any rootfs and static glibc never needs NSS.
		T_ENV=(CGO_ENABLED=1)
		T_FLAGS=(-trimpath -tags 'netgo,osusergo' -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$T_VERSION -extldflags -static")
		T_OUT="$BIN_DIR/flanneld"
		T_PKGS=(github.com/flannel-io/flannel)
		T_BINS=("$BIN_DIR/flanneld")
		local f
		while IFS= read -r f; do T_INPUTS+=("$f"); done < <(find "$T_DIR/tencentcloud-vpc-standin" -type f | LC_ALL=C sort)
		T_ETA="~4 min"
		;;
	cni-plugins)
		T_DIR="$ROOT/tools/cni-plugins"
		T_VERSION="$(module_version "$T_DIR" github.com/containernetworking/plugins)"
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$T_VERSION")
		T_OUT="$CNI_BIN_DIR/"
		local p
		for p in main/bridge ipam/host-local main/loopback meta/portmap; do
			T_PKGS+=("github.com/containernetworking/plugins/plugins/$p")
			T_BINS+=("$CNI_BIN_DIR/${p##*/}")
		done
		T_ETA="~1 min"
		;;
	actionlint)
		T_DIR="$ROOT/tools/actionlint"
		T_VERSION="$(module_version "$T_DIR" github.com/rhysd/actionlint)"
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$T_VERSION")
		T_OUT="$BIN_DIR/actionlint"
		T_PKGS=(github.com/rhysd/actionlint/cmd/actionlint)
		T_BINS=("$BIN_DIR/actionlint")
		T_ETA="~1 min"
		;;
	helm)
		T_DIR="$ROOT/tools/helm"
		T_VERSION="$(module_version "$T_DIR" helm.sh/helm/v4)"
		# As upstream's Makefile: pure Go, the version stamped in.
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$T_VERSION -X helm.sh/helm/v4/internal/version.gitCommit=$(module_sum "$T_DIR" helm.sh/helm/v4 "$T_VERSION")")
		T_OUT="$BIN_DIR/helm"
		T_PKGS=(helm.sh/helm/v4/cmd/helm)
		T_BINS=("$BIN_DIR/helm")
		T_ETA="~6 min"
		;;
	*)
		die "unknown tool '$1' (tools: ${ALL_TOOLS[*]})"
		;;
	esac
}

# preflight TOOL: before building, fail with the Debian packages to install
# when the build needs more than Go.
preflight() {
	case "$1" in
	runc)
		command -v gcc >/dev/null || die "runc needs cgo: apt-get install gcc libc6-dev"
		command -v pkg-config >/dev/null || die "runc needs pkg-config: apt-get install pkg-config libseccomp-dev"
		pkg-config --exists libseccomp || die "runc needs libseccomp: apt-get install libseccomp-dev"
		local a
		a="$(pkg-config --variable=libdir libseccomp)/libseccomp.a"
		[[ -f "$a" ]] || die "runc links libseccomp statically but $a is missing: apt-get install libseccomp-dev"
		;;
	esac
}

# stamp_key: sha256 over everything that determines the current tool's outputs.
stamp_key() {
	{
		printf 'go.mod\n'
		cat "$T_DIR/go.mod"
		printf 'go.sum\n'
		cat "$T_DIR/go.sum"
		local f
		for f in ${T_INPUTS[@]+"${T_INPUTS[@]}"}; do
			printf 'input %s\n' "${f#"$ROOT"/}"
			cat "$f"
		done
		printf 'go %s\n' "$(cd "$T_DIR" && "$GO" env GOVERSION)"
		printf 'env %s\n' "${T_ENV[@]}"
		printf 'flag %s\n' "${T_FLAGS[@]}"
		printf 'out %s\n' "${T_OUT#"$ROOT"/}"
		printf 'pkg %s\n' "${T_PKGS[@]}"
		if ((${#T_PKGS2[@]})); then
			printf 'flag2 %s\n' "${T_FLAGS2[@]}"
			printf 'out2 %s\n' "${T_OUT2#"$ROOT"/}"
			printf 'pkg2 %s\n' "${T_PKGS2[@]}"
		fi
		local b
		for b in "${T_BINS[@]}"; do printf 'bin %s\n' "${b#"$ROOT"/}"; done
	} | sha256sum | cut -d' ' -f1
}

bin_names() {
	local b names=()
	for b in "${T_BINS[@]}"; do names+=("${b##*/}"); done
	printf '%s' "${names[*]}"
}

# Runs in the background by run_build; killed if this script is interrupted.
BUILD_PID=""
on_signal() {
	if [[ -n "$BUILD_PID" ]]; then
		kill -- "$BUILD_PID" 2>/dev/null || true
		wait "$BUILD_PID" 2>/dev/null || true
	fi
	log "interrupted"
	exit 130
}
trap on_signal INT TERM

# run_go_build OUT FLAG... -- PKG...: one go build of the current tool (in
# T_DIR, with T_ENV), in the background so that a heartbeat is printed every
# HEARTBEAT_SECONDS; output goes to $logf. Uses build_go_tool's tool, logf,
# start and next. Returns go build's exit status.
run_go_build() {
	local out=$1 flags=() pkgs=()
	shift
	while (($#)) && [[ "$1" != -- ]]; do
		flags+=("$1")
		shift
	done
	shift
	pkgs=("$@")
	{
		printf '# %s' "${T_ENV[*]} $GO build"
		printf ' %q' "${flags[@]}" -o "$out" "${pkgs[@]}"
		printf '\n'
	} >>"$logf"
	(cd "$T_DIR" && exec env "${T_ENV[@]}" "$GO" build "${flags[@]}" -o "$out" "${pkgs[@]}") >>"$logf" 2>&1 &
	BUILD_PID=$!
	while kill -0 "$BUILD_PID" 2>/dev/null; do
		sleep 1
		if ((SECONDS - start >= next)); then
			log "  ... still building $tool ($(((SECONDS - start) / 60))m elapsed)"
			next=$((next + HEARTBEAT_SECONDS))
		fi
	done
	local rc=0
	wait "$BUILD_PID" || rc=$?
	BUILD_PID=""
	return "$rc"
}

build_go_tool() {
	local tool=$1
	describe_tool "$tool"
	[[ -f "$T_DIR/go.mod" && -f "$T_DIR/go.sum" ]] || die "$T_DIR: go.mod/go.sum missing"
	mkdir -p "$STAMP_DIR" "$LOG_DIR" "$(dirname "${T_BINS[0]}")"

	# One build of a tool at a time (e.g. two make invocations).
	local lock="$STAMP_DIR/.$tool.lock"
	exec {lock_fd}>"$lock"
	if command -v flock >/dev/null && ! flock -n "$lock_fd"; then
		log "waiting for another build of $tool to finish..."
		flock "$lock_fd"
	fi

	local stamp="$STAMP_DIR/$tool" key
	key="$(stamp_key)"
	local fresh=1 b
	[[ -f "$stamp" && "$(<"$stamp")" == "$key" ]] || fresh=0
	for b in "${T_BINS[@]}"; do
		[[ -f "$b" && -x "$b" ]] || fresh=0
	done
	if ((fresh)); then
		for b in "${T_BINS[@]}"; do
			log "${b##*/} $T_VERSION: up to date"
		done
		exec {lock_fd}>&-
		return 0
	fi

	preflight "$tool"
	rm -f "$stamp"
	local logf="$LOG_DIR/$tool.log"
	log "building $tool $T_VERSION ($(bin_names)); a cold build takes $T_ETA on 2 cores..."
	local start=$SECONDS next=$HEARTBEAT_SECONDS rc=0
	printf '# %s\n# cd %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$T_DIR" >"$logf"
	run_go_build "$T_OUT" "${T_FLAGS[@]}" -- "${T_PKGS[@]}" || rc=$?
	if ((rc == 0 && ${#T_PKGS2[@]})); then
		run_go_build "$T_OUT2" "${T_FLAGS2[@]}" -- "${T_PKGS2[@]}" || rc=$?
	fi
	local took
	took="$(duration $((SECONDS - start)))"

	local missing=""
	if ((rc == 0)); then
		for b in "${T_BINS[@]}"; do
			[[ -f "$b" && -x "$b" ]] || missing+=" ${b#"$ROOT"/}"
		done
		if [[ -n "$missing" ]]; then
			printf 'build succeeded but did not produce:%s\n' "$missing" >>"$logf"
			rc=1
		fi
	fi
	if ((rc != 0)); then
		log "building $tool FAILED after $took (exit $rc); last 40 lines of the log:" >&2
		tail -n 40 "$logf" | sed 's/^/    /' >&2
		log "full log: $logf" >&2
		exit 1
	fi

	printf '%s\n' "$key" >"$stamp.tmp"
	mv -f "$stamp.tmp" "$stamp"
	exec {lock_fd}>&-
	log "built $tool in $took"
}

link_etcd() {
	local etcd=/usr/bin/etcd etcdctl=/usr/bin/etcdctl
	if [[ ! -x "$etcd" ]]; then
		die "$etcd not found: install Debian's etcd server with: apt-get install etcd-server"
	fi
	mkdir -p "$BIN_DIR"
	local version
	version="$("$etcd" --version 2>/dev/null | awk '/^etcd Version:/ { print "v" $3; exit }')"
	local src name
	for src in "$etcd" "$etcdctl"; do
		[[ -x "$src" ]] || continue
		name="${src##*/}"
		if [[ -L "$BIN_DIR/$name" && "$(readlink "$BIN_DIR/$name")" == "$src" ]]; then
			log "$name ${version:-(version unknown)} ($src): up to date"
		else
			ln -sfn "$src" "$BIN_DIR/$name"
			log "linked $name ${version:-(version unknown)} -> $src"
		fi
	done
	if [[ ! -x "$etcdctl" ]]; then
		log "note: $etcdctl not found (Debian package etcd-client); only etcd is linked"
	fi
}

main() {
	local tools=("$@")
	((${#tools[@]})) || tools=("${ALL_TOOLS[@]}")
	local t
	# Validate every name before building anything.
	for t in "${tools[@]}"; do
		case "$t" in
		-h | --help)
			awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
			exit 0
			;;
		esac
		[[ " ${ALL_TOOLS[*]} " == *" $t "* ]] || die "unknown tool '$t' (tools: ${ALL_TOOLS[*]})"
	done
	command -v "$GO" >/dev/null || die "Go toolchain '$GO' not found (set GO=...)"
	for t in "${tools[@]}"; do
		case "$t" in
		etcd) link_etcd ;;
		*) build_go_tool "$t" ;;
		esac
	done
}

main "$@"
