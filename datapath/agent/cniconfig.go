package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CNIConfig is the conflist the agent writes for its node once it is ready,
// as Cilium's agent does: the node is network-ready only when cnilab is.
func CNIConfig(socket, ipamDataDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.1.0",
		"name":       "cnilab",
		"plugins": []any{map[string]any{
			"type":        "cnilab-cni",
			"agentSocket": socket,
			"ipamDataDir": ipamDataDir,
		}},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func (a *Agent) writeCNIConfig() error {
	if a.cfg.CNIConfDir == "" {
		return nil
	}
	b, err := CNIConfig(a.cfg.Socket, a.cfg.IPAMDataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.CNIConfDir, 0o755); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	p := filepath.Join(a.cfg.CNIConfDir, a.cfg.CNIConfName)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("agent: write CNI config: %w", err)
	}
	return os.Rename(p+".tmp", p)
}
