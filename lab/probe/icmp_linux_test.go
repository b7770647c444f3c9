package probe

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestICMPUnprivileged pings 127.0.0.1 with an unprivileged ICMP socket, as a
// non-root pod would. It runs in a network namespace of its own, where it can
// allow ping sockets (net.ipv4.ping_group_range) without touching the host.
func TestICMPUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	tryRawICMP = false
	t.Cleanup(func() { tryRawICMP = true })

	done := make(chan Result, 1)
	errc := make(chan error, 1)
	go func() {
		// The thread enters a new network namespace and is never unlocked, so
		// the runtime discards it when this goroutine ends.
		runtime.LockOSThread()
		if err := enterTestNetns(); err != nil {
			errc <- err
			return
		}
		done <- Connect(context.Background(), Request{Protocol: ICMP, Target: "127.0.0.1", Timeout: 5 * time.Second})
	}()
	select {
	case err := <-errc:
		t.Skipf("cannot set up a network namespace with ping sockets: %v", err)
	case res := <-done:
		if !res.Success || res.Reply != "127.0.0.1" {
			t.Fatalf("got %+v, want an echo reply from 127.0.0.1", res)
		}
	}
}

// enterTestNetns moves the calling thread into a new network namespace with
// lo up and ping sockets allowed for every group.
func enterTestNetns() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0)
}
