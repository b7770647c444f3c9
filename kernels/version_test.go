package kernels

import (
	"os/exec"
	"testing"
)

var versionCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.01", "1.1", 0},
	{"1.0", "1.0.1", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~", "1.0", -1},
	{"1.0a", "1.0+", -1},
	{"1.0a", "1.0", 1},
	{"1.0-1", "1.0-1.1", -1},
	{"1.0-2", "1.0-10", -1},
	{"1:0.1", "2.0", 1},
	{"0:2.0", "2.0", 0},
	{"2.0-1", "1:1.0-1", -1},
	{"6.1.192-2", "6.1.170-3", 1},
	{"6.1.170-3", "6.1.170-2", 1},
	{"6.12.117-1~deb12u1", "6.12.115-1~deb12u1", 1},
	{"6.12.117-1~deb12u1", "6.12.117-1", -1},
	{"6.12.9-1~bpo12+1", "6.12.10-1~bpo12+1", -1},
	{"5.10.0-35", "5.10.0-4", 1},
	{"linux-image-6.1.0-56-cloud-amd64", "linux-image-6.1.0-9-cloud-amd64", 1},
}

func TestCompareVersions(t *testing.T) {
	for _, c := range versionCases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestCompareVersionsDpkg checks the cases against dpkg itself where it runs.
func TestCompareVersionsDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed: nothing to compare with")
	}
	for _, c := range versionCases {
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[c.want]
		if err := exec.Command("dpkg", "--compare-versions", c.a, op, c.b).Run(); err != nil {
			t.Errorf("dpkg --compare-versions %s %s %s is false", c.a, op, c.b)
		}
	}
}
