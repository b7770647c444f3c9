package images

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/manifests"
)

// Dirs are where the catalog's inputs are.
type Dirs struct {
	Bin    string // _output/bin: the lab's binaries (make build)
	Tools  string // _output/tools/bin: third-party binaries (make tools)
	CNIBin string // _output/tools/cni/bin: the reference CNI plugins (make tools)
}

// The versions of the upstream images the lab stands in for, and so the
// names kubelets and manifests ask for: Kubernetes v1.37.2
// (tools/kubernetes), its e2e framework's agnhost and pause
// (test/utils/image/manifest.go), kubeadm's CoreDNS
// (cmd/kubeadm/app/constants), flannel's release (tools/flannel).
const (
	KubernetesVersion = "v1.37.2"
	AgnhostVersion    = "2.66.1"
	PauseVersion      = "3.10.2"
	CoreDNSVersion    = "v1.14.6"
	FlannelVersion    = "v0.28.10"
)

// The upstream references.
const (
	AgnhostImage   = "registry.k8s.io/e2e-test-images/agnhost:" + AgnhostVersion
	PauseImage     = "registry.k8s.io/pause:" + PauseVersion
	KubeProxyImage = "registry.k8s.io/kube-proxy:" + KubernetesVersion
	CoreDNSImage   = "registry.k8s.io/coredns/coredns:" + CoreDNSVersion
	// FlannelDockerHubImage is where upstream also publishes the flannel
	// image the manifests name (manifests.DefaultFlannelImage, on ghcr.io).
	FlannelDockerHubImage = "docker.io/flannel/flannel:" + FlannelVersion
)

// root is the user of the images that run as root, said explicitly.
const root = "0:0"

// Catalog is every image the lab uses, with its inputs in d.
func Catalog(d Dirs) []Spec {
	return []Spec{
		{Name: "cnilab", Reference: manifests.DefaultImage, User: root,
			Entrypoint: []string{"/usr/local/bin/cnilab-agent"},
			Files: []File{built(d.Bin, "cnilab-agent", "/usr/local/bin/", "make build"),
				built(d.Bin, "cnilab-cni", "/usr/local/bin/", "make build")}},
		{Name: "cnilab-probe", Reference: manifests.DefaultProbeImage, User: root,
			Entrypoint: []string{"/usr/local/bin/cnilab-probe"},
			Files:      []File{built(d.Bin, "cnilab-probe", "/usr/local/bin/", "make build")}},
		agnhost(d),
		// As upstream's: the pause process needs no privilege.
		{Name: "pause", Reference: PauseImage, User: "65535:65535", Entrypoint: []string{"/pause"},
			Files: []File{built(d.Bin, "cnilab-pause", "/pause", "make build")}},
		{Name: "kube-proxy", Reference: KubeProxyImage, User: root,
			Entrypoint: []string{"/usr/local/bin/kube-proxy"},
			Files:      append(iptablesLinks(), built(d.Tools, "kube-proxy", "/usr/local/bin/", "make tools")),
			Host:       append(iptables(), HostPath{Path: "/usr/sbin/conntrack", Package: "conntrack", Optional: true})},
		coredns(d),
		flannel(d),
	}
}

// built is the binary name of dir, which make makes, at the path at in the
// image (at ending in / is a directory: the same name there).
func built(dir, name, at, make string) File {
	if strings.HasSuffix(at, "/") {
		at += name
	}
	return File{Path: at, Source: filepath.Join(dir, name), Make: make}
}

