package flows

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseFilter feeds arbitrary query strings to ParseFilter (what the
// agent's /v1/flows and `cnilab observe` accept from users): it must never
// panic, every error must be a *FilterError naming the parameter, and an
// accepted filter must be one Match can apply: a pod is "namespace/name"
// with a name free of '/', in the namespace parameter's namespace when both
// are given, and every name field is in its canonical spelling.
//
//	go test -run '^$' -fuzz FuzzParseFilter ./datapath/flows/
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "follow=true", "namespace=x&pod=a", "pod=x/a", "pod=/a", "pod=x/", "pod=a/b/c",
		"verdict=dropped", "protocol=icmp", "port=65535", "port=0", "port=65536",
		"since=5m", "since=-5m", "since=2026-03-04T05:06:07.5Z", "last=3", "last=-1",
		"namespace=a/b&pod=c", "pod=a&pod=b", "color=red", "%zz",
	} {
		f.Add(s)
	}
	fl := testEnricher.Enrich(synDrop())
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		filter, err := ParseFilter(q)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("ParseFilter(%q): error %v (%T) is not a FilterError with a reason", query, err, err)
			}
			if fe.Param == "" && !strings.Contains(err.Error(), "empty name") {
				t.Fatalf("ParseFilter(%q): error %q does not say the parameter name is empty", query, err)
			}
			if _, given := q[fe.Param]; !given {
				t.Fatalf("ParseFilter(%q): error names %q, which was not given", query, fe.Param)
			}
			return
		}
		if filter.Pod != "" {
			ns, name, ok := strings.Cut(filter.Pod, "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				t.Fatalf("ParseFilter(%q): pod %q is not namespace/name", query, filter.Pod)
			}
			if filter.Namespace != "" && !strings.Contains(q.Get("pod"), "/") && ns != filter.Namespace {
				t.Fatalf("ParseFilter(%q): pod %q is not in namespace %q", query, filter.Pod, filter.Namespace)
			}
		}
		switch filter.Verdict {
		case "", "FORWARDED", "DROPPED":
		default:
			t.Fatalf("ParseFilter(%q): verdict %q", query, filter.Verdict)
		}
		switch filter.Protocol {
		case "", "TCP", "UDP", "SCTP", "ICMPv4":
		default:
			t.Fatalf("ParseFilter(%q): protocol %q", query, filter.Protocol)
		}
		if filter.Last < 0 {
			t.Fatalf("ParseFilter(%q): last %d", query, filter.Last)
		}
		filter.Match(&fl)
	})
}
