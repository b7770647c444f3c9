// Package kube is what the lab's Kubernetes-only providers (kind, existing)
// share: loading a kubeconfig, listing and waiting for nodes, running
// commands in pods through the API server's exec (and on nodes through a
// hostNetwork pod), server-side applying manifests and waiting for
// DaemonSets. It talks to the cluster through client-go only, so it works on
// any cluster whose kubelets answer exec.
package kube

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels that mark what cnilab created in a cluster it does not own.
const (
	// OwnedLabel is set to "true" on every namespace and object cnilab
	// created; nothing without it is ever deleted.
	OwnedLabel = "cnilab.io/owned"
	// LabLabel names the lab an object belongs to.
	LabLabel = "cnilab.io/lab"
	// ProviderLabel names the provider that made the object.
	ProviderLabel = "cnilab.io/provider"
)

// OwnerLabels are the labels of an object made for lab name by provider.
func OwnerLabels(provider, lab string) map[string]string {
	return map[string]string{OwnedLabel: "true", LabLabel: lab, ProviderLabel: provider}
}

// Kubeconfig is a loaded kubeconfig file.
type Kubeconfig struct {
	// Path is the file it was read from.
	Path string
	// Cluster is the name of the current context's cluster entry.
	Cluster string
	// Server is that cluster's API server URL.
	Server string
	// REST is a client configuration for it.
	REST *rest.Config
}

// ResolveKubeconfig picks the kubeconfig file to use: explicit if set, else
// $CNILAB_KUBECONFIG, else $KUBECONFIG (which must then name one file), else
// ~/.kube/config.
func ResolveKubeconfig(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv("CNILAB_KUBECONFIG"); p != "" {
		return p, nil
	}
	if p := os.Getenv("KUBECONFIG"); p != "" {
		if strings.Contains(p, string(os.PathListSeparator)) {
			return "", fmt.Errorf("KUBECONFIG=%s names several files: give one with --kubeconfig (or CNILAB_KUBECONFIG)", p)
		}
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no kubeconfig given (--kubeconfig, CNILAB_KUBECONFIG or KUBECONFIG) and no home directory: %w", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// LoadKubeconfig reads a kubeconfig file and makes a client configuration of
// its current context.
func LoadKubeconfig(path string) (*Kubeconfig, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	ctxName := raw.CurrentContext
	kctx := raw.Contexts[ctxName]
	if kctx == nil {
		return nil, fmt.Errorf("kubeconfig %s: current context %q is not defined", path, ctxName)
	}
	cl := raw.Clusters[kctx.Cluster]
	if cl == nil {
		return nil, fmt.Errorf("kubeconfig %s: context %q names cluster %q, which is not defined", path, ctxName, kctx.Cluster)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	rc.QPS, rc.Burst = 50, 100
	return &Kubeconfig{Path: path, Cluster: kctx.Cluster, Server: cl.Server, REST: rc}, nil
}

// ServerPort splits the kubeconfig's API server URL into host and port
// ("443" when the URL names none).
func (k *Kubeconfig) ServerPort() (host, port string, err error) {
	u, err := url.Parse(k.Server)
	if err != nil {
		return "", "", fmt.Errorf("kubeconfig %s: server %q: %w", k.Path, k.Server, err)
	}
	port = u.Port()
	if port == "" {
		port = "443"
	}
	return u.Hostname(), port, nil
}

// Client makes a clientset for the kubeconfig.
func (k *Kubeconfig) Client() (kubernetes.Interface, error) {
	cs, err := kubernetes.NewForConfig(k.REST)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: client: %w", k.Path, err)
	}
	return cs, nil
}

// WriteKubeconfig writes kubeconfig bytes to path (mode 0600), making its
// directory.
func WriteKubeconfig(path string, data []byte) error {
	if _, err := clientcmd.Load(data); err != nil {
		return fmt.Errorf("kubeconfig for %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

// DeleteListed removes every lab list names with del, and reports every
// failure: the DeleteAll of providers whose labs live in a cluster.
func DeleteListed(list func() ([]string, error), del func(string) error) error {
	names, err := list()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, del(n))
	}
	return errors.Join(errs...)
}
