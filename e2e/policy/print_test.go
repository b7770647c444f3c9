package policy

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// smallModel is x/a, x/b and y/a with synthetic IPs.
func smallModel() Model {
	m := testModel()
	for _, k := range []string{"x/c", "y/b", "y/c", "z/a", "z/b", "z/c"} {
		m, _ = m.WithoutPod(k)
	}
	m.Namespaces = m.Namespaces[:2]
	return m
}

// smallTables returns 80/TCP and 80/UDP tables under "x/a accepts TCP
// from x/b only", with x/b -> x/a 80/TCP observed denied (a mismatch),
// y/a -> x/a 80/TCP observed allowed (a mismatch) and y/a -> y/a not
// probed.
func smallTables() []*Reachability {
	m := smallModel()
	ps := []networkingv1.NetworkPolicy{netpol("x", "a-from-b", sel("pod", "a"), ingressRules(peers(podPeer(selp("pod", "b"))).on(protoOnly(tcp))))}
	var rs []*Reachability
	for _, pp := range []PortProtocol{TCP80, UDP80} {
		r := NewReachability(ps, m, pp)
		for e, ok := range r.Expected {
			r.Observe(e.From, e.To, ok)
		}
		rs = append(rs, r)
	}
	rs[0].Observe("x/b", "x/a", false)
	rs[0].Observe("y/a", "x/a", true)
	delete(rs[0].Observed, Edge{"y/a", "y/a"})
	return rs
}

func TestPrinterSnapshot(t *testing.T) {
	rs := smallTables()
	const want = `80/TCP: 2 of 9 pairs differ from the expectation
expected:
+--------+-----+-----+-----+
| 80/TCP | x/a | x/b | y/a |
+--------+-----+-----+-----+
| x/a    | .   | .   | .   |
| x/b    | .   | .   | .   |
| y/a    | X   | .   | .   |
+--------+-----+-----+-----+
observed:
+--------+-----+-----+-----+
| 80/TCP | x/a | x/b | y/a |
+--------+-----+-----+-----+
| x/a    | .   | .   | .   |
| x/b    | X   | .   | .   |
| y/a    | .   | .   | ?   |
+--------+-----+-----+-----+
diff:
+--------+-----+-----+-----+
| 80/TCP | x/a | x/b | y/a |
+--------+-----+-----+-----+
| x/a    | .   | .   | .   |
| x/b    | X*  | .   | .   |
| y/a    | .*  | .   | ?   |
+--------+-----+-----+-----+
x/b -> x/a 80/TCP: expected allowed, observed denied; oracle: allowed (egress of x/b: not isolated; ingress of x/a: isolated by [x/a-from-b], allowed by x/a-from-b ingress[0])
y/a -> x/a 80/TCP: expected denied, observed allowed; oracle: denied (egress of y/a: not isolated; ingress of x/a: isolated by [x/a-from-b], no rule allows)
`
	if got := rs[0].String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	const compact = `marks: 80/TCP 80/UDP
+------+-----+-----+-----+
| diff | x/a | x/b | y/a |
+------+-----+-----+-----+
| x/a  | ..  | ..  | ..  |
| x/b  | XX* | ..  | ..  |
| y/a  | .X* | ..  | ?.  |
+------+-----+-----+-----+
`
	if got := Compact(rs, DiffTable); got != compact {
		t.Errorf("got\n%s\nwant\n%s", got, compact)
	}
	if len(rs[0].Unobserved()) != 1 || len(rs[1].Mismatches()) != 0 || len(rs[0].Probes()) != 9 {
		t.Error("Unobserved/Mismatches/Probes")
	}
}
