package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/cni"
	"github.com/cnilab/cnilab/lab/internal/controlplane"
	"github.com/cnilab/cnilab/lab/internal/images"
	"github.com/cnilab/cnilab/lab/internal/kube"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	"github.com/cnilab/cnilab/lab/internal/realnode"
	"github.com/cnilab/cnilab/lab/internal/sandbox"
	"github.com/cnilab/cnilab/manifests"
)

// realNodeBinaries are the tools a real node runs.
var realNodeBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "kubelet"}

// preflightReal names the first node tool missing from the tools directory,
// or says that no images were built.
func preflightReal(cfg config.Config) error {
	for _, b := range realNodeBinaries {
		if st, err := os.Stat(filepath.Join(cfg.ToolsDir, b)); err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("real nodes need %s in %s: run 'make tools'", b, cfg.ToolsDir)
		}
	}
	dir := imagesDir(cfg)
	if recs, err := images.Records(dir); err != nil || len(recs) == 0 {
		return fmt.Errorf("real nodes need the lab's images in %s: run 'make images' (%v)", dir, err)
	}
	return nil
}

// imagesDir is where `make images` writes the images nodes import.
func imagesDir(cfg config.Config) string { return filepath.Join(filepath.Dir(cfg.BinDir), "images") }

// realNode is the configuration of one real node.
func (b *bringUp) realNode(n cni.Node) (realnode.Node, error) {
	dns := manifests.DefaultClusterDNS(b.cfg.ServiceCIDR)
	tools, err := filepath.Abs(b.cfg.ToolsDir)
	if err != nil {
		return realnode.Node{}, err
	}
	_, v1err := os.Stat("/sys/fs/cgroup/memory")
	return realnode.Node{Name: n.Name, IP: n.IP, ToolsDir: tools, ClusterDNS: dns, CgroupV1: v1err == nil}, nil
}

// startRealNodes writes every node's containerd and kubelet configuration
// and credentials, and starts its sandbox in the node's network namespace.
func (b *bringUp) startRealNodes(ctx context.Context) error {
	for i, n := range b.backend.Nodes(b.cfg) {
		rn, err := b.realNode(n)
		if err != nil {
			return err
		}
		if err := b.writeRealNodeFiles(n, rn); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := installNodePlugins(b.cfg.CNIBinDir, filepath.Join(n.Dir, strings.TrimPrefix(realnode.CNIBinDir, "/"))); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := nodeSysctls(b.cfg.NodeNetns(i + 1)); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		spec := realnode.SandboxSpec(rn, b.cfg.Name, n.Dir, n.LogDir)
		specPath := filepath.Join(n.Dir, "sandbox.json")
		data, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(specPath, data, 0o644); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		cmd, err := labns.Command(b.cfg.NodeNetns(i+1), filepath.Join(b.cfg.BinDir, "cnilab"), "lab", "node-sandbox", "--spec", specPath)
		if err != nil {
			return err
		}
		if _, err := proc.Start(proc.Spec{Lab: b.cfg.Name, Name: "sandbox-" + n.Name, Cmd: cmd,
			LogDir: n.LogDir, PidDir: filepath.Join(b.cfg.Dir(), "run")}); err != nil {
			return err
		}
	}
	return b.waitRealNodes(ctx)
}

// nodePlugins are the reference CNI plugins a node's OS ships (Debian's
// containernetworking-plugins, kind's node image): containerd's CRI sets up
// every pod's lo with loopback.
var nodePlugins = []string{"loopback", "bridge", "host-local", "portmap"}

// installNodePlugins copies the node's reference CNI plugins from src into
// its CNI binary directory dst.
func installNodePlugins(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, p := range nodePlugins {
		data, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			return fmt.Errorf("CNI plugin %s: %w (run 'make tools')", p, err)
		}
		if err := os.WriteFile(filepath.Join(dst, p), data, 0o755); err != nil {
			return fmt.Errorf("CNI plugin %s: %w", p, err)
		}
	}
	return nil
}

// nodeSysctls sets what a Kubernetes node's OS sets (kubeadm's preflight
// requires it; containers cannot: their /proc/sys is read-only): IPv4
// forwarding in the node's network namespace.
func nodeSysctls(netns string) error {
	return labns.Do(netns, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("sysctl net.ipv4.ip_forward: %w", err)
		}
		return nil
	})
}

