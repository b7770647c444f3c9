package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IANA protocol numbers, as icmp.ParseMessage wants them.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// icmpConn is an ICMP echo socket: raw when permitted, else an unprivileged
// datagram ("ping") socket, where the kernel owns the echo ID.
type icmpConn struct {
	*icmp.PacketConn
	raw bool
}

// tryRawICMP is cleared by tests to exercise the unprivileged socket.
var tryRawICMP = true

// listenICMP opens an ICMP socket for IPv4 or IPv6, raw first.
func listenICMP(v6 bool) (*icmpConn, error) {
	rawNet, dgramNet, wildcard := "ip4:icmp", "udp4", "0.0.0.0"
	if v6 {
		rawNet, dgramNet, wildcard = "ip6:ipv6-icmp", "udp6", "::"
	}
	rawErr := errors.New("not tried")
	if tryRawICMP {
		var c *icmp.PacketConn
		if c, rawErr = icmp.ListenPacket(rawNet, wildcard); rawErr == nil {
			return &icmpConn{c, true}, nil
		}
	}
	c, err := icmp.ListenPacket(dgramNet, wildcard)
	if err != nil {
		return nil, fmt.Errorf("icmp socket: raw: %v; unprivileged: %v", cause(rawErr), cause(err))
	}
	return &icmpConn{c, false}, nil
}

func (c *icmpConn) dst(a netip.Addr) net.Addr {
	ip := net.IP(a.AsSlice())
	if c.raw {
		return &net.IPAddr{IP: ip, Zone: a.Zone()}
	}
	return &net.UDPAddr{IP: ip, Zone: a.Zone()}
}

// connectICMP sends echo requests to target until an echo reply with the same
// ID (raw sockets only), sequence number and data arrives, and returns the
// replying address.
func connectICMP(ctx context.Context, target string, timeout time.Duration) (string, error) {
	host, err := icmpHost(target)
	if err != nil {
		return "", err
	}
	addr, err := resolve(ctx, host)
	if err != nil {
		return "", opError("ping", ICMP, target, err)
	}
	v6 := !addr.Is4()
	conn, err := listenICMP(v6)
	if err != nil {
		return "", fmt.Errorf("ping %s: %w", target, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	echo := &icmp.Echo{
		ID:   int(binary.BigEndian.Uint16(nonce[0:2])),
		Seq:  int(binary.BigEndian.Uint16(nonce[2:4])),
		Data: append(append([]byte{}, payload...), nonce[:]...),
	}
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: echo}
	proto := protoICMP
	if v6 {
		msg.Type, proto = ipv6.ICMPTypeEchoRequest, protoICMPv6
	}
	wire, err := msg.Marshal(nil) // the kernel fills the ICMPv6 checksum
	if err != nil {
		return "", fmt.Errorf("ping %s: %w", target, err)
	}
	dst := conn.dst(addr)
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 1500)
	for {
		if _, err := conn.WriteTo(wire, dst); err != nil {
			return "", opError("ping", ICMP, target, ctxErr(ctx, err))
		}
		_ = conn.SetReadDeadline(minTime(time.Now().Add(udpRetry), deadline))
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				if !isTimeout(err) {
					return "", opError("ping", ICMP, target, err)
				}
				break
			}
			if conn.isReply(buf[:n], proto, echo) {
				return peerIP(peer), nil
			}
		}
		if ctx.Err() != nil {
			return "", noReply(ctx, ICMP, target, timeout)
		}
	}
}

// isReply reports whether b is the echo reply to req.
func (c *icmpConn) isReply(b []byte, proto int, req *icmp.Echo) bool {
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
		return false
	}
	e, ok := m.Body.(*icmp.Echo)
	return ok && e.Seq == req.Seq && (!c.raw || e.ID == req.ID) && bytes.Equal(e.Data, req.Data)
}

func peerIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	}
	return a.String()
}
