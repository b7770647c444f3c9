package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Ranges returns an allocator for every range that has state under dataDir,
// whatever the node's current PodCIDR is: DEL and GC must free addresses even
// when the agent that knows the PodCIDR is unreachable, or the CIDR changed.
func Ranges(dataDir string) ([]*Allocator, error) {
	entries, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: read %s: %w", dataDir, err)
	}
	var out []*Allocator
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := netip.ParsePrefix(strings.Replace(e.Name(), "_", "/", 1))
		if err != nil || p != p.Masked() || !p.Addr().Is4() || p.Bits() > 30 {
			continue // not a range directory
		}
		a, err := New(dataDir, p.String(), "")
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ReleaseEverywhere frees what (containerID, ifname) owns in every range under
// dataDir; freeing nothing is not an error.
func ReleaseEverywhere(dataDir, containerID, ifname string) ([]netip.Addr, error) {
	ranges, err := Ranges(dataDir)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	var errs []error
	for _, a := range ranges {
		got, err := a.Release(containerID, ifname)
		ips = append(ips, got...)
		errs = append(errs, err)
	}
	return ips, errors.Join(errs...)
}

// ListEverywhere returns the allocations of every range under dataDir.
func ListEverywhere(dataDir string) ([]Allocation, error) {
	ranges, err := Ranges(dataDir)
	if err != nil {
		return nil, err
	}
	var out []Allocation
	for _, a := range ranges {
		got, err := a.List()
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// ReleaseAllExceptEverywhere is ReleaseAllExcept over every range under dataDir.
func ReleaseAllExceptEverywhere(dataDir string, valid map[Attachment]bool) ([]Allocation, error) {
	ranges, err := Ranges(dataDir)
	if err != nil {
		return nil, err
	}
	var out []Allocation
	var errs []error
	for _, a := range ranges {
		got, err := a.ReleaseAllExcept(valid)
		out = append(out, got...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}
