package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab/images"
)

func imagesCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "images",
		Short: "Container images of the lab, built without Docker",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(imagesBuildCommand())
	return c
}

func imagesBuildCommand() *cobra.Command {
	o := images.Options{Dirs: images.DefaultDirs(), Output: images.DefaultOutput()}
	c := &cobra.Command{
		Use:   "build [--output DIR] [--only NAME,...]",
		Short: "Build the lab's images as docker save tarballs (no Docker, no registry)",
		Long: `Build the lab's container images from the binaries of make build and make
tools, FROM scratch, for linux/amd64: one tarball per image, DIR/NAME.tar,
which ctr -n k8s.io images import (or docker load) names by its reference,
and DIR/images.json listing each image's reference, digest and files. An
image is rebuilt only when one of its inputs changed. Images:

  cnilab        the agent and the CNI plugin (manifests/charts/cnilab)
  cnilab-probe  the test workload's probe (manifests/workload)
  agnhost       the e2e framework's agnhost, without its alpine userland
  pause         the sandbox image, from cnilab-pause
  kube-proxy    kube-proxy with iptables (nft) from this machine
  coredns       CoreDNS as kubeadm names it
  flannel       flanneld with iptables, and the reference CNI plugins`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range o.Only {
				if !slices.Contains(images.Names(), n) {
					return usageError{fmt.Errorf("--only: no image %q (images: %s)", n, strings.Join(images.Names(), ", "))}
				}
			}
			o.Progress = cmd.OutOrStdout()
			_, err := images.Build(cmd.Context(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Output, "output", o.Output, "directory for the tarballs and images.json")
	f.StringSliceVar(&o.Only, "only", nil, "build only these images (comma-separated): "+strings.Join(images.Names(), ", "))
	f.BoolVar(&o.Force, "force", false, "rebuild images that are up to date")
	return c
}
