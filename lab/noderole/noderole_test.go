package noderole

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRunningStatusIsWhatAKubeletWrites(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "x"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
	sb := &sandbox{UID: "u", IPs: []string{"10.244.1.5"}, ContainerID: "cnilab-u", Started: time.Now()}
	st := runningStatus(pod, sb, "172.30.0.11")
	if st.Phase != corev1.PodRunning || st.PodIP != "10.244.1.5" || len(st.PodIPs) != 1 || st.HostIP != "172.30.0.11" {
		t.Fatalf("status %+v", st)
	}
	pod.Status = st
	if !podStatusCurrent(pod, sb) {
		t.Error("the status just written is not seen as current")
	}
	if len(st.ContainerStatuses) != 1 || !st.ContainerStatuses[0].Ready || st.ContainerStatuses[0].State.Running == nil {
		t.Errorf("container status %+v", st.ContainerStatuses)
	}
	sb.IPs = []string{"10.244.1.6"}
	if podStatusCurrent(pod, sb) {
		t.Error("a status with another IP is seen as current")
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "cnilab-probe")
	if err := os.WriteFile(probe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := Config{NodeName: "n", NodeIP: "1.2.3.4", Kubeconfig: "k", CNIConfDir: "d", CNIBinDirs: []string{"b"}, StateDir: "s", PodNetnsPrefix: "p", ProbeBinary: probe}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for field, mutate := range map[string]func(*Config){
		"nodeName":     func(c *Config) { c.NodeName = "" },
		"nodeIP":       func(c *Config) { c.NodeIP = "" },
		"kubeconfig":   func(c *Config) { c.Kubeconfig = "" },
		"cniConfDir":   func(c *Config) { c.CNIBinDirs = nil },
		"stateDir":     func(c *Config) { c.StateDir = "" },
		"probe binary": func(c *Config) { c.ProbeBinary = "/nonexistent" },
	} {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: want an error naming it, got %v", field, err)
		}
	}
}
