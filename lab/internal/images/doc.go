// Package images builds the lab's container images without Docker. Every
// image is FROM scratch (the empty image) with one layer assembled in memory
// from files on this machine: owner 0:0, directories 0755, binaries 0755,
// other files 0644, every time the Unix epoch, so the same inputs give the
// same digest. The configuration says linux/amd64, the entrypoint, the user
// and PATH. Each image is written as a `docker save` tarball that
// `ctr -n k8s.io images import` and `docker load` name by its reference, and
// images.json lists the images with their digests and files. An image is
// rebuilt only when its input hash changes: the content, path and mode of
// every file, the names and the configuration.
//
// The images (Catalog):
//
//   - cnilab (manifests.DefaultImage): /usr/local/bin/cnilab-agent, the
//     entrypoint, and /usr/local/bin/cnilab-cni, whose `install DIR` mode the
//     DaemonSet's init container runs to copy the plugin to the host (no
//     shell in the image). images/cnilab/Dockerfile builds the same.
//   - cnilab-probe (manifests.DefaultProbeImage): /usr/local/bin/cnilab-probe,
//     as images/cnilab-probe/Dockerfile.
//   - agnhost, registry.k8s.io/e2e-test-images/agnhost:2.66.1, the name the
//     e2e framework of Kubernetes v1.37.2 asks for: /agnhost (entrypoint,
//     cmd "pause") from make tools, the /agnhost-2 link (entrypoint tests),
//     /uploads (netexec's upload handler), /tmp, /etc/passwd and /etc/group
//     with upstream's user-defined-in-image (1000) and
//     group-defined-in-image (50000), /etc/nsswitch.conf ("hosts: files
//     dns"). netexec, connect, serve-hostname and the dns subcommands need
//     nothing else (/etc/hosts and /etc/resolv.conf come from the kubelet).
//     Left out, from upstream's alpine image: sh, curl, nc, dig, ss, iperf,
//     socat, CoreDNS 1.6.2, porter's TLS key pair and the fake registry's
//     content, so specs that exec a shell or those tools in agnhost pods
//     fail.
//   - pause, registry.k8s.io/pause:3.10.2 (kubelet's and kubeadm's sandbox
//     image): /pause from _output/bin/cnilab-pause, user 65535:65535 as
//     upstream's.
//   - kube-proxy, registry.k8s.io/kube-proxy:v1.37.2:
//     /usr/local/bin/kube-proxy, and iptables for its iptables mode (below),
//     with conntrack(8) and its libraries when this machine has it (kube-proxy
//     itself clears conntrack entries over netlink). No nft(8): the nftables
//     mode is not served.
//   - coredns, registry.k8s.io/coredns/coredns:v1.14.6 (kubeadm v1.37.2's
//     CoreDNSVersion): /coredns, user 65532:65532 and the file capability
//     cap_net_bind_service=+ep (a security.capability PAX record) as
//     upstream's, which lets it bind port 53. No CA bundle: the lab has no
//     upstream resolver over TLS to check.
//   - flannel, manifests.DefaultFlannelImage (ghcr.io/flannel-io/flannel)
//     and its Docker Hub name docker.io/flannel/flannel: /opt/bin/flanneld
//     (entrypoint), iptables for its masquerade and forward rules, and the
//     reference CNI plugins bridge, host-local, loopback and portmap in
//     /opt/cni/bin for an init container to copy. Not in it: flannel's own
//     CNI plugin and a shell with cp, which manifests/charts/flannel's init
//     containers run, and the writer of the bridge conflist the lab derives
//     from subnet.env (lab/internal/cni.FlannelConflist).
//
// iptables is Debian's, nf_tables backend, taken from this machine:
// /usr/sbin/xtables-nft-multi, the names iptables, iptables-save,
// iptables-restore, ip6tables... (and their -nft forms) linked to it, since
// it acts by the name it runs as, and every extension in
// /usr/lib/x86_64-linux-gnu/xtables, which it loads with dlopen for -m and -j
// and so no ELF dependency list names. The shared libraries come from the
// rule every image follows: each ELF file brings its program interpreter and
// its DT_NEEDED libraries, found as Debian's loader finds them without a
// cache (DT_RUNPATH, then /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu,
// /lib, /usr/lib), with the symbolic links on the way (/lib -> usr/lib,
// /lib64 -> usr/lib64, libmnl.so.0 -> libmnl.so.0.2.0), so that the same
// paths resolve the same way in the image. For iptables that is libc, libm,
// libmnl, libnftnl, libxtables and ld-linux-x86-64.so.2; the legacy backend
// (xtables-legacy-multi) is left out.
package images
