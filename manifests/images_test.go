package manifests_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/cnilab/cnilab/manifests"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined and its heredoc bodies (COPY <<EOF ... EOF) set aside.
type instruction struct {
	line     int
	cmd      string // upper case: FROM, COPY, RUN ...
	args     string
	heredocs []string
}

var heredocRE = regexp.MustCompile(`<<-?(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)`)

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []instruction
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		start := n
		for strings.HasSuffix(line, "\\") {
			cont, ok := next()
			if !ok {
				t.Fatalf("%s:%d: continuation at end of file", path, n)
			}
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(cont)
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		for _, m := range heredocRE.FindAllStringSubmatch(in.args, -1) {
			var body []string
			for {
				l, ok := next()
				if !ok {
					t.Fatalf("%s:%d: heredoc %s not closed", path, start, m[2])
				}
				if strings.TrimSpace(l) == m[2] {
					break
				}
				body = append(body, l)
			}
			in.heredocs = append(in.heredocs, strings.Join(body, "\n"))
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// copySources returns a COPY's sources from the build context: none when it
// copies from another stage (--from) or from a heredoc.
func copySources(args string) (sources []string, dest string) {
	var fields []string
	fromStage := false
	for _, f := range strings.Fields(args) {
		if strings.HasPrefix(f, "--") {
			fromStage = fromStage || strings.HasPrefix(f, "--from=")
			continue
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return nil, ""
	}
	dest = fields[len(fields)-1]
	if fromStage {
		return nil, dest
	}
	for _, s := range fields[:len(fields)-1] {
		if !strings.HasPrefix(s, "<<") {
			sources = append(sources, s)
		}
	}
	return sources, dest
}

var goBuildPkgRE = regexp.MustCompile(`(?:^|\s)\./(cmd/[A-Za-z0-9_./-]+)`)

func TestDockerfiles(t *testing.T) {
	root := ".."
	dockerfiles, err := filepath.Glob(filepath.Join(root, "images", "*", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dockerfiles) != 2 {
		t.Fatalf("Dockerfiles %v: want images/cnilab and images/cnilab-probe", dockerfiles)
	}
	built := map[string][]string{} // image dir -> cmd binaries
	installed := map[string][]string{}
	for _, df := range dockerfiles {
		image := filepath.Base(filepath.Dir(df))
		ins := parseDockerfile(t, df)
		var froms int
		for _, in := range ins {
			switch in.cmd {
			case "FROM":
				froms++
				ref := strings.Fields(in.args)[0]
				if ref != "scratch" && !strings.Contains(ref, "${") && !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
					t.Errorf("%s:%d: base image %s is not pinned by tag", df, in.line, ref)
				}
			case "COPY", "ADD":
				srcs, dest := copySources(in.args)
				for _, s := range srcs {
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(s))); err != nil {
						t.Errorf("%s:%d: %s source %s does not exist in the repository", df, in.line, in.cmd, s)
					}
				}
				if strings.Contains(in.args, "--from=") || len(in.heredocs) > 0 {
					for _, f := range strings.Fields(in.args) {
						if strings.HasPrefix(f, "--") || f == dest || strings.HasPrefix(f, "<<") {
							continue
						}
						if strings.HasSuffix(dest, "/") {
							installed[image] = append(installed[image], dest+filepath.Base(f))
						} else {
							installed[image] = append(installed[image], dest)
						}
					}
					if len(in.heredocs) > 0 {
						installed[image] = append(installed[image], dest)
					}
				}
			case "RUN":
				if !strings.Contains(in.args, "go build") {
					continue
				}
				if !strings.Contains(in.args, "CGO_ENABLED=0") {
					t.Errorf("%s:%d: go build without CGO_ENABLED=0", df, in.line)
				}
				for _, m := range goBuildPkgRE.FindAllStringSubmatch(in.args, -1) {
					built[image] = append(built[image], filepath.Base(m[1]))
					dir := filepath.Join(root, filepath.FromSlash(m[1]))
					if !isMainPackage(t, dir) {
						t.Errorf("%s:%d: builds ./%s, which is not a main package of this repository", df, in.line, m[1])
					}
				}
			}
		}
		if froms < 2 {
			t.Errorf("%s: %d stages, want a builder and a final stage", df, froms)
		}
	}
	if b := built["cnilab"]; !slices.Equal(b, []string{"cnilab-agent", "cnilab-cni"}) {
		t.Errorf("images/cnilab builds %v, want cnilab-agent and cnilab-cni", b)
	}
	if b := built["cnilab-probe"]; !slices.Equal(b, []string{"cnilab-probe"}) {
		t.Errorf("images/cnilab-probe builds %v, want cnilab-probe", b)
	}

	// The DaemonSet runs commands the image has.
	objs := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.Cnilab}}))
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet kube-system/cnilab-agent")
	for _, c := range allContainers(ds.Spec.Template.Spec) {
		if len(c.Command) == 0 || !slices.Contains(installed["cnilab"], c.Command[0]) {
			t.Errorf("container %s runs %v; images/cnilab installs %v", c.Name, c.Command, installed["cnilab"])
		}
	}
	if !slices.Contains(installed["cnilab-probe"], "/usr/local/bin/cnilab-probe") {
		t.Errorf("images/cnilab-probe installs %v, want /usr/local/bin/cnilab-probe", installed["cnilab-probe"])
	}
}

func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), m, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			return false
		}
		return f.Name.Name == "main"
	}
	return false
}
