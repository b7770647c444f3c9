package noderole

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	libcni "github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"

	"github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/probe"
)

// sandbox is what the node role made for one pod; it is stored on disk so a
// restarted node role finds and cleans up what it made before.
type sandbox struct {
	UID         string    `json:"uid"`
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	ContainerID string    `json:"containerID"`
	Netns       string    `json:"netns,omitempty"` // empty for hostNetwork pods
	IPs         []string  `json:"ips"`
	ProbePID    int       `json:"probePID,omitempty"`
	Started     time.Time `json:"started"`
}

func (s *sandbox) netnsPath() string {
	if s.Netns == "" {
		return ""
	}
	return netns.Path(s.Netns)
}

const loopbackConf = `{"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]}`

// setup creates the pod's network and probe server.
func (m *podManager) setup(ctx context.Context, pod *corev1.Pod) (*sandbox, error) {
	sb := &sandbox{UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
		ContainerID: "cnilab-" + string(pod.UID), Started: time.Now()}
	if pod.Spec.HostNetwork {
		sb.IPs = []string{m.cfg.NodeIP}
	} else {
		sb.Netns = m.cfg.PodNetnsPrefix + string(pod.UID)
		if err := netns.Create(sb.Netns); err != nil {
			return nil, err
		}
		ips, err := m.cniAdd(ctx, sb)
		if err != nil {
			m.cniDel(ctx, sb)
			_ = netns.Delete(sb.Netns)
			return nil, err
		}
		sb.IPs = ips
	}
	pid, err := m.startProbe(pod, sb)
	if err != nil {
		m.teardown(ctx, sb)
		return nil, err
	}
	sb.ProbePID = pid
	if err := m.save(sb); err != nil {
		m.teardown(ctx, sb)
		return nil, err
	}
	return sb, nil
}

func (m *podManager) networkList() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(m.cfg.CNIConfDir, []string{".conflist"})
	if err != nil {
		return nil, fmt.Errorf("read CNI config dir %s: %w", m.cfg.CNIConfDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CNI configuration in %s: network not ready", m.cfg.CNIConfDir)
	}
	sort.Strings(files)
	list, err := libcni.NetworkConfFromFile(files[0])
	if err != nil {
		return nil, fmt.Errorf("load CNI config %s: %w", files[0], err)
	}
	return list, nil
}

func (m *podManager) runtimeConf(sb *sandbox, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: sb.ContainerID,
		NetNS:       sb.netnsPath(),
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", sb.Namespace},
			{"K8S_POD_NAME", sb.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", sb.ContainerID},
			{"K8S_POD_UID", sb.UID},
		},
	}
}

func (m *podManager) cniAdd(ctx context.Context, sb *sandbox) ([]string, error) {
	lo, err := libcni.NetworkConfFromBytes([]byte(loopbackConf))
	if err != nil {
		return nil, fmt.Errorf("loopback config: %w", err)
	}
	if _, err := m.cni.AddNetworkList(ctx, lo, m.runtimeConf(sb, "lo")); err != nil {
		return nil, fmt.Errorf("CNI ADD loopback for %s/%s: %w", sb.Namespace, sb.Name, err)
	}
	list, err := m.networkList()
	if err != nil {
		return nil, err
	}
	res, err := m.cni.AddNetworkList(ctx, list, m.runtimeConf(sb, "eth0"))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD %s for %s/%s: %w", list.Name, sb.Namespace, sb.Name, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD %s for %s/%s: result: %w", list.Name, sb.Namespace, sb.Name, err)
	}
	var ips []string
	for _, ip := range r.IPs {
		ips = append(ips, ip.Address.IP.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("CNI ADD %s for %s/%s returned no IP", list.Name, sb.Namespace, sb.Name)
	}
	return ips, nil
}