// writeRealNodeFiles writes, below the node's own directory, what its
// sandbox binds in: containerd's and the kubelet's configuration, the
// kubelet's kubeconfig (system:node:NAME, from the lab's CA) and the CA
// that verifies clients, and a machine-id of its own.
func (b *bringUp) writeRealNodeFiles(n cni.Node, rn realnode.Node) error {
	ctrd, err := realnode.ContainerdTOML(rn)
	if err != nil {
		return err
	}
	kubelet, err := realnode.KubeletYAML(rn)
	if err != nil {
		return err
	}
	kc, err := b.creds.KubeconfigData("cnilab-"+b.cfg.Name, b.creds.InternalServer, "system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{realnode.ContainerdConfig, ctrd, 0o644},
		{realnode.KubeletConfig, kubelet, 0o644},
		{realnode.KubeletKubeconfig, kc, 0o600},
		{realnode.CACert, b.creds.CA.CertPEM, 0o644},
		{"/etc/machine-id", []byte(hex.EncodeToString(id) + "\n"), 0o444},
	}
	for _, f := range files {
		p := filepath.Join(n.Dir, strings.TrimPrefix(f.path, "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// realNodeStartTimeout bounds how long a node's containerd may take to
// serve its socket.
const realNodeStartTimeout = 90 * time.Second

// waitRealNodes waits until every node's containerd serves its socket; a
// sandbox or containerd that does not come up fails naming the node, the
// component and the tail of its log.
func (b *bringUp) waitRealNodes(ctx context.Context) error {
	for _, n := range b.backend.Nodes(b.cfg) {
		sock := filepath.Join(n.Dir, strings.TrimPrefix(realnode.ContainerdSocket, "/"))
		var failed string
		err := poll(ctx, realNodeStartTimeout, func() bool {
			if _, err := os.Stat(sock); err == nil {
				return true
			}
			if !b.sandboxAlive(n) {
				failed = "sandbox-" + n.Name
				return true
			}
			return false
		})
		if failed == "" && err == nil {
			continue
		}
		if failed != "" {
			log := filepath.Join(n.LogDir, failed+".log")
			return fmt.Errorf("node %s: the node sandbox exited; last lines of %s:\n%s", n.Name, log, tail(log, 15))
		}
		log := filepath.Join(n.LogDir, "containerd-"+n.Name+".log")
		return fmt.Errorf("node %s: containerd did not serve %s within %s: %v; last lines of %s:\n%s", n.Name, realnode.ContainerdSocket, realNodeStartTimeout, err, log, tail(log, 15))
	}
	return nil
}

// sandboxAlive says whether a node's sandbox launcher still runs.
func (b *bringUp) sandboxAlive(n cni.Node) bool {
	pid, err := proc.ReadPid(filepath.Join(b.cfg.Dir(), "run"), "sandbox-"+n.Name)
	return err == nil && proc.Alive(pid)
}

// tail is the last n lines of a file, indented, or why it cannot be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	return "    " + strings.Join(LastLines(data, n), "\n    ")
}

// LastLines is the last n lines of a log's contents.
func LastLines(data []byte, n int) []string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// removeCgroups kills whatever is left in the cgroup path (below every
// hierarchy's root) and removes it with every cgroup below it: what real
// nodes' sandboxes, kubelets and containers made. A lab without real nodes
// has none, which is not an error.
func removeCgroups(path string) error {
	hs, err := sandbox.Hierarchies("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	return sandbox.Cgroup{Hierarchies: hs, Path: path}.Remove(20 * time.Second)
}

// hasBoundingCap says whether capability c is in this process's bounding
// set (/proc/self/status CapBnd), which every container's is a subset of.
func hasBoundingCap(c int) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || mask&(1<<uint(c)) != 0
		}
	}
	return true
}

// pinnedLabel keeps an image from the kubelet's image GC (containerd's CRI
// never removes a pinned image).
const pinnedLabel = "io.cri-containerd.pinned=pinned"

// importImages imports every image `make images` built into every node's
// containerd (namespace k8s.io, where the CRI looks) and pins it; nodes
// import in parallel.
func (b *bringUp) importImages(ctx context.Context) error {
	dir := imagesDir(b.cfg)
	recs, err := images.Records(dir)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("no images in %s: run 'make images'", dir)
	}
	nodes := b.backend.Nodes(b.cfg)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = b.importInto(ctx, n, dir, recs) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// importInto imports and pins the images on one node.
func (b *bringUp) importInto(ctx context.Context, n cni.Node, dir string, recs []images.Record) error {
	sock := filepath.Join(n.Dir, strings.TrimPrefix(realnode.ContainerdSocket, "/"))
	ctr := func(args ...string) error {
		argv := append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)
		out, err := exec.CommandContext(ctx, filepath.Join(b.cfg.ToolsDir, "ctr"), argv...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("node %s: ctr %s: %w: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	for _, r := range recs {
		if err := ctr("images", "import", "--snapshotter", "overlayfs", filepath.Join(dir, r.Tarball)); err != nil {
			return err
		}
		for _, ref := range append([]string{r.Reference}, r.Aliases...) {
			if err := ctr("images", "label", normalizeRef(ref), pinnedLabel); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(b.out, "   %s: %d images imported and pinned\n", n.Name, len(recs))
	return nil
}

// normalizeRef is a reference as containerd names it: docker.io/ and
// library/ made explicit.
func normalizeRef(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !found {
			ref = "library/" + ref
		}
		ref = "docker.io/" + ref
	}
	return ref
}

// apiServer is the API server's address on the lab's underlay.
func (b *bringUp) apiServer() string {
	return net.JoinHostPort(b.cfg.ControlPlaneIP().String(), strconv.Itoa(controlplane.APIPort))
}

// applyManifests renders the manifests o chooses and applies them to the lab.
func (b *bringUp) applyManifests(ctx context.Context, o manifests.Options) error {
	objs, err := manifests.Render(o)
	if err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", b.cluster.Kubeconfig())
	if err != nil {
		return err
	}
	return kube.ApplyWith(ctx, rc, objs, false)
}

// deployKubeProxy deploys kube-proxy as kubeadm does (manifests/kube-proxy:
// a DaemonSet reaching the API server by address) and waits until it has
// written its rules on every node.
func (b *bringUp) deployKubeProxy(ctx context.Context) error {
	o := manifests.Options{Sets: []manifests.Set{manifests.KubeProxy}, ClusterCIDR: b.cfg.ClusterCIDR, APIServer: b.apiServer()}
	if err := b.applyManifests(ctx, o); err != nil {
		return fmt.Errorf("apply the kube-proxy manifests: %w", err)
	}
	return b.waitKubeProxy(ctx, func(n cni.Node) string { return containerLogTail(n, "kube-system", "kube-proxy-", "kube-proxy") })
}

// routePodCIDRs gives the control plane's namespace a route to every
// node's PodCIDR through that node, as the control-plane host of a cluster
// has: pods reach the API server (CoreDNS, through the kubernetes Service)
// by its own address, and its replies must find them. The routes stay
// inside the lab's address ranges.
func (b *bringUp) routePodCIDRs(ctx context.Context) error {
	h, err := handleIn(b.cfg.UnderlayNetns())
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := h.LinkByName(underlayBridge)
	if err != nil {
		return fmt.Errorf("underlay bridge: %w", err)
	}
	for i := 1; i <= b.cfg.Nodes; i++ {
		n, err := b.client.CoreV1().Nodes().Get(ctx, b.cfg.NodeName(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil {
			return fmt.Errorf("node %s: PodCIDR %q: %w", n.Name, n.Spec.PodCIDR, err)
		}
		if err := h.RouteReplace(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: cidr, Gw: b.cfg.NodeIP(i)}); err != nil {
			return fmt.Errorf("route %s via %s: %w", cidr, b.cfg.NodeIP(i), err)
		}
	}
	return nil
}

// deployCoreDNS deploys CoreDNS and the kube-dns Service (manifests set
// coredns) at the kubelets' clusterDNS address and waits until every
// replica is ready.
func (b *bringUp) deployCoreDNS(ctx context.Context) error {
	o := manifests.Options{Sets: []manifests.Set{manifests.CoreDNS}, ServiceCIDR: b.cfg.ServiceCIDR}
	if b.cfg.NoKubeProxy {
		o.APIServer = b.apiServer() // no kubernetes Service without kube-proxy
	}
	if err := b.applyManifests(ctx, o); err != nil {
		return fmt.Errorf("apply the CoreDNS manifests: %w", err)
	}
	var why string
	err := poll(ctx, 2*time.Minute, func() bool {
		d, err := b.client.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		why = fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, want)
		return d.Status.ReadyReplicas == want
	})
	if err != nil {
		n := b.backend.Nodes(b.cfg)[0]
		return fmt.Errorf("CoreDNS: %w: %s; on %s: %s", err, why, n.Name, containerLogTail(n, "kube-system", "coredns-", "coredns"))
	}
	return nil
}

// installCNIReal deploys the lab's CNI as a cluster runs it: the cnilab
// DaemonSet from manifests/ (the agents reach the API server directly:
// kube-proxy, if any, comes later), then waits for every node's CNI
// configuration.
func (b *bringUp) installCNIReal(ctx context.Context) error {
	o := manifests.Options{Sets: []manifests.Set{manifests.Cnilab}, ClusterCIDR: b.cfg.ClusterCIDR, ServiceCIDR: b.cfg.ServiceCIDR,
		APIServer: b.apiServer()}
	switch b.cfg.CNI {
	case "cnilab":
		o.RoutingMode = "native"
	case "cnilab-vxlan":
		o.RoutingMode = "vxlan"
	case "flannel":
		return b.installFlannelReal(ctx)
	default:
		return fmt.Errorf("CNI %s on real nodes is not supported", b.cfg.CNI)
	}
	if !hasBoundingCap(unix.CAP_SYS_RESOURCE) {
		// A sandbox's runtime cannot grant what this machine withholds.
		o.NoMemlockCapability = true
		fmt.Fprintln(b.out, "   this machine's capability bounding set lacks CAP_SYS_RESOURCE: the agents run without it (kernels since 5.11 do not need it)")
	}
	if err := b.applyManifests(ctx, o); err != nil {
		return fmt.Errorf("apply the cnilab manifests: %w", err)
	}
	for _, n := range b.backend.Nodes(b.cfg) {
		conf := filepath.Join(n.ConfDir, "05-cnilab.conflist")
		if err := poll(ctx, 3*time.Minute, func() bool { _, err := os.Stat(conf); return err == nil }); err != nil {
			return fmt.Errorf("cnilab on %s: no CNI configuration after 3m0s: %w; %s", n.Name, err, containerLogTail(n, "kube-system", "cnilab-agent-", "agent"))
		}
	}
	return nil
}

// installFlannelReal deploys flannel as its DaemonSet (manifests/charts/flannel,
// flanneld reaching the API server through the kubernetes Service, that is
// kube-proxy). Flannel's CNI plugin is not built here, so instead of its
// init containers the lab writes each node's conflist from the subnet.env
// flanneld writes there: the bridge, host-local and portmap delegation the
// plugin would make (cni.FlannelConflist), as on light nodes.
func (b *bringUp) installFlannelReal(ctx context.Context) error {
	o := manifests.Options{Sets: []manifests.Set{manifests.Flannel}, ClusterCIDR: b.cfg.ClusterCIDR, ServiceCIDR: b.cfg.ServiceCIDR,
		FlannelIface: "eth0", FlannelNoCNIPlugin: true}
	if err := b.applyManifests(ctx, o); err != nil {
		return fmt.Errorf("apply the flannel manifests: %w", err)
	}
	for _, n := range b.backend.Nodes(b.cfg) {
		path := filepath.Join(n.Dir, "run", "flannel", "subnet.env")
		var senv cni.SubnetEnv
		var perr error
		err := poll(ctx, 3*time.Minute, func() bool {
			data, err := os.ReadFile(path)
			if err != nil {
				perr = err
				return false
			}
			senv, perr = cni.ParseSubnetEnv(string(data))
			return perr == nil
		})
		if err != nil {
			return fmt.Errorf("flannel on %s: no subnet.env: %w (%v); %s", n.Name, err, perr, containerLogTail(n, "kube-flannel", "kube-flannel-ds-", "kube-flannel"))
		}
		conf, err := cni.FlannelConflist(senv, "/var/lib/cni/networks")
		if err != nil {
			return fmt.Errorf("flannel on %s: %w", n.Name, err)
		}
		if err := os.WriteFile(filepath.Join(n.ConfDir, "10-flannel.conflist"), conf, 0o644); err != nil {
			return fmt.Errorf("flannel on %s: %w", n.Name, err)
		}
	}
	return nil
}

// containerLogTail is the end of the newest log of a container whose pod
// name starts with podPrefix on node n (the kubelet's /var/log/pods), or
// where to look when there is none.
func containerLogTail(n cni.Node, namespace, podPrefix, container string) string {
	logs, _ := filepath.Glob(filepath.Join(n.Dir, "var", "log", "pods", namespace+"_"+podPrefix+"*", container, "*.log"))
	if len(logs) == 0 {
		return "no log of container " + container + " yet; see the kubelet's log " + filepath.Join(n.LogDir, "kubelet-"+n.Name+".log")
	}
	newest := logs[len(logs)-1]
	for _, l := range logs {
		if fileTime(l).After(fileTime(newest)) {
			newest = l
		}
	}
	return "last lines of " + container + "'s log:\n" + tail(newest, 15)
}

func fileTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
