package flows

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  Filter
	}{
		{"", Filter{}},
		{"follow=true", Filter{}},
		{"namespace=x", Filter{Namespace: "x"}},
		{"pod=x/a", Filter{Pod: "x/a"}},
		{"pod=a", Filter{Pod: "default/a"}},
		{"pod=a&namespace=x", Filter{Pod: "x/a", Namespace: "x"}},
		{"verdict=dropped", Filter{Verdict: "DROPPED"}},
		{"verdict=FORWARDED", Filter{Verdict: "FORWARDED"}},
		{"protocol=tcp", Filter{Protocol: "TCP"}},
		{"protocol=ICMP", Filter{Protocol: "ICMPv4"}},
		{"protocol=sctp", Filter{Protocol: "SCTP"}},
		{"port=8080", Filter{Port: 8080}},
		{"since=2026-03-04T05:06:07.5Z", Filter{Since: t0.Truncate(time.Second).Add(500 * time.Millisecond)}},
		{"last=20", Filter{Last: 20}},
		{"namespace=y&verdict=dropped&protocol=udp&port=53&last=1",
			Filter{Namespace: "y", Verdict: "DROPPED", Protocol: "UDP", Port: 53, Last: 1}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := ParseFilter(q)
		if err != nil || got != tc.want {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
	// A relative since is that long before now.
	f, err := ParseFilter(url.Values{"since": {"5m"}})
	if d := time.Since(f.Since); err != nil || d < 5*time.Minute || d > 6*time.Minute {
		t.Errorf("since=5m: %v, %v", f.Since, err)
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, query := range []string{
		"verdict=MAYBE", "protocol=gre", "port=0", "port=70000", "port=http",
		"since=yesterday", "since=-5m", "last=-1", "last=many", "pod=x/", "pod=/a",
		"pod=x/a/b", "verdit=DROPPED", "port=1&port=2",
	} {
		q, _ := url.ParseQuery(query)
		_, err := ParseFilter(q)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%q) = %v, want a *FilterError", query, err)
			continue
		}
		param, _, _ := strings.Cut(query, "=")
		if fe.Param != param || !strings.Contains(err.Error(), param+"=") {
			t.Errorf("ParseFilter(%q) error %q does not name %s", query, err, param)
		}
	}
	_, err := ParseFilter(url.Values{"verdict": {"MAYBE"}})
	if want := "bad parameter verdict=MAYBE: want FORWARDED or DROPPED"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// TestParseFilterRejectsBadNames is the regression test for what
// FuzzParseFilter's seed "namespace=a/b&pod=c" found: a namespace with a '/'
// was accepted and made the pod filter "a/b/c", which no flow can match.
func TestParseFilterRejectsBadNames(t *testing.T) {
	for _, query := range []string{"namespace=a/b&pod=c", "namespace=A", "pod=x/a/b", "pod=x/A_b", "pod=a/", "pod=/a", "namespace=" + strings.Repeat("a", 64)} {
		q, _ := url.ParseQuery(query)
		var fe *FilterError
		if _, err := ParseFilter(q); !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%q) = %v, want a FilterError", query, err)
		}
	}
}

// TestFilterErrorEmptyName is the regression test for FuzzParseFilter's
// finding "=0": the error read "bad parameter =0", naming nothing.
func TestFilterErrorEmptyName(t *testing.T) {
	q, _ := url.ParseQuery("=0")
	_, err := ParseFilter(q)
	if err == nil || err.Error() != `bad parameter with an empty name (value "0"): unknown parameter` {
		t.Errorf("ParseFilter(=0) = %v", err)
	}
}
