// Command cnilab-init is PID 1 of a cnilab QEMU guest, started by the kernel
// from the initramfs the lab builds (lab/internal/initramfs).
//
// As PID 1 it mounts the kernel file systems, loads the kernel modules listed
// in /etc/cnilab/modules, sets the lab's sysctls, configures the network and
// host name from the kernel command line (cnilab.ip=ADDR/LEN,
// cnilab.hostname=NAME), records how boot went in /run/cnilab-init.status,
// prints "cnilab-init: ready in N ms" on the console, then starts itself again
// as "/init serve" — the control-channel server on the virtio-serial port
// cnilab.ctl — and reaps orphans, restarting the server when it exits.
// SIGTERM or SIGINT power the machine off.
//
// Invoked as "nsenter" (the guest's /usr/bin/nsenter is a symbolic link to
// /init) it is a stand-in for util-linux nsenter that supports exactly
// `nsenter --net=FILE -- PROG [ARGS...]`.
//
// It must be built statically (CGO_ENABLED=0): the guest has no C library.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// guestPATH is the PATH of everything init starts.
const guestPATH = "/cnilab/bin:/cnilab/tools/bin:/cnilab/tools/cni/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// console is where progress lines go: /dev/console once /dev is mounted,
// the kernel-given stderr (also the console) before.
var (
	consoleMu sync.Mutex
	console   io.Writer = os.Stderr
)

// logf prints one progress line on the console.
func logf(format string, args ...any) {
	consoleMu.Lock()
	defer consoleMu.Unlock()
	fmt.Fprintf(console, "cnilab-init: "+format+"\n", args...)
}

func main() {
	switch {
	case filepath.Base(os.Args[0]) == "nsenter":
		os.Exit(nsenterMain(os.Args[1:]))
	case len(os.Args) == 2 && os.Args[1] == "serve":
		os.Exit(serveMain())
	case os.Getpid() == 1:
		initMain()
	default:
		fmt.Fprintln(os.Stderr, "cnilab-init: this is the init of a cnilab QEMU guest: it runs as PID 1, as `/init serve`, or as `nsenter --net=FILE -- PROG [ARGS...]`")
		os.Exit(2)
	}
}
