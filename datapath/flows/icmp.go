package flows

import "fmt"

// icmpTypes names ICMPv4 types as gopacket does in Hubble's summaries.
var icmpTypes = map[uint8]string{
	0: "EchoReply", 3: "DestinationUnreachable", 4: "SourceQuench",
	5: "Redirect", 8: "EchoRequest", 9: "RouterAdvertisement",
	10: "RouterSolicitation", 11: "TimeExceeded", 12: "ParameterProblem",
	13: "Timestamp", 14: "TimestampReply",
}

// icmpCodes names the codes of the types that have named codes.
var icmpCodes = map[uint8]map[uint8]string{
	3: {0: "Net", 1: "Host", 2: "Protocol", 3: "Port",
		4: "FragmentationNeeded", 5: "SourceRoutingFailed",
		6: "NetUnknown", 7: "HostUnknown", 8: "SourceIsolated",
		9: "NetAdminProhibited", 10: "HostAdminProhibited",
		11: "NetTOS", 12: "HostTOS", 13: "CommAdminProhibited",
		14: "HostPrecedence", 15: "PrecedenceCutoff"},
	11: {0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"},
}

// icmpTypeCode formats an ICMPv4 type and code as gopacket's
// ICMPv4TypeCode.String does: "EchoRequest", "DestinationUnreachable(Port)".
func icmpTypeCode(typ, code uint8) string {
	name, ok := icmpTypes[typ]
	if !ok {
		return fmt.Sprintf("%d(%d)", typ, code)
	}
	if c, ok := icmpCodes[typ][code]; ok {
		return name + "(" + c + ")"
	}
	if code != 0 || icmpCodes[typ] != nil {
		return fmt.Sprintf("%s(Code: %d)", name, code)
	}
	return name
}
