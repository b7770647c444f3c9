package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// ScalePolicy is the i-th of the policies the scale measurement creates. It
// selects the server, and allows the bench clients on ports 80 and 81 (so
// the clients reach the server at every count) and a /24 of its own on a
// port of its own (so every policy adds identities, ipcache entries and
// policy map keys of its own).
func ScalePolicy(i int) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := func(p int) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(int32(p))
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &v}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%04d", i), Namespace: benchNamespace,
			Labels: map[string]string{"cnilab.io/bench": "scale"}},
		Spec: networkingv1.NetworkPolicySpec{
			// spec.podSelector: the server.
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench-server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "bench-client"}}}},
					Ports: []networkingv1.NetworkPolicyPort{port(80), port(81)},
				},
				{
					From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("172.%d.%d.0/24", 16+i/256%16, i%256)}}},
					Ports: []networkingv1.NetworkPolicyPort{port(10000 + i)},
				},
			},
		},
	}
}

// delayPolicy limits the same-node client's egress to the server's port 80:
// while it exists, the client's connections to port 81 are dropped. The
// agent of the server's node, which holds every scale policy, enforces it.
func delayPolicy() *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	p80 := intstr.FromInt32(80)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "delay-egress", Namespace: benchNamespace},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"placement": SameNode}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench-server"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p80}},
			}},
		},
	}
}

// policyScale measures TCP_RR and TCP_CRR and the enforcement delay on the
// cnilab lab at each policy count, in increasing order.
func (o *Options) policyScale(ctx context.Context, t *labTarget) ([]PolicyScale, error) {
	var out []PolicyScale
	have := 0
	for _, n := range sortedUnique(o.PolicyCounts) {
		ps := PolicyScale{Count: n}
		start := time.Now()
		fmt.Fprintf(o.Progress, "bench: %d NetworkPolicies selecting the server\n", n)
		if err := o.setPolicies(ctx, t, have, n); err != nil {
			return out, err
		}
		have = n
		if err := waitPolicies(ctx, t, n); err != nil {
			return out, err
		}
		ps.ApplySeconds = time.Since(start).Seconds()
		fmt.Fprintf(o.Progress, "bench: %d policies applied in %.1fs\n", n, ps.ApplySeconds)
		tests := []probe.Mode{probe.TCPRR, probe.TCPCRR}
		ps.Rows = o.measure(ctx, map[string]target{VariantCnilab: t}, []string{VariantCnilab}, tests, o.Repetitions)
		for r := range o.DelayRepetitions {
			deny, allow, err := o.enforcementDelay(ctx, t)
			if err != nil {
				return out, fmt.Errorf("enforcement delay with %d policies: %w", n, err)
			}
			fmt.Fprintf(o.Progress, "bench: %d/%d enforcement with %d policies: deny %.0f ms, allow %.0f ms\n", r+1, o.DelayRepetitions, n, deny, allow)
			ps.DenyMS, ps.AllowMS = append(ps.DenyMS, deny), append(ps.AllowMS, allow)
		}
		out = append(out, ps)
	}
	return out, nil
}

// setPolicies creates scale policies have..want-1 or deletes want..have-1,
// a few at a time.
func (o *Options) setPolicies(ctx context.Context, t *labTarget, have, want int) error {
	api := t.client.NetworkingV1().NetworkPolicies(benchNamespace)
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				var err error
				if i < want {
					_, err = api.Create(ctx, ScalePolicy(i), metav1.CreateOptions{})
				} else {
					err = api.Delete(ctx, ScalePolicy(i).Name, metav1.DeleteOptions{})
				}
				if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
					select {
					case errs <- fmt.Errorf("policy %d: %w", i, err):
					default:
					}
				}
			}
		})
	}
	for i := min(have, want); i < max(have, want); i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitPolicies waits until the server node's agent has compiled n policies.
func waitPolicies(ctx context.Context, t *labTarget, n int) error {
	st, ok := t.cl.(lab.AgentStatuser)
	if !ok {
		return fmt.Errorf("lab %s cannot read the agents' status", t.cl.Name())
	}
	node := t.cl.Nodes()[0].Name
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := st.AgentStatus(ctx, node)
		if err == nil {
			if compiledPolicies(s) == n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent on %s did not compile %d policies within 3m (status %v, %v)", node, n, s, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// enforcementDelay creates the delay policy and measures until the
// same-node client's new connections to port 81 are dropped, then deletes
// it and measures until they get through again, in milliseconds. The probe
// polls every 50 ms, started before the API call.
func (o *Options) enforcementDelay(ctx context.Context, t *labTarget) (denyMS, allowMS float64, err error) {
	api := t.client.NetworkingV1().NetworkPolicies(benchNamespace)
	_ = api.Delete(ctx, delayPolicy().Name, metav1.DeleteOptions{})
	// The state a previous round left: reachable once the delay policy is gone.
	r, err := t.exec(ctx, SameNode, []string{"cnilab-probe", "await", "--state", "reachable", "--within", "60s", fmt.Sprintf("%s:81", t.serverIP)})
	if err != nil || r.ExitCode != 0 {
		return 0, 0, fmt.Errorf("server port 81 unreachable before the delay policy: %v %s%s", err, r.Stdout, r.Stderr)
	}
	d, err := o.await(ctx, t, false, func() error {
		_, err := api.Create(ctx, delayPolicy(), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("deny: %w", err)
	}
	a, err := o.await(ctx, t, true, func() error {
		return api.Delete(ctx, delayPolicy().Name, metav1.DeleteOptions{})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("allow: %w", err)
	}
	return d, a, nil
}

// await starts a probe waiting for the client→server:81 state, lets it
// see the old state for a moment, calls change, and returns the time from
// the call to the first attempt that saw the new state, in milliseconds.
func (o *Options) await(ctx context.Context, t *labTarget, reachable bool, change func() error) (float64, error) {
	state := "unreachable"
	if reachable {
		state = "reachable"
	}
	argv := []string{"cnilab-probe", "await", "--state", state, "--interval", "50ms", "--timeout", "250ms", "--within", "60s",
		fmt.Sprintf("%s:81", t.serverIP)}
	type outcome struct {
		res probe.AwaitResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := t.exec(ctx, SameNode, argv)
		var res probe.AwaitResult
		if err == nil {
			if jerr := json.Unmarshal(r.Stdout, &res); jerr != nil {
				err = fmt.Errorf("await: exit %d: %s%s", r.ExitCode, r.Stdout, r.Stderr)
			} else if !res.Reached {
				err = errors.New(res.Error)
			}
		}
		done <- outcome{res, err}
	}()
	// The exec takes a few milliseconds to start probing.
	select {
	case out := <-done:
		if out.err != nil {
			return 0, out.err
		}
		return 0, fmt.Errorf("connection already %s before the change", state)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := change(); err != nil {
		return 0, err
	}
	out := <-done
	if out.err != nil {
		return 0, out.err
	}
	if out.res.At.Before(start) {
		return 0, fmt.Errorf("connection already %s before the change", state)
	}
	return float64(out.res.At.Sub(start).Microseconds()) / 1000, nil
}

// compiledPolicies reads the policy count of an agent status: the agent's
// API nests it under "policy", the published annotation has it on top.
func compiledPolicies(s map[string]any) int {
	if p, ok := s["policy"].(map[string]any); ok {
		if n, ok := p["policies"].(float64); ok {
			return int(n)
		}
	}
	n, _ := s["policies"].(float64)
	return int(n)
}

func sortedUnique(xs []int) []int {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
