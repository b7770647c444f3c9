package images

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/manifests"
)

// repoRoot is the repository, from this package's directory.
const repoRoot = "../../.."

// TestVersions checks the upstream names against their sources: the tool
// modules of this repository and, when it is in the module cache, the
// Kubernetes source they build.
func TestVersions(t *testing.T) {
	contains := func(file, want string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Skipf("%v", err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not say %q", file, want)
		}
	}
	contains(filepath.Join(repoRoot, "tools/kubernetes/go.mod"), "k8s.io/kubernetes "+KubernetesVersion+"\n")
	contains(filepath.Join(repoRoot, "tools/flannel/go.mod"), "github.com/flannel-io/flannel "+FlannelVersion+"\n")
	if manifests.DefaultFlannelImage != "ghcr.io/flannel-io/flannel:"+FlannelVersion {
		t.Errorf("manifests.DefaultFlannelImage %s; want flannel %s", manifests.DefaultFlannelImage, FlannelVersion)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	k8s := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", "kubernetes@"+KubernetesVersion)
	if _, err := os.Stat(k8s); err != nil {
		t.Skipf("Kubernetes source not in the module cache: %v", err)
	}
	contains(filepath.Join(k8s, "test/utils/image/manifest.go"), `configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "`+AgnhostVersion+`"}`)
	contains(filepath.Join(k8s, "test/utils/image/manifest.go"), `configs[Pause] = Config{list.GcRegistry, "pause", "`+PauseVersion+`"}`)
	contains(filepath.Join(k8s, "cmd/kubeadm/app/constants/constants.go"), `CoreDNSVersion = "`+CoreDNSVersion+`"`)
	contains(filepath.Join(k8s, "test/images/agnhost/Dockerfile"), `ENTRYPOINT ["/agnhost"]`)
}

// finalStage is what the last stage of a Dockerfile sets: the files it
// copies, its entrypoint, user and PATH.
type finalStage struct {
	files            []string
	entrypoint       []string
	user, pathEnv    string
	hasUser, hasPath bool
}

func readFinalStage(t *testing.T, dockerfile string) finalStage {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st finalStage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cmd, args, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch strings.ToUpper(cmd) {
		case "FROM":
			st = finalStage{}
		case "COPY":
			st.files = append(st.files, copyDestinations(args)...)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(args), &st.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT %s: %v", dockerfile, args, err)
			}
		case "USER":
			st.user, st.hasUser = args, true
		case "ENV":
			st.pathEnv, st.hasPath = strings.CutPrefix(args, "PATH=")
		}
	}
	return st
}

// copyDestinations are the paths `COPY [--flags] SRC... DEST` creates.
func copyDestinations(args string) []string {
	var fields []string
	for _, f := range strings.Fields(args) {
		if !strings.HasPrefix(f, "--") {
			fields = append(fields, f)
		}
	}
	dest := fields[len(fields)-1]
	if !strings.HasSuffix(dest, "/") {
		return []string{dest}
	}
	var out []string
	for _, src := range fields[:len(fields)-1] {
		out = append(out, dest+path.Base(src))
	}
	return out
}

// TestDockerfiles: images/*/Dockerfile and the catalog make the same image
// (Docker is for those who have it; make images uses the catalog).
func TestDockerfiles(t *testing.T) {
	for _, s := range Catalog(Dirs{}) {
		df := filepath.Join(repoRoot, "images", s.Name, "Dockerfile")
		if _, err := os.Stat(df); os.IsNotExist(err) {
			continue
		}
		st := readFinalStage(t, df)
		var files []string
		for _, f := range s.Files {
			files = append(files, f.Path)
		}
		slices.Sort(files)
		slices.Sort(st.files)
		if !slices.Equal(files, st.files) || !slices.Equal(s.Entrypoint, st.entrypoint) ||
			(st.hasUser && st.user != s.User) || (st.hasPath && st.pathEnv != DefaultPath) {
			t.Errorf("%s: files %v, entrypoint %v, user %q, PATH %q; the catalog says files %v, entrypoint %v, user %q, PATH %q",
				df, st.files, st.entrypoint, st.user, st.pathEnv, files, s.Entrypoint, s.User, DefaultPath)
		}
	}
}

func TestCatalog(t *testing.T) {
	names := Names()
	if !slices.Equal(names, []string{"cnilab", "cnilab-probe", "agnhost", "pause", "kube-proxy", "coredns", "flannel"}) {
		t.Errorf("images %v", names)
	}
	for _, s := range Catalog(Dirs{Bin: "/b", Tools: "/t", CNIBin: "/c"}) {
		if err := s.validate(); err != nil {
			t.Error(err)
		}
	}
	got, err := Select(Catalog(Dirs{}), []string{"flannel", "cnilab"})
	if err != nil || len(got) != 2 || got[0].Name != "cnilab" || got[1].Name != "flannel" {
		t.Errorf("select flannel,cnilab: %v, %v; want both, in catalog order", got, err)
	}
	if tags, err := got[1].tags(); err != nil || tags[0].String() != "ghcr.io/flannel-io/flannel:"+FlannelVersion ||
		tags[1].String() != FlannelDockerHubImage {
		t.Errorf("flannel names %v, %v", tags, err)
	}
}
