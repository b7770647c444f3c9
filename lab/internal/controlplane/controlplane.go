// Package controlplane runs a real Kubernetes control plane for a lab: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, inside one of the
// lab's network namespaces, with certificate authentication throughout.
package controlplane

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/pki"
	"github.com/cnilab/cnilab/lab/internal/proc"
)

// Config places the control plane.
type Config struct {
	Lab         string // lab name: tags processes, names the cluster
	Dir         string // state directory of the lab
	ToolsDir    string // kube-apiserver, kube-controller-manager, kube-scheduler, etcd
	Netns       string // namespace the control plane runs in
	Address     string // API server address inside the lab (on the underlay)
	ClusterCIDR string // pod network; nodes get /NodeMaskSize slices of it
	ServiceCIDR string
	NodeMask    int
}

// APIPort is the API server's port on the lab underlay.
const APIPort = 6443

// Binaries the control plane needs in ToolsDir.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Credentials are what the rest of the lab needs to talk to the API server.
type Credentials struct {
	CA *pki.CA
	// InternalServer is the API URL inside the lab.
	InternalServer string

	cfg   Config
	files *files
}

// KubeconfigFor writes a kubeconfig for a client identity (CN=user, O=groups)
// that reaches the API server at server.
func (c *Credentials) KubeconfigFor(path, cluster, server, user string, groups ...string) error {
	kp, err := c.CA.Issue(pki.Request{CommonName: user, Organization: groups, Client: true})
	if err != nil {
		return err
	}
	return pki.WriteKubeconfig(path, cluster, server, c.CA.CertPEM, user, kp)
}

// KubeconfigData returns a kubeconfig like KubeconfigFor's, as bytes.
func (c *Credentials) KubeconfigData(cluster, server, user string, groups ...string) ([]byte, error) {
	kp, err := c.CA.Issue(pki.Request{CommonName: user, Organization: groups, Client: true})
	if err != nil {
		return nil, err
	}
	return pki.Kubeconfig(cluster, server, c.CA.CertPEM, user, kp)
}

// CheckBinaries fails with a message naming the first missing binary.
func CheckBinaries(toolsDir string) error {
	for _, b := range Binaries {
		p := filepath.Join(toolsDir, b)
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not found in %s: run 'make tools'", b, toolsDir)
		}
	}
	return nil
}

// Start writes the PKI and starts etcd and kube-apiserver. It does not wait
// for them; callers wait through the API, then call StartControllers.
func Start(c Config) (*Credentials, error) {
	if err := CheckBinaries(c.ToolsDir); err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	f, err := writePKI(c, pkiDir)
	if err != nil {
		return nil, err
	}
	creds := &Credentials{CA: f.ca, InternalServer: "https://" + net.JoinHostPort(c.Address, strconv.Itoa(APIPort)), cfg: c, files: f}
	for _, comp := range []struct{ user, file string }{
		{"system:kube-controller-manager", "controller-manager.kubeconfig"},
		{"system:kube-scheduler", "scheduler.kubeconfig"},
	} {
		if err := creds.KubeconfigFor(filepath.Join(pkiDir, comp.file), c.Lab, creds.InternalServer, comp.user); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
	}
	return creds, startDaemons(c, daemons(c, f, pkiDir)[:2])
}

// StartControllers starts kube-controller-manager and kube-scheduler; they
// exit when the API server does not answer at start, so call it once it does.
func StartControllers(creds *Credentials) error {
	c := creds.cfg
	return startDaemons(c, daemons(c, creds.files, filepath.Join(c.Dir, "pki"))[2:])
}

func startDaemons(c Config, ds []daemon) error {
	for _, d := range ds {
		cmd, err := netns.Command(c.Netns, filepath.Join(c.ToolsDir, d.bin), d.args...)
		if err != nil {
			return err
		}
		if _, err := proc.Start(proc.Spec{Lab: c.Lab, Name: d.bin, Cmd: cmd, LogDir: filepath.Join(c.Dir, "logs"), PidDir: filepath.Join(c.Dir, "run")}); err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
	}
	return nil
}

type files struct {
	ca                        *pki.CA
	caPath, certPath, keyPath string
	saPrivPath, saPubPath     string
	etcdDir                   string
	// kubeletCert and kubeletKey are the API server's client certificate
	// toward kubelets (exec, logs, port-forward).
	kubeletCert, kubeletKey string
}

