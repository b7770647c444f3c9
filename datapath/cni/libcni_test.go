package cni

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestLibcni drives the plugin through libcni, as the lab's node role (and
// containerd/CRI-O) do: VERSION, ADD, CHECK, STATUS, GC and DEL of a conflist.
// libcni runs from a thread in the node namespace, so the plugin inherits it.
func TestLibcni(t *testing.T) {
	l := newLab(t)
	plugin := l.conf
	list, err := libcni.NetworkConfFromBytes(mustJSON(t, map[string]any{
		"cniVersion": "1.1.0", "name": "cnilab", "plugins": []any{plugin}}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(l.plugin)}, t.TempDir(), nil)
	podNS, otherNS := newNetns(t, "pod"), newNetns(t, "pod")
	rt := &libcni.RuntimeConf{ContainerID: "lib1", NetNS: podNS, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-lib1"}, {"K8S_POD_UID", "uid-lib1"}}}
	ctx := context.Background()

	var res types.Result
	err = inNetns(l.nodeNS, func() error {
		if _, err := cfg.ValidateNetworkList(ctx, list); err != nil {
			return err
		}
		if err := cfg.GetStatusNetworkList(ctx, list); err != nil {
			return err
		}
		if res, err = cfg.AddNetworkList(ctx, list, rt); err != nil {
			return err
		}
		return cfg.CheckNetworkList(ctx, list, rt)
	})
	if err != nil {
		t.Fatalf("libcni: %v", err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	l.checkWired("lib1", podNS, r, "")

	l.add("other", otherNS) // not in libcni's cache: only the plugin's GC can find it
	err = inNetns(l.nodeNS, func() error {
		valid := []types.GCAttachment{{ContainerID: "lib1", IfName: "eth0"}}
		if err := cfg.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
			return err
		}
		return cfg.CheckNetworkList(ctx, list, rt)
	})
	if err != nil {
		t.Fatalf("libcni GC: %v", err)
	}
	if _, err := nlAt(t, l.nodeNS).LinkByName(HostVethName("other", "eth0")); err == nil {
		t.Fatal("GC through libcni left the stale attachment's veth")
	}
	if err := inNetns(l.nodeNS, func() error { return cfg.DelNetworkList(ctx, list, rt) }); err != nil {
		t.Fatalf("libcni DEL: %v", err)
	}
	l.checkGone("lib1", podNS)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
