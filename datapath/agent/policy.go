package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/cnilab/cnilab/datapath/flows"
	"github.com/cnilab/cnilab/datapath/policy"
)

// policyEngine recompiles NetworkPolicy into the datapath whenever a pod,
// namespace, node or policy changes, and writes only the difference.
type policyEngine struct {
	a       *Agent
	pods    corelisters.PodLister
	nss     corelisters.NamespaceLister
	nodes   corelisters.NodeLister
	nps     netlisters.NetworkPolicyLister
	kick    chan struct{}
	alloc   *policy.Allocator
	applied policy.Result
	stats   policyStats
}

type policyStats struct {
	Policies     int       `json:"policies"`
	Identities   int       `json:"identities"`
	Compiles     int       `json:"compiles"`
	LastCompile  time.Time `json:"lastCompile"`
	LastMillis   float64   `json:"lastCompileMillis"`
	LastError    string    `json:"lastError,omitempty"`
	InvalidCount int       `json:"invalidPolicies"`
}

func (a *Agent) startPolicy(ctx context.Context) (*policyEngine, error) {
	f := informers.NewSharedInformerFactory(a.client, 0)
	e := &policyEngine{
		a: a, kick: make(chan struct{}, 1), alloc: policy.NewAllocator(),
		pods: f.Core().V1().Pods().Lister(), nss: f.Core().V1().Namespaces().Lister(),
		nodes: f.Core().V1().Nodes().Lister(), nps: f.Networking().V1().NetworkPolicies().Lister(),
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { e.trigger() }, UpdateFunc: func(any, any) { e.trigger() }, DeleteFunc: func(any) { e.trigger() },
	}
	syncs := []cache.InformerSynced{}
	for _, inf := range []cache.SharedIndexInformer{
		f.Core().V1().Pods().Informer(), f.Core().V1().Namespaces().Informer(),
		f.Core().V1().Nodes().Informer(), f.Networking().V1().NetworkPolicies().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("agent: policy informer: %w", err)
		}
		syncs = append(syncs, inf.HasSynced)
	}
	e.restore()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return nil, errors.New("agent: policy informers did not sync")
	}
	if err := e.sync(); err != nil {
		return nil, err
	}
	e.a.spawn(func() { e.loop(ctx) })
	return e, nil
}

func (e *policyEngine) trigger() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// loop recompiles after changes, coalescing bursts.
func (e *policyEngine) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
		time.Sleep(10 * time.Millisecond)
		if err := e.sync(); err != nil {
			e.a.log.Warn("policy sync", "err", err)
			time.Sleep(500 * time.Millisecond)
			e.trigger()
		}
	}
}

// sync compiles the cluster's state and writes the difference to what the
// datapath holds. It runs under the agent lock so endpoint changes and
// policy writes never interleave.
func (e *policyEngine) sync() error {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	start := time.Now()
	state, err := e.state()
	if err != nil {
		return err
	}
	res, err := policy.Compile(state, policy.Local{NodeName: e.a.cfg.NodeName}, e.alloc)
	var perr *policy.PolicyError
	switch {
	case errors.As(err, &perr):
		// Invalid policies compile fail-closed; the rest apply as usual.
		e.stats.LastError = err.Error()
		e.stats.InvalidCount = len(policy.PolicyErrors(err))
	case err != nil:
		e.stats.LastError = err.Error()
		return err
	default:
		e.stats.LastError, e.stats.InvalidCount = "", 0
	}
	delta := policy.Diff(e.applied, res)
	if err := delta.Apply(&mapWriter{a: e.a}); err != nil {
		// The maps are between two states: forget what we think they hold
		// so the next pass rewrites everything.
		e.applied = policy.Result{}
		return fmt.Errorf("write policy: %w", err)
	}
	e.applied = res
	e.publish(state, res)
	e.stats.Compiles++
	e.stats.Policies = len(state.Policies)
	e.stats.Identities = len(res.Identities)
	e.stats.LastCompile = time.Now()
	e.stats.LastMillis = float64(time.Since(start).Microseconds()) / 1000
	e.persist()
	return nil
}