func writePKI(c Config, dir string) (*files, error) {
	ca, err := pki.NewCA("cnilab-" + c.Lab + "-ca")
	if err != nil {
		return nil, err
	}
	f := &files{ca: ca, caPath: filepath.Join(dir, "ca.crt"), etcdDir: filepath.Join(c.Dir, "etcd")}
	if err := os.WriteFile(f.caPath, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write ca: %w", err)
	}
	_, svcNet, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service cidr %q: %w", c.ServiceCIDR, err)
	}
	firstSvc := append(net.IP(nil), svcNet.IP.To4()...)
	firstSvc[3]++
	serving, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		IPs:        []net.IP{net.ParseIP(c.Address), net.ParseIP("127.0.0.1"), firstSvc},
		Server:     true,
	})
	if err != nil {
		return nil, err
	}
	if f.certPath, f.keyPath, err = serving.Write(dir, "apiserver"); err != nil {
		return nil, err
	}
	// As kubeadm does: the API server reaches kubelets as a member of
	// system:masters.
	kubeletClient, err := ca.Issue(pki.Request{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return nil, err
	}
	if f.kubeletCert, f.kubeletKey, err = kubeletClient.Write(dir, "apiserver-kubelet-client"); err != nil {
		return nil, err
	}
	priv, pub, err := pki.ServiceAccountKey()
	if err != nil {
		return nil, err
	}
	f.saPrivPath, f.saPubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(f.saPrivPath, priv, 0o600); err != nil {
		return nil, fmt.Errorf("write sa key: %w", err)
	}
	if err := os.WriteFile(f.saPubPath, pub, 0o644); err != nil {
		return nil, fmt.Errorf("write sa key: %w", err)
	}
	return f, nil
}

type daemon struct {
	bin  string
	args []string
}

func daemons(c Config, f *files, pkiDir string) []daemon {
	const etcdURL = "http://127.0.0.1:2379"
	return []daemon{
		{"etcd", []string{
			"--name=" + c.Lab, "--data-dir=" + f.etcdDir,
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
			"--initial-cluster=" + c.Lab + "=http://127.0.0.1:2380",
			"--log-level=warn",
		}},
		{"kube-apiserver", []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + c.Address, "--advertise-address=" + c.Address,
			"--secure-port=" + strconv.Itoa(APIPort),
			"--tls-cert-file=" + f.certPath, "--tls-private-key-file=" + f.keyPath,
			"--client-ca-file=" + f.caPath,
			"--kubelet-client-certificate=" + f.kubeletCert, "--kubelet-client-key=" + f.kubeletKey,
			"--kubelet-preferred-address-types=InternalIP",
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--service-cluster-ip-range=" + c.ServiceCIDR,
			"--service-account-key-file=" + f.saPubPath,
			"--service-account-signing-key-file=" + f.saPrivPath,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--allow-privileged=true",
			"--profiling=false",
			"--v=1",
		}},
		{"kube-controller-manager", []string{
			"--kubeconfig=" + filepath.Join(pkiDir, "controller-manager.kubeconfig"),
			"--authentication-kubeconfig=" + filepath.Join(pkiDir, "controller-manager.kubeconfig"),
			"--authorization-kubeconfig=" + filepath.Join(pkiDir, "controller-manager.kubeconfig"),
			"--bind-address=127.0.0.1",
			"--leader-elect=false",
			"--allocate-node-cidrs=true",
			"--cluster-cidr=" + c.ClusterCIDR,
			"--node-cidr-mask-size=" + strconv.Itoa(c.NodeMask),
			"--service-cluster-ip-range=" + c.ServiceCIDR,
			"--service-account-private-key-file=" + f.saPrivPath,
			"--root-ca-file=" + f.caPath,
			"--use-service-account-credentials=true",
			"--profiling=false",
			"--v=1",
		}},
		{"kube-scheduler", []string{
			"--kubeconfig=" + filepath.Join(pkiDir, "scheduler.kubeconfig"),
			"--authentication-kubeconfig=" + filepath.Join(pkiDir, "scheduler.kubeconfig"),
			"--authorization-kubeconfig=" + filepath.Join(pkiDir, "scheduler.kubeconfig"),
			"--bind-address=127.0.0.1",
			"--leader-elect=false",
			"--profiling=false",
			"--v=1",
		}},
	}
}

// Logs returns the log file of a control-plane binary.
func Logs(dir, bin string) string { return filepath.Join(dir, "logs", bin+".log") }
