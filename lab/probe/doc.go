// Package probe is the pod-side probe of the cnilab test lab, in the spirit of
// agnhost's serve-hostname and connect commands.
//
// A probe server ([Serve], [Listen]) answers on TCP, UDP and SCTP ports with its
// name: stream protocols (TCP, SCTP) write the name and a newline to every
// accepted connection and close it; UDP answers every datagram with the name.
// A probe client ([Connect]) reaches one target over TCP, UDP, SCTP or ICMP echo
// and reports a [Result] that the e2e suite reads as JSON.
//
// SCTP uses one-to-one style sockets through golang.org/x/sys/unix, since the
// standard library has no SCTP. Kernels without SCTP are detected
// ([SCTPSupported]) and reported with [ErrSCTPUnsupported].
package probe
