// Package ipam is cnilab's host-local IPv4 address management: it hands out
// single addresses from a node's PodCIDR and remembers them in plain files, so
// the state survives restarts and is shared by concurrent CNI processes.
//
// Layout under the data directory, one sub-directory per range:
//
//	<dataDir>/10.244.1.0_24/lock           flock(2) target for every operation
//	<dataDir>/10.244.1.0_24/last_reserved  the last address handed out
//	<dataDir>/10.244.1.0_24/10.244.1.2     "containerID\nifname\n" of its owner
//
// Every read-modify-write of a range happens under an exclusive flock on its
// lock file, opened afresh for each operation, so separate processes (and
// separate Allocator values in one process) never hand out one address twice.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	lockFile         = "lock"
	lastReservedFile = "last_reserved"
)

// ErrExhausted is wrapped by Allocate when a range has no free address.
var ErrExhausted = errors.New("no free address")

// Attachment names one pod interface: the CNI (containerID, ifname) pair.
type Attachment struct {
	ContainerID string
	IfName      string
}

// Allocation is one address and its owner.
type Allocation struct {
	IP    netip.Addr
	Owner Attachment
}

// Allocator hands out addresses of one IPv4 range.
type Allocator struct {
	dir     string
	prefix  netip.Prefix
	gateway netip.Addr
}

// New returns the allocator of cidr (e.g. "10.244.1.0/24") under dataDir.
// gateway is never handed out; empty means the first address of the range.
// The network and broadcast addresses are never handed out either.
func New(dataDir, cidr, gateway string) (*Allocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("ipam: parse range %q: %w", cidr, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("ipam: range %s: only IPv4 is supported", p)
	}
	if p.Bits() > 30 {
		return nil, fmt.Errorf("ipam: range %s is too small: needs at least /30", p)
	}
	gw := p.Addr().Next()
	if gateway != "" {
		if gw, err = netip.ParseAddr(gateway); err != nil {
			return nil, fmt.Errorf("ipam: parse gateway %q: %w", gateway, err)
		}
		if !p.Contains(gw) {
			return nil, fmt.Errorf("ipam: gateway %s is outside range %s", gw, p)
		}
	}
	return &Allocator{dir: filepath.Join(dataDir, rangeDirName(p)), prefix: p, gateway: gw}, nil
}

// rangeDirName is the directory name of a range: the CIDR with '/' → '_'.
func rangeDirName(p netip.Prefix) string { return strings.ReplaceAll(p.String(), "/", "_") }

// Range returns the CIDR this allocator serves.
func (a *Allocator) Range() netip.Prefix { return a.prefix }

// Dir returns the allocator's state directory.
func (a *Allocator) Dir() string { return a.dir }

// Allocate returns the address owned by (containerID, ifname), reserving the
// next free one after the last reserved address when it has none yet.
func (a *Allocator) Allocate(containerID, ifname string) (netip.Addr, error) {
	if containerID == "" || ifname == "" {
		return netip.Addr{}, fmt.Errorf("ipam: allocate in %s: containerID and ifname are required", a.prefix)
	}
	owner := Attachment{containerID, ifname}
	var ip netip.Addr
	err := a.locked(true, func() error {
		allocs, err := a.list()
		if err != nil {
			return err
		}
		used := make(map[netip.Addr]bool, len(allocs))
		for _, al := range allocs {
			if al.Owner == owner {
				ip = al.IP
				return nil
			}
			used[al.IP] = true
		}
		first, last := a.hostBounds()
		cursor := a.lastReserved()
		if !cursor.IsValid() || !a.prefix.Contains(cursor) {
			cursor = last
		}
		for cand, n := next(cursor, first, last), 0; n < size(first, last); cand, n = next(cand, first, last), n+1 {
			if cand == a.gateway || used[cand] {
				continue
			}
			if err := a.writeOwner(cand, owner); err != nil {
				return err
			}
			ip = cand
			return writeFileAtomic(filepath.Join(a.dir, lastReservedFile), []byte(cand.String()+"\n"))
		}
		return fmt.Errorf("ipam: range %s: %w (%d addresses in use)", a.prefix, ErrExhausted, len(allocs))
	})
	return ip, err
}

// Lookup returns the address owned by (containerID, ifname), if any.
func (a *Allocator) Lookup(containerID, ifname string) (netip.Addr, bool, error) {
	var ip netip.Addr
	err := a.locked(false, func() error {
		allocs, err := a.list()
		for _, al := range allocs {
			if al.Owner == (Attachment{containerID, ifname}) {
				ip = al.IP
			}
		}
		return err
	})
	return ip, ip.IsValid(), err
}

