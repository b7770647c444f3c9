package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"
)

// docker runs the docker CLI and returns its trimmed standard output; the
// error carries its standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
		}
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// DockerAvailable checks that a Docker engine answers (`docker info`), which
// kind needs; the error says why not.
func DockerAvailable(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker command on PATH (%w): the kind provider runs its nodes as Docker containers; install Docker (https://docs.docker.com/engine/install/)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := docker(ctx, "info", "--format", "{{.ServerVersion}}")
	if err != nil {
		return fmt.Errorf("the Docker engine does not answer (is it running? is DOCKER_HOST right?): %w", err)
	}
	if v == "" {
		return errors.New("the Docker engine does not answer: 'docker info' reports no server version")
	}
	return nil
}

// checkImages says which of images the local Docker engine lacks.
func checkImages(ctx context.Context, images []string) error {
	var missing []string
	for _, img := range images {
		if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", img); err != nil {
			missing = append(missing, img)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("images not in the local Docker engine: %s: build them with 'make images'", strings.Join(missing, ", "))
	}
	return nil
}

// loadImages puts images into every node's containerd, as `kind load
// docker-image` does: one `docker save` archive, imported on each node.
func loadImages(ctx context.Context, ns []nodes.Node, images []string) error {
	dir, err := os.MkdirTemp("", "cnilab-kind-images-")
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	defer os.RemoveAll(dir)
	archive := filepath.Join(dir, "images.tar")
	if _, err := docker(ctx, append([]string{"save", "-o", archive}, images...)...); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	for _, n := range ns {
		if err := loadArchive(n, archive); err != nil {
			return fmt.Errorf("load images %s into node %s: %w", strings.Join(images, ", "), n.String(), err)
		}
	}
	return nil
}

func loadArchive(n nodes.Node, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return nodeutils.LoadImageArchive(n, f)
}

// logger passes kind's user-facing messages (verbosity 0, warnings and
// errors) to the lab's progress writer.
type logger struct{ w io.Writer }

func (l logger) Warn(m string)                        { fmt.Fprintln(l.w, "   kind: WARNING: "+m) }
func (l logger) Warnf(f string, a ...any)             { l.Warn(fmt.Sprintf(f, a...)) }
func (l logger) Error(m string)                       { fmt.Fprintln(l.w, "   kind: ERROR: "+m) }
func (l logger) Errorf(f string, a ...any)            { l.Error(fmt.Sprintf(f, a...)) }
func (l logger) V(v kindlog.Level) kindlog.InfoLogger { return infoLogger{w: l.w, on: v <= 0} }

type infoLogger struct {
	w  io.Writer
	on bool
}

func (l infoLogger) Info(m string) {
	if l.on {
		fmt.Fprintln(l.w, "   kind: "+strings.TrimSpace(m))
	}
}
func (l infoLogger) Infof(f string, a ...any) { l.Info(fmt.Sprintf(f, a...)) }
func (l infoLogger) Enabled() bool            { return l.on }