// state reads the cluster from the informers; local pods take their IP
// from the endpoint registry when their status has none yet, so a pod is
// under policy before its first packet.
func (e *policyEngine) state() (policy.State, error) {
	var s policy.State
	nss, err := e.nss.List(labels.Everything())
	if err != nil {
		return s, err
	}
	for _, ns := range nss {
		s.Namespaces = append(s.Namespaces, policy.Namespace{Name: ns.Name, Labels: ns.Labels})
	}
	local := map[string]netip.Addr{}
	for _, r := range e.a.endpoints {
		local[r.PodNamespace+"/"+r.PodName] = r.ip
	}
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return s, err
	}
	for _, p := range pods {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil && p.Spec.NodeName != e.a.cfg.NodeName {
			continue
		}
		ip, _ := netip.ParseAddr(p.Status.PodIP)
		if p.Spec.NodeName == e.a.cfg.NodeName {
			if lip, ok := local[p.Namespace+"/"+p.Name]; ok {
				ip = lip
			}
		}
		if !ip.IsValid() {
			continue
		}
		s.Pods = append(s.Pods, policy.Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, IP: ip, Node: p.Spec.NodeName, Ports: containerPorts(p)})
	}
	nodes, err := e.nodes.List(labels.Everything())
	if err != nil {
		return s, err
	}
	for _, n := range nodes {
		var ips []netip.Addr
		for _, addr := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(addr.Address); err == nil && addr.Type == corev1.NodeInternalIP {
				ips = append(ips, ip)
			}
		}
		// The pods' gateway (first address of the PodCIDR) is the node's
		// too: traffic the node sends its pods may come from it.
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			ips = append(ips, p.Masked().Addr().Next())
		}
		s.Nodes = append(s.Nodes, policy.Node{Name: n.Name, IPs: ips})
	}
	nps, err := e.nps.List(labels.Everything())
	if err != nil {
		return s, err
	}
	for _, np := range nps {
		s.Policies = append(s.Policies, *np.DeepCopy())
	}
	return s, nil
}

func containerPorts(p *corev1.Pod) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range p.Spec.Containers {
		out = append(out, c.Ports...)
	}
	return out
}

// persisted is what survives an agent restart: what the maps hold, and the
// identity numbering behind it, so the first diff after a restart is exact.
type persisted struct {
	Applied policy.Result   `json:"applied"`
	Alloc   json.RawMessage `json:"allocator"`
}

func (e *policyEngine) stateFile() string { return filepath.Join(e.a.cfg.StateDir, "policy.json") }

func (e *policyEngine) persist() {
	alloc, err := e.alloc.MarshalJSON()
	if err != nil {
		return
	}
	b, err := json.Marshal(persisted{Applied: e.applied, Alloc: alloc})
	if err != nil {
		return
	}
	tmp := e.stateFile() + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, e.stateFile())
	}
}

func (e *policyEngine) restore() {
	b, err := os.ReadFile(e.stateFile())
	if err != nil {
		return
	}
	var p persisted
	if json.Unmarshal(b, &p) != nil {
		return
	}
	alloc := policy.NewAllocator()
	if alloc.UnmarshalJSON(p.Alloc) != nil {
		return
	}
	e.alloc, e.applied = alloc, p.Applied
}

// mapWriter writes policy deltas into the datapath.
type mapWriter struct{ a *Agent }

func (w *mapWriter) AddKey(k policy.PolicyKey) error {
	return w.a.dp.AddPolicyKey(k.Endpoint, k.Identity, k.Port, k.Proto, k.Egress)
}
func (w *mapWriter) RemoveKey(k policy.PolicyKey) error {
	return w.a.dp.RemovePolicyKey(k.Endpoint, k.Identity, k.Port, k.Proto, k.Egress)
}
func (w *mapWriter) UpsertIPCache(p netip.Prefix, id uint32) error {
	if !p.Addr().Is4() {
		return nil // the datapath is IPv4-only
	}
	return w.a.dp.UpsertIdentity(p, id)
}
func (w *mapWriter) DeleteIPCache(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return nil
	}
	return w.a.dp.DeleteIdentity(p)
}

// SetEnforcement rewrites the endpoint's entry with the flag changed; an
// endpoint the agent does not know (yet) takes its flags when registered.
func (w *mapWriter) SetEnforcement(ip netip.Addr, egress, on bool) error {
	for _, r := range w.a.endpoints {
		if r.ip != ip {
			continue
		}
		if egress {
			r.policyEgress = on
		} else {
			r.policyIngress = on
		}
		return w.a.dp.UpsertEndpoint(r.ip, r.entry())
	}
	return nil
}

// publish hands the compiled view to flow enrichment and the gauges.
func (e *policyEngine) publish(s policy.State, res policy.Result) {
	o := e.a.observe
	if o == nil {
		return
	}
	byIP := make(map[netip.Addr]flows.Endpoint, len(s.Pods))
	for _, p := range s.Pods {
		byIP[p.IP] = flows.Endpoint{Namespace: p.Namespace, PodName: p.Name, Labels: p.Labels, Node: p.Node, Identity: res.Lookup(p.IP)}
	}
	o.setEndpoints(byIP)
	o.gauges.Endpoints.Set(float64(len(e.a.endpoints)))
	o.gauges.Policies.Set(float64(len(s.Policies)))
	o.gauges.Identities.Set(float64(len(res.Identities)))
}
