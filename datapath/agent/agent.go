// Package agent is the cnilab node agent: one per node, it loads the eBPF
// datapath, learns the cluster's nodes through client-go informers, keeps the
// node's routes, tunnel and datapath maps in step with them, accepts pod
// endpoints from the CNI plugin on a unix socket, and reports health and
// status. Its state lives in pinned maps and files, so a restart does not
// disturb traffic.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/flows"
)

// conntrackGCEvery is how often expired connections leave the CT map.
const conntrackGCEvery = 10 * time.Second

// Routing modes between nodes.
const (
	RoutingNative = "native"
	RoutingVXLAN  = "vxlan"
)

// Config is the agent's configuration.
type Config struct {
	NodeName       string
	Kubeconfig     string
	StateDir       string // endpoint records
	BPFFSDir       string // pinned maps and links
	Socket         string // the node-local API (mode 0600)
	RoutingMode    string // native or vxlan
	UnderlayDevice string // the node's device on the underlay, e.g. eth0
	// ServiceCIDR is the cluster's Service network (the API server's
	// --service-cluster-ip-range): pods' packets to it are left to the
	// node's stack (kube-proxy) and their policy checked after translation.
	// The zero Prefix: none.
	ServiceCIDR    netip.Prefix
	CNIConfDir     string // where the CNI configuration is written once ready ("" = not written)
	CNIConfName    string // file name, default 05-cnilab.conflist
	IPAMDataDir    string // the plugin's IPAM state, put in the CNI configuration
	MTU            int    // of the underlay; pods get it less the tunnel overhead
	MetricsAddress string // TCP address of /metrics and /healthz inside the node ("" = only on the socket)
	Version        string // the agent's build version, published in its status (default "dev")
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("agent config: node name is empty")
	case c.StateDir == "" || c.BPFFSDir == "" || c.Socket == "":
		return errors.New("agent config: state dir, bpffs dir and socket are required")
	case c.RoutingMode != RoutingNative && c.RoutingMode != RoutingVXLAN:
		return fmt.Errorf("agent config: unknown routing mode %q: want native or vxlan", c.RoutingMode)
	case c.UnderlayDevice == "":
		return errors.New("agent config: underlay device is empty")
	case c.ServiceCIDR.IsValid() && (!c.ServiceCIDR.Addr().Is4() || c.ServiceCIDR.Bits() < 8):
		return fmt.Errorf("agent config: service CIDR %s: want an IPv4 network of /8 or longer, such as 10.96.0.0/12", c.ServiceCIDR)
	}
	return nil
}

// Agent is a running agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
	dp     Datapath

	kernel string // uname -r

	// statusKick asks the status publisher to write now (readiness changed).
	statusKick chan struct{}
	// statusMinInterval and statusRefresh pace the publisher (the api
	// package's AgentStatusMinInterval and AgentStatusRefresh; tests shorten them).
	statusMinInterval, statusRefresh time.Duration

	mu        sync.Mutex
	ready     bool
	phase     string // what a not-ready agent is doing, for its published status
	started   time.Time
	podCIDR   netip.Prefix
	gateway   netip.Addr
	mtu       int
	endpoints map[string]*endpointRecord // by container ID
	remotes   map[string]remoteNode      // by node name
	policy    *policyEngine
	observe   *observer
	underlay  int // ifindex
	overlay   int // vxlan ifindex, 0 in native mode

	// workers are the goroutines that use the datapath (policy, nodes,
	// flow events, the metrics listener); Run waits for them before it
	// closes the datapath.
	workers sync.WaitGroup
	// endpointWrites is held shared by each endpoint add and delete of
	// the API (beginEndpointWrite); endpointWritesClosed turns them away
	// once Run stops.
	endpointWrites       sync.RWMutex
	endpointWritesClosed bool
}

// spawn runs f in a goroutine Run waits for before closing the datapath.
func (a *Agent) spawn(f func()) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		f()
	}()
}

// New builds an agent and its Kubernetes client; Run starts it.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.UserAgent = "cnilab-agent/" + cfg.NodeName
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("agent: client: %w", err)
	}
	return newAgent(cfg, log, client)
}

// newAgent builds an agent around a client (tests pass a fake one).
func newAgent(cfg Config, log *slog.Logger, client kubernetes.Interface) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CNIConfName == "" {
		cfg.CNIConfName = "05-cnilab.conflist"
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	a := &Agent{cfg: cfg, log: log, client: client, started: time.Now(), kernel: kernelRelease(),
		statusKick: make(chan struct{}, 1), statusMinInterval: api.AgentStatusMinInterval, statusRefresh: api.AgentStatusRefresh,
		phase: "starting", endpoints: map[string]*endpointRecord{}, remotes: map[string]remoteNode{}}
	obs, err := newObserver()
	if err != nil {
		return nil, err
	}
	a.observe = obs
	return a, nil
}

// inClusterConfig is rest.InClusterConfig; tests replace it.
var inClusterConfig = rest.InClusterConfig

// restConfig reads the kubeconfig, or without one the in-cluster
// configuration (the pod's ServiceAccount token and the KUBERNETES_SERVICE_*
// environment). It calls rest.InClusterConfig itself rather than
// clientcmd.BuildConfigFromFlags("", ""), which does the same but logs
// klog warnings and, when not in a cluster, ends in an unrelated error
// about KUBERNETES_MASTER.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("agent: kubeconfig %s: %w", kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := inClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("agent: no Kubernetes client configuration: --kubeconfig is empty and the in-cluster configuration is unusable (%w); "+
			"run the agent in a pod with a ServiceAccount or pass --kubeconfig", err)
	}
	return rc, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// setPhase records what a not-ready agent is doing; the publisher picks it