// List returns every allocation of the range.
func (a *Allocator) List() ([]Allocation, error) {
	var out []Allocation
	err := a.locked(false, func() (err error) { out, err = a.list(); return err })
	return out, err
}

// Release frees the addresses owned by (containerID, ifname). Releasing what is
// not allocated is not an error; the released addresses are returned.
func (a *Allocator) Release(containerID, ifname string) ([]netip.Addr, error) {
	owner := Attachment{containerID, ifname}
	released, err := a.releaseIf(func(o Attachment) bool { return o == owner })
	var ips []netip.Addr
	for _, al := range released {
		ips = append(ips, al.IP)
	}
	return ips, err
}

// ReleaseAllExcept frees every allocation whose owner is not in valid (the
// CNI GC operation) and returns what it freed.
func (a *Allocator) ReleaseAllExcept(valid map[Attachment]bool) ([]Allocation, error) {
	return a.releaseIf(func(o Attachment) bool { return !valid[o] })
}

func (a *Allocator) releaseIf(match func(Attachment) bool) ([]Allocation, error) {
	var out []Allocation
	err := a.locked(false, func() error {
		allocs, err := a.list()
		if err != nil {
			return err
		}
		for _, al := range allocs {
			if !match(al.Owner) {
				continue
			}
			if err := os.Remove(filepath.Join(a.dir, al.IP.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("ipam: release %s: %w", al.IP, err)
			}
			out = append(out, al)
		}
		return nil
	})
	return out, err
}

// locked runs fn holding the range's exclusive lock. With create false a
// missing range directory means there is nothing to do.
func (a *Allocator) locked(create bool, fn func() error) error {
	if create {
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			return fmt.Errorf("ipam: create %s: %w", a.dir, err)
		}
	} else if _, err := os.Stat(a.dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(a.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ipam: open lock of %s: %w", a.prefix, err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ipam: lock %s: %w", a.prefix, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN) //nolint:errcheck // closing unlocks too
	return fn()
}

// list reads every allocation file; the caller holds the lock.
func (a *Allocator) list() ([]Allocation, error) {
	entries, err := os.ReadDir(a.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: read %s: %w", a.dir, err)
	}
	var out []Allocation
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || !a.prefix.Contains(ip) {
			continue // lock, last_reserved, temporary files
		}
		b, err := os.ReadFile(filepath.Join(a.dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipam: read allocation %s: %w", ip, err)
		}
		// A torn or foreign file still marks the address used; its empty
		// owner matches no live attachment, so GC frees it.
		fields := strings.Fields(string(b))
		var o Attachment
		if len(fields) == 2 {
			o = Attachment{fields[0], fields[1]}
		}
		out = append(out, Allocation{IP: ip, Owner: o})
	}
	return out, nil
}

func (a *Allocator) writeOwner(ip netip.Addr, o Attachment) error {
	if err := writeFileAtomic(filepath.Join(a.dir, ip.String()), []byte(o.ContainerID+"\n"+o.IfName+"\n")); err != nil {
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	return nil
}

func (a *Allocator) lastReserved() netip.Addr {
	b, err := os.ReadFile(filepath.Join(a.dir, lastReservedFile))
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(string(b)))
	return ip
}

// hostBounds returns the first and last addresses after excluding the network
// and broadcast addresses.
func (a *Allocator) hostBounds() (first, last netip.Addr) {
	b := a.prefix.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bcast := v | (1<<(32-a.prefix.Bits()) - 1)
	return u32(v + 1), u32(bcast - 1)
}

func u32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// next returns the address after ip, wrapping from last to first.
func next(ip, first, last netip.Addr) netip.Addr {
	if ip == last || ip.Less(first) || last.Less(ip) {
		return first
	}
	return ip.Next()
}

func size(first, last netip.Addr) int {
	f, l := first.As4(), last.As4()
	fv := uint32(f[0])<<24 | uint32(f[1])<<16 | uint32(f[2])<<8 | uint32(f[3])
	lv := uint32(l[0])<<24 | uint32(l[1])<<16 | uint32(l[2])<<8 | uint32(l[3])
	return int(lv - fv + 1)
}

// writeFileAtomic writes name through a temporary file and a rename, so a
// reader never sees a half-written file.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
