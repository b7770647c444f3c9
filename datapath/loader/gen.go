package loader

// The eBPF objects are generated from bpf/datapath.c and committed, so that
// `go build` needs no clang. Regenerate with `make generate` (clang-14,
// llvm-14, libbpf-dev, linux-libc-dev); `make check-generate` proves the
// committed objects match the sources. The output does not depend on the
// checkout's absolute path: bpf2go maps the source directory in the debug
// info, and -ffile-prefix-map does the same for everything else.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type endpoint_info -type remote_info -type remote_key -type ipcache_key -type ipcache_info -type policy_key -type policy_value -type ct_tuple -type ct_entry -type flow_event -type metrics_value datapath ../../bpf/datapath.c -- -I../../bpf -I/usr/include/x86_64-linux-gnu -Wall -Werror
