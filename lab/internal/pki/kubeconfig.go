package pki

import (
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig for one user of one cluster with the
// credentials embedded, so the file stands alone (mode 0600).
func WriteKubeconfig(path, clusterName, server string, caPEM []byte, user string, kp KeyPair) error {
	cfg := kubeconfig(clusterName, server, caPEM, user, kp)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// Kubeconfig returns the kubeconfig WriteKubeconfig would write.
func Kubeconfig(clusterName, server string, caPEM []byte, user string, kp KeyPair) ([]byte, error) {
	b, err := clientcmd.Write(*kubeconfig(clusterName, server, caPEM, user, kp))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user, err)
	}
	return b, nil
}

func kubeconfig(clusterName, server string, caPEM []byte, user string, kp KeyPair) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	ctxName := user + "@" + clusterName
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	cfg.CurrentContext = ctxName
	return cfg
}