func (m *podManager) cniDel(ctx context.Context, sb *sandbox) {
	if sb.Netns == "" {
		return
	}
	rt := m.runtimeConf(sb, "eth0")
	if !netns.Exists(sb.Netns) {
		rt.NetNS = "" // the spec: DEL with no netns still releases IPAM
	}
	if list, err := m.networkList(); err == nil {
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			m.log.Warn("CNI DEL", "pod", sb.Namespace+"/"+sb.Name, "err", err)
		}
	}
	if lo, err := libcni.NetworkConfFromBytes([]byte(loopbackConf)); err == nil {
		_ = m.cni.DelNetworkList(ctx, lo, m.runtimeConf(sb, "lo"))
	}
}

// teardown undoes setup; every step tolerates what is already gone.
func (m *podManager) teardown(ctx context.Context, sb *sandbox) {
	if sb.ProbePID > 0 {
		stopProcess(sb.ProbePID)
	}
	m.cniDel(ctx, sb)
	if sb.Netns != "" {
		if err := netns.Delete(sb.Netns); err != nil {
			m.log.Warn("delete pod netns", "netns", sb.Netns, "err", err)
		}
	}
	_ = os.Remove(filepath.Join(sandboxDir(m.cfg), sb.UID+".ready"))
	_ = os.Remove(filepath.Join(sandboxDir(m.cfg), sb.UID+".probe.log"))
	if err := os.Remove(m.recordPath(sb.UID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("remove sandbox record", "err", err)
	}
}

// startProbe runs cnilab-probe serve for the pod's container ports, in the
// pod's namespace, in its own session so it outlives a node role restart.
func (m *podManager) startProbe(pod *corev1.Pod, sb *sandbox) (int, error) {
	ports := map[corev1.Protocol][]string{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto == corev1.ProtocolSCTP && !probe.SCTPSupported() {
				m.log.Warn("kernel has no SCTP: not serving port", "pod", sb.Namespace+"/"+sb.Name, "port", p.ContainerPort)
				continue
			}
			ports[proto] = append(ports[proto], strconv.Itoa(int(p.ContainerPort)))
		}
	}
	ready := filepath.Join(sandboxDir(m.cfg), sb.UID+".ready")
	_ = os.Remove(ready)
	args := []string{"serve", "--name", pod.Name, "--ready-file", ready}
	if pod.Spec.HostNetwork {
		args[2] = m.cfg.NodeName
	}
	for proto, flag := range map[corev1.Protocol]string{corev1.ProtocolTCP: "--tcp", corev1.ProtocolUDP: "--udp", corev1.ProtocolSCTP: "--sctp"} {
		if len(ports[proto]) > 0 {
			args = append(args, flag, strings.Join(ports[proto], ","))
		}
	}
	if len(ports) == 0 {
		return 0, nil
	}
	cmd, err := m.commandIn(sb.Netns, m.cfg.ProbeBinary, args...)
	if err != nil {
		return 0, err
	}
	logPath := filepath.Join(sandboxDir(m.cfg), sb.UID+".probe.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("probe log: %w", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start probe server for %s/%s: %w", sb.Namespace, sb.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Like a readiness probe: the pod is Ready once its ports listen.
	deadline := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return cmd.Process.Pid, nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return 0, fmt.Errorf("probe server for %s/%s exited: %s", sb.Namespace, sb.Name, strings.TrimSpace(string(b)))
		case <-deadline:
			stopProcess(cmd.Process.Pid)
			return 0, fmt.Errorf("probe server for %s/%s did not open its ports within 10s", sb.Namespace, sb.Name)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func stopProcess(pid int) {
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 40; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func (m *podManager) recordPath(uid string) string {
	return filepath.Join(sandboxDir(m.cfg), uid+".json")
}

func (m *podManager) save(sb *sandbox) error {
	b, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	tmp := m.recordPath(sb.UID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save sandbox record: %w", err)
	}
	return os.Rename(tmp, m.recordPath(sb.UID))
}

func (m *podManager) loadAll() (map[string]*sandbox, error) {
	out := map[string]*sandbox{}
	entries, err := os.ReadDir(sandboxDir(m.cfg))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		return nil, fmt.Errorf("read sandbox records: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sandboxDir(m.cfg), e.Name()))
		if err != nil {
			continue
		}
		var sb sandbox
		if json.Unmarshal(b, &sb) == nil && sb.UID != "" {
			out[sb.UID] = &sb
		}
	}
	return out, nil
}
