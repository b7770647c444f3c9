package flows

import "fmt"

// dropReasonNames maps Cilium's drop reason numbers to the names of
// Hubble's DropReason enum (flow.proto), the value of drop_reason_desc.
var dropReasonNames = map[uint8]string{
	130: "INVALID_SOURCE_MAC",
	131: "INVALID_DESTINATION_MAC",
	132: "INVALID_SOURCE_IP",
	133: "POLICY_DENIED",
	134: "INVALID_PACKET_DROPPED",
	135: "CT_TRUNCATED_OR_INVALID_HEADER",
	136: "CT_MISSING_TCP_ACK_FLAG",
	137: "CT_UNKNOWN_L4_PROTOCOL",
	138: "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
	139: "UNSUPPORTED_L3_PROTOCOL",
	140: "MISSED_TAIL_CALL",
	141: "ERROR_WRITING_TO_PACKET",
	142: "UNKNOWN_L4_PROTOCOL",
	143: "UNKNOWN_ICMPV4_CODE",
	144: "UNKNOWN_ICMPV4_TYPE",
	145: "UNKNOWN_ICMPV6_CODE",
	146: "UNKNOWN_ICMPV6_TYPE",
	147: "ERROR_RETRIEVING_TUNNEL_KEY",
	150: "UNKNOWN_L3_TARGET_ADDRESS",
	151: "STALE_OR_UNROUTABLE_IP",
	153: "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
	154: "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
	155: "CT_MAP_INSERTION_FAILED",
	157: "IP_FRAGMENTATION_NOT_SUPPORTED",
	160: "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
	165: "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION",
	169: "FIB_LOOKUP_FAILED",
	171: "INVALID_IDENTITY",
	172: "UNKNOWN_SENDER",
	175: "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
	181: "POLICY_DENY",
	196: "TTL_EXCEEDED",
}

// dropReasonTexts holds Cilium's human text of the drop reasons cnilab's
// datapath emits, used when an event or counter carries no text.
var dropReasonTexts = map[uint8]string{
	132: "Invalid source ip",
	133: "Policy denied",
	134: "Invalid packet",
	135: "CT: Truncated or invalid header",
	175: "First logical datagram fragment not found",
}

// DropReasonName is Hubble's DropReason enum name of a drop reason number
// ("POLICY_DENIED" for 133), "DROP_REASON_UNKNOWN" for one it lacks.
func DropReasonName(reason uint8) string {
	if n, ok := dropReasonNames[reason]; ok {
		return n
	}
	return "DROP_REASON_UNKNOWN"
}

// dropReasonText is text if set, else Cilium's text of reason, else
// "DropReason(N)" as the loader prints an unknown one.
func dropReasonText(reason uint8, text string) string {
	if text != "" {
		return text
	}
	if t, ok := dropReasonTexts[reason]; ok {
		return t
	}
	return fmt.Sprintf("DropReason(%d)", reason)
}

// verdictName names a verdict as Hubble's Verdict enum does.
func verdictName(v uint8) string {
	switch v {
	case VerdictForwarded:
		return "FORWARDED"
	case VerdictDropped:
		return "DROPPED"
	}
	return "VERDICT_UNKNOWN"
}

// directionName names a direction as Hubble's TrafficDirection enum does.
func directionName(d uint8) string {
	switch d {
	case DirIngress:
		return "INGRESS"
	case DirEgress:
		return "EGRESS"
	}
	return "TRAFFIC_DIRECTION_UNKNOWN"
}
