package policy

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PortProtocol is what one probe targets: a port and a protocol. It is
// written "80/TCP", or "ICMP" (no port), in case files.
type PortProtocol struct {
	Port     int32
	Protocol corev1.Protocol
}

// Shorthands for the standard ports.
var (
	TCP80  = PortProtocol{80, corev1.ProtocolTCP}
	TCP81  = PortProtocol{81, corev1.ProtocolTCP}
	UDP80  = PortProtocol{80, corev1.ProtocolUDP}
	UDP81  = PortProtocol{81, corev1.ProtocolUDP}
	SCTP80 = PortProtocol{80, corev1.ProtocolSCTP}
	SCTP81 = PortProtocol{81, corev1.ProtocolSCTP}
	ICMP   = PortProtocol{0, ProtocolICMP}
)

// DefaultProbes is what a step probes unless it says otherwise. The suite
// skips SCTP where the kernel has none.
func DefaultProbes() []PortProtocol {
	return []PortProtocol{TCP80, TCP81, UDP80, UDP81, SCTP80}
}

// AllProbes is every port and protocol of the standard model, plus ICMP.
func AllProbes() []PortProtocol {
	return []PortProtocol{TCP80, TCP81, UDP80, UDP81, SCTP80, SCTP81, ICMP}
}

func (pp PortProtocol) String() string {
	if pp.Protocol == ProtocolICMP {
		return string(ProtocolICMP)
	}
	return fmt.Sprintf("%d/%s", pp.Port, pp.Protocol)
}

// ParsePortProtocol parses "80/TCP" (protocol case-insensitive) or "ICMP".
func ParsePortProtocol(s string) (PortProtocol, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, string(ProtocolICMP)) {
		return ICMP, nil
	}
	port, proto, ok := strings.Cut(s, "/")
	if !ok {
		return PortProtocol{}, fmt.Errorf("%q: want PORT/PROTOCOL (80/TCP) or ICMP", s)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return PortProtocol{}, fmt.Errorf("%q: bad port: %w", s, err)
	}
	pp := PortProtocol{Port: int32(n), Protocol: corev1.Protocol(strings.ToUpper(proto))}
	return pp, pp.Validate()
}

// Validate checks that pp can be probed: a port in 1-65535 on TCP, UDP or
// SCTP, or ICMP with no port.
func (pp PortProtocol) Validate() error {
	switch pp.Protocol {
	case ProtocolICMP:
		if pp.Port != 0 {
			return fmt.Errorf("%d/ICMP: ICMP has no port", pp.Port)
		}
		return nil
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return fmt.Errorf("%s: unknown protocol %q", pp, pp.Protocol)
	}
	if pp.Port < 1 || pp.Port > 65535 {
		return fmt.Errorf("%s: port out of range 1-65535", pp)
	}
	return nil
}

// MarshalText writes pp as "80/TCP" or "ICMP".
func (pp PortProtocol) MarshalText() ([]byte, error) { return []byte(pp.String()), nil }

// UnmarshalText reads "80/TCP" or "ICMP".
func (pp *PortProtocol) UnmarshalText(b []byte) error {
	v, err := ParsePortProtocol(string(b))
	if err != nil {
		return err
	}
	*pp = v
	return nil
}