// agnhost stands in for the e2e framework's agnhost: the binary, and the
// files of upstream's image that its network subcommands use (netexec's
// upload directory, the agnhost-2 link of the entrypoint tests, the user and
// group of the supplemental-groups test). Left out: upstream's alpine
// userland (sh, curl, nc, dig, ss, iperf, socat), CoreDNS 1.6.2, porter's
// TLS key pair and the fake registry's content.
func agnhost(d Dirs) Spec {
	return Spec{Name: "agnhost", Reference: AgnhostImage, User: root, WorkingDir: "/",
		Entrypoint:   []string{"/agnhost"},
		Cmd:          []string{"pause"},
		ExposedPorts: []string{"80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"},
		Files: []File{
			built(d.Tools, "agnhost", "/", "make tools"),
			{Path: "/agnhost-2", Link: "agnhost"},
			{Path: "/uploads", Dir: true},
			{Path: "/tmp", Dir: true, Mode: fs.ModeSticky | 0o777},
			{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
				"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/sbin/nologin\n")},
			{Path: "/etc/group", Data: []byte("root:x:0:root\nuser-defined-in-image:x:1000:\n" +
				"group-defined-in-image:x:50000:user-defined-in-image\n")},
			{Path: "/etc/nsswitch.conf", Data: []byte("hosts: files dns\n")},
		}}
}

// coredns is as upstream's: a non-root user, and the binary allowed to
// bind port 53 by a file capability.
func coredns(d Dirs) Spec {
	bin := built(d.Tools, "coredns", "/", "make tools")
	bin.Xattrs = map[string]string{"security.capability": capability(10)} // CAP_NET_BIND_SERVICE
	return Spec{Name: "coredns", Reference: CoreDNSImage, User: "65532:65532",
		Entrypoint:   []string{"/coredns"},
		ExposedPorts: []string{"53/tcp", "53/udp"},
		Files:        []File{bin}}
}

// flannel is flanneld where upstream's image has it, iptables for its
// masquerading and forwarding rules, and the reference CNI plugins that the
// lab's flannel baseline delegates to, for an init container to copy.
func flannel(d Dirs) Spec {
	files := append(iptablesLinks(), built(d.Tools, "flanneld", "/opt/bin/", "make tools"))
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		files = append(files, built(d.CNIBin, p, "/opt/cni/bin/", "make tools"))
	}
	return Spec{Name: "flannel", Reference: manifests.DefaultFlannelImage, Aliases: []string{FlannelDockerHubImage},
		User: root, Entrypoint: []string{"/opt/bin/flanneld"}, Files: files, Host: iptables()}
}

// iptables is Debian's iptables with the nf_tables backend: the multi-call
// binary and the extensions it loads (libxt_*.so for -m and -j); their
// shared libraries come with them.
func iptables() []HostPath {
	return []HostPath{
		{Path: "/usr/sbin/xtables-nft-multi", Package: "iptables"},
		{Path: "/usr/lib/x86_64-linux-gnu/xtables", Package: "iptables"},
	}
}

// iptablesLinks are the names kube-proxy and flanneld run, all the nft
// backend (the multi-call binary acts by the name it is run as).
func iptablesLinks() []File {
	var out []File
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore", "-nft", "-nft-save", "-nft-restore"} {
			out = append(out, File{Path: "/usr/sbin/" + family + suffix, Link: "xtables-nft-multi"})
		}
	}
	return out
}

// capability is a security.capability attribute (struct vfs_cap_data,
// revision 2) that gives the capability numbered c to the file's process,
// permitted and effective, as `setcap cap_...=+ep` does.
func capability(c uint) string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|0x1) // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
	binary.LittleEndian.PutUint32(b[4:], 1<<c)           // permitted, capabilities 0-31
	return string(b)
}

// Names lists the catalog's short names, in build order.
func Names() []string {
	var out []string
	for _, s := range Catalog(Dirs{}) {
		out = append(out, s.Name)
	}
	return out
}

// Select returns the specs named in only, in catalog order; all of them
// when only is empty.
func Select(specs []Spec, only []string) ([]Spec, error) {
	if len(only) == 0 {
		return specs, nil
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, n := range only {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("images: no image %q (images: %s)", n, strings.Join(names, ", "))
		}
	}
	return slices.DeleteFunc(slices.Clone(specs), func(s Spec) bool { return !slices.Contains(only, s.Name) }), nil
}
