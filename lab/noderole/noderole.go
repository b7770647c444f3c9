// Package noderole does, for networking, what the kubelet does on a node: it
// registers the Node and keeps it Ready and leased, watches the Pods the
// scheduler binds to it, gives each a network namespace wired by the node's
// CNI configuration through libcni (exactly as a container runtime calls it),
// runs a cnilab-probe server for the pod's container ports, writes the pod's
// IPs and readiness, and tears all of it down when the pod is deleted.
//
// It runs inside the node's network namespace (netns provider) or as a
// process of the node VM (qemu provider); every path it uses comes from Config.
package noderole

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is everything a node role needs; it is stored as JSON by the lab.
type Config struct {
	NodeName    string            `json:"nodeName"`
	NodeIP      string            `json:"nodeIP"`
	Kubeconfig  string            `json:"kubeconfig"`
	Labels      map[string]string `json:"labels,omitempty"`
	CNIConfDir  string            `json:"cniConfDir"`
	CNIBinDirs  []string          `json:"cniBinDirs"`
	CNICacheDir string            `json:"cniCacheDir"`
	StateDir    string            `json:"stateDir"`    // pod sandbox records
	ProbeBinary string            `json:"probeBinary"` // cnilab-probe
	// PodNetnsPrefix + pod UID names a pod's network namespace.
	PodNetnsPrefix string `json:"podNetnsPrefix"`
}

func (c Config) validate() error {
	switch {
	case c.NodeName == "":
		return fmt.Errorf("node role config: nodeName is empty")
	case c.NodeIP == "":
		return fmt.Errorf("node role config: nodeIP is empty")
	case c.Kubeconfig == "":
		return fmt.Errorf("node role config: kubeconfig is empty")
	case c.CNIConfDir == "" || len(c.CNIBinDirs) == 0:
		return fmt.Errorf("node role config: cniConfDir and cniBinDirs are required")
	case c.StateDir == "" || c.PodNetnsPrefix == "":
		return fmt.Errorf("node role config: stateDir and podNetnsPrefix are required")
	}
	if _, err := os.Stat(c.ProbeBinary); err != nil {
		return fmt.Errorf("node role config: probe binary: %w", err)
	}
	return nil
}

// Run runs the node role until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	for _, d := range []string{cfg.CNIConfDir, cfg.CNICacheDir, cfg.StateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("node role: %w", err)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("node role: enable ip_forward: %w", err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("node role: kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	rc.UserAgent = "cnilab-node-role/" + cfg.NodeName
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("node role: client: %w", err)
	}
	n := &node{cfg: cfg, client: client, log: log}
	if err := n.register(ctx); err != nil {
		return err
	}
	go n.heartbeat(ctx)
	p := newPodManager(cfg, client, log)
	return p.run(ctx)
}

func sandboxDir(cfg Config) string { return filepath.Join(cfg.StateDir, "pods") }

// retryUntil runs fn until it succeeds, ctx ends, or attempts run out.
func retryUntil(ctx context.Context, attempts int, every time.Duration, fn func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
	return err
}
