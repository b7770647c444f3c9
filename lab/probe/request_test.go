package probe

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseProtocol(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Protocol
		wantErr bool
	}{
		{"tcp", TCP, false},
		{"UDP", UDP, false},
		{" sctp ", SCTP, false},
		{"icmp", ICMP, false},
		{"http", "", true},
		{"", "", true},
	} {
		got, err := ParseProtocol(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseProtocol(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		req     Request
		wantErr string // empty: valid
	}{
		{Request{Protocol: TCP, Target: "10.244.1.5:80"}, ""},
		{Request{Protocol: UDP, Target: "[::1]:80"}, ""},
		{Request{Protocol: SCTP, Target: "pod-a:81", Timeout: time.Second}, ""},
		{Request{Protocol: TCP, Target: "10.244.1.5"}, "missing port"},
		{Request{Protocol: UDP, Target: ":80"}, "missing host"},
		{Request{Protocol: TCP, Target: "10.0.0.1:0"}, "port must be 1-65535"},
		{Request{Protocol: TCP, Target: "10.0.0.1:65536"}, "port must be 1-65535"},
		{Request{Protocol: TCP, Target: "10.0.0.1:http"}, "port must be 1-65535"},
		{Request{Protocol: TCP, Target: "::1:80"}, "want host:port"},
		{Request{Protocol: ICMP, Target: "10.0.0.1"}, ""},
		{Request{Protocol: ICMP, Target: "::1"}, ""},
		{Request{Protocol: ICMP, Target: "[fe80::1]"}, ""},
		{Request{Protocol: ICMP, Target: "10.0.0.1:80"}, "without port"},
		{Request{Protocol: ICMP, Target: ""}, "missing host"},
		{Request{Protocol: "http", Target: "10.0.0.1:80"}, "unknown protocol"},
		{Request{Protocol: TCP, Target: "10.0.0.1:80", Timeout: -time.Second}, "negative timeout"},
	} {
		err := tc.req.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.req, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want one containing %q", tc.req, err, tc.wantErr)
		}
	}
}

func TestConnectInvalidRequest(t *testing.T) {
	res := Connect(context.Background(), Request{Protocol: TCP, Target: "10.0.0.1"})
	if res.Success || !strings.Contains(res.Error, "want host:port") {
		t.Fatalf("got %+v, want a failure naming the bad target", res)
	}
}
