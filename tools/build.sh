#!/usr/bin/env bash
# tools/build.sh [TOOL...] — build the third-party binaries the lab runs, once.
#
# Tools: kubernetes, flannel, cni-plugins, etcd, actionlint (no arguments: all of them).
#
#   kubernetes   kube-apiserver, kube-controller-manager, kube-scheduler,
#                kube-proxy                                              -> _output/tools/bin/
#   flannel      flanneld                                                -> _output/tools/bin/
#   cni-plugins  bridge, host-local, loopback, portmap                   -> _output/tools/cni/bin/
#   etcd         symlinks to Debian's etcd-server (/usr/bin/etcd)        -> _output/tools/bin/
#   actionlint   actionlint (lints .github/workflows, make lint-workflows) -> _output/tools/bin/
#
# Each Go tool is built from its own module under tools/<tool>/ and cached: the
# stamp _output/tools/stamps/<tool> holds a sha256 of the module's go.mod and
# go.sum (and local stand-in modules), the Go version, the build flags and the
# list of output binaries. When the stamp matches and every binary exists and is
# executable, the build is skipped. See tools/README.md.
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
ALL_TOOLS=(kubernetes flannel cni-plugins etcd actionlint)

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

describe_tool() {
	T_ENV=() T_FLAGS=() T_PKGS=() T_BINS=() T_INPUTS=()
	case "$1" in
	kubernetes)
		T_DIR="$ROOT/tools/kubernetes"
		T_VERSION="$(module_version "$T_DIR" k8s.io/kubernetes)"
		local minor="${T_VERSION#v*.}"
		minor="${minor%%.*}"
		local major="${T_VERSION#v}"
		major="${major%%.*}"
		# Keep these flags byte-for-byte stable: they key the Go build cache.
		T_ENV=(CGO_ENABLED=0)
		T_FLAGS=(-trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$T_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$T_VERSION")
		T_OUT="$BIN_DIR/"
		T_PKGS=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy)
		T_BINS=("$BIN_DIR/kube-apiserver" "$BIN_DIR/kube-controller-manager" "$BIN_DIR/kube-scheduler" "$BIN_DIR/kube-proxy")
		T_ETA="15-20 min"
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
	*)
		die "unknown tool '$1' (tools: ${ALL_TOOLS[*]})"
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

	rm -f "$stamp"
	local logf="$LOG_DIR/$tool.log"
	log "building $tool $T_VERSION ($(bin_names)); a cold build takes $T_ETA on 2 cores..."
	local start=$SECONDS
	{
		printf '# %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
		printf '# cd %s\n' "$T_DIR"
		printf '# %s' "${T_ENV[*]} $GO build"
		printf ' %q' "${T_FLAGS[@]}" -o "$T_OUT" "${T_PKGS[@]}"
		printf '\n'
	} >"$logf"
	(cd "$T_DIR" && exec env "${T_ENV[@]}" "$GO" build "${T_FLAGS[@]}" -o "$T_OUT" "${T_PKGS[@]}") >>"$logf" 2>&1 &
	BUILD_PID=$!
	local next=$HEARTBEAT_SECONDS
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
		kubernetes | flannel | cni-plugins | etcd | actionlint) ;;
		-h | --help)
			sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
			exit 0
			;;
		*) die "unknown tool '$t' (tools: ${ALL_TOOLS[*]})" ;;
		esac
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