// up on its next tick.
func (a *Agent) setPhase(p string) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
}

// setReady changes readiness and, when it changed, has the status published
// at once.
func (a *Agent) setReady(ready bool) {
	a.mu.Lock()
	changed := a.ready != ready
	a.ready = ready
	a.mu.Unlock()
	if changed {
		select {
		case a.statusKick <- struct{}{}:
		default:
		}
	}
}

// Run brings the node's datapath up, serves the API, and keeps reconciling
// until ctx ends. It never tears the datapath down: pods keep forwarding
// while the agent is away.
func (a *Agent) Run(ctx context.Context, load func(Config, int) (Datapath, error)) (err error) {
	// Listeners, informers and loops end with Run, on an error too.
	ctx, endRun := context.WithCancel(ctx)
	defer endRun()
	for _, d := range []string{a.cfg.StateDir, filepath.Dir(a.cfg.Socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	// Flows kept by the previous agent are there before anyone can ask.
	a.loadFlows()
	ln, err := listenUnix(a.cfg.Socket)
	if err != nil {
		return err
	}
	srv := a.server()
	go func() { _ = srv.Serve(ln) }()
	var stopServing sync.Once
	stopAPI := func() {
		stopServing.Do(func() {
			// Waits for the requests in progress (an endpoint's add or delete).
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			_ = os.Remove(a.cfg.Socket)
		})
	}
	defer stopAPI()
	// /healthz (503 until ready) and /metrics for the kubelet's probes and
	// Prometheus, from the start: readiness is the agent's to say.
	if a.cfg.MetricsAddress != "" {
		if _, err := a.serveTCP(ctx, a.cfg.MetricsAddress); err != nil {
			return err
		}
	}
	a.setPhase("waiting for the node's podCIDR")
	// Not ended by ctx: the last write must see the agent marked stopped.
	pctx, stopPublishing := context.WithCancel(context.WithoutCancel(ctx))
	published := make(chan struct{})
	go func() { defer close(published); a.publishStatus(pctx) }()
	// The publisher's last write (not ready, "stopped" and why) happens
	// before Run returns.
	defer func() {
		phase := "stopped"
		if err != nil && ctx.Err() == nil {
			phase += ": " + err.Error()
		}
		a.mu.Lock()
		a.ready, a.phase = false, phase
		a.mu.Unlock()
		stopPublishing()
		<-published
	}()

	if err := a.waitOwnNode(ctx); err != nil {
		return err
	}
	a.setPhase("setting up the node and loading the datapath")
	if err := a.setupNode(); err != nil {
		return err
	}
	dp, err := load(a.cfg, a.overlay)
	if err != nil {
		return fmt.Errorf("agent: load datapath: %w", err)
	}
	// The datapath closes last: the loops and the API requests that write
	// it end first, so that none is cut between two maps (Close also waits
	// for a write in progress, should a request outlive the shutdown).
	defer func() {
		endRun()
		stopAPI()
		a.closeEndpointWrites() // those that outlived the API's shutdown
		a.workers.Wait()
		// Every event read is in the store now: the next agent serves them.
		a.saveFlows()
		if err := dp.Close(); err != nil {
			a.log.Warn("close datapath", "err", err)
		}
	}()
	a.mu.Lock()
	a.dp = dp
	a.mu.Unlock()
	a.log.Info("datapath loaded", "attach", dp.AttachMode(), "features", dp.Features())
	a.observe.registry.MustRegister(flows.NewCollector(dp, a.observe.store))
	if err := dp.AttachNetdev(a.underlay); err != nil {
		return fmt.Errorf("agent: attach to %s: %w", a.cfg.UnderlayDevice, err)
	}
	if a.overlay != 0 {
		if err := dp.AttachOverlay(a.overlay); err != nil {
			return fmt.Errorf("agent: attach to the vxlan device: %w", err)
		}
	}
	a.setPhase("restoring endpoints and compiling policy")
	if err := a.restoreEndpoints(); err != nil {
		return err
	}
	engine, err := a.startPolicy(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.policy = engine
	a.mu.Unlock()
	// Events wait in the pinned ring while the agent is away; read them
	// once the first compilation can name their pods.
	a.spawn(func() { a.observe.run(ctx, a, dp) })
	a.setPhase("syncing nodes")
	synced := make(chan struct{})
	a.spawn(func() { a.watchNodes(ctx, synced) })
	select {
	case <-synced:
	case <-ctx.Done():
		return nil
	}
	if err := a.writeCNIConfig(); err != nil {
		return err
	}
	a.setReady(true)
	a.log.Info("agent ready", "node", a.cfg.NodeName, "podCIDR", a.podCIDR, "routing", a.cfg.RoutingMode)
	gc := time.NewTicker(conntrackGCEvery)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-gc.C:
			if n, err := dp.GCConntrack(time.Now()); err != nil {
				a.log.Warn("conntrack gc", "err", err)
			} else if n > 0 {
				a.log.Debug("conntrack gc", "expired", n)
			}
			a.pruneVethOwners(dp)
		}
	}
}

func listenUnix(path string) (net.Listener, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: chmod %s: %w", path, err)
	}
	return ln, nil
}
