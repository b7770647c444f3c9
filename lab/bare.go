package lab

import (
	"context"

	netnsprovider "github.com/cnilab/cnilab/lab/internal/providers/netns"
)

// BareNetwork is the network with no CNI at all, the limit a pod network is
// measured against: two namespaces joined by a bare veth (same node), and two
// node namespaces on a bare underlay bridge (across nodes), each with a
// cnilab-probe server on TCP and UDP port BarePort. It lives on this
// machine's kernel, like the netns provider's labs, and `cnilab lab down
// NAME` removes it too.
type BareNetwork struct {
	p netnsprovider.Provider
	b *netnsprovider.Bare
}

// BarePort is the port the bare network's servers answer on.
const BarePort = netnsprovider.BarePort

// CreateBareNetwork makes the bare network name (a lab name) and starts its
// servers; on failure nothing of it is left.
func CreateBareNetwork(ctx context.Context, name string) (*BareNetwork, error) {
	p := engine()
	b, err := p.CreateBare(ctx, name)
	if err != nil {
		return nil, err
	}
	return &BareNetwork{p: p, b: b}, nil
}

// Server is the address of the same-node server (sameNode) or of the
// cross-node one.
func (n *BareNetwork) Server(sameNode bool) string {
	if sameNode {
		return n.b.SameServer
	}
	return n.b.CrossServer
}

// Exec runs argv on the client beside the same-node server (sameNode) or on
// the other node; a non-zero exit is in the result.
func (n *BareNetwork) Exec(ctx context.Context, sameNode bool, argv []string) (ExecResult, error) {
	var r netnsprovider.ExecResult
	var err error
	if sameNode {
		r, err = n.b.ExecSame(ctx, argv)
	} else {
		r, err = n.b.ExecCross(ctx, argv)
	}
	return ExecResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode}, err
}

// Delete removes the bare network: servers, namespaces, state.
func (n *BareNetwork) Delete() error { return n.p.Delete(n.b.Name()) }
