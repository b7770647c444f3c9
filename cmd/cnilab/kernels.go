package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/kernels"
)

func kernelsCommand() *cobra.Command {
	var catalogFile, cacheDir string
	c := &cobra.Command{
		Use:   "kernels",
		Short: "List the kernel catalog and fetch kernels into the local cache",
	}
	c.PersistentFlags().StringVar(&catalogFile, "catalog", "", "kernel catalog file (default: the built-in kernels/catalog.json)")
	c.PersistentFlags().StringVar(&cacheDir, "cache", "", "kernel cache directory (default: <_output>/kernels)")
	load := func() (kernels.Catalog, string, error) {
		dir := cacheDir
		if dir == "" {
			dir = kernels.DefaultCacheDir()
		}
		if catalogFile == "" {
			cat, err := kernels.Load()
			return cat, dir, err
		}
		cat, err := kernels.LoadFile(catalogFile)
		return cat, dir, err
	}
	c.AddCommand(kernelsList(load), kernelsFetch(load))
	return c
}

type catalogLoader func() (kernels.Catalog, string, error)

func kernelsList(load catalogLoader) *cobra.Command {
	return &cobra.Command{
		Use:   "list [--cache DIR] [--catalog FILE]",
		Short: "List the catalog's kernels, their sources and whether a verified copy is cached",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, dir, err := load()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSOURCE\tCACHED\tNOTE")
			for _, e := range cat {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Name, e.Source, cachedStatus(e, dir), e.Note)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ncache: %s\n", dir)
			return nil
		},
	}
}

// cachedStatus is the CACHED column: the release of a verified copy, or why
// there is none.
func cachedStatus(e kernels.Entry, dir string) string {
	k, err := kernels.CachedKernel(e, dir)
	switch {
	case err == nil && e.Source.Type == kernels.TypeLocal:
		return "present " + k.Release
	case err == nil:
		return "yes " + k.Release
	case e.Source.Type == kernels.TypeLocal:
		var env *kernels.EnvError
		if errors.As(err, &env) {
			return "needs $" + strings.Join(env.Vars, " $")
		}
		return "missing files"
	case errors.Is(err, fs.ErrNotExist):
		return "no"
	}
	return "invalid (fetch again)"
}

func kernelsFetch(load catalogLoader) *cobra.Command {
	var refresh bool
	c := &cobra.Command{
		Use:   "fetch NAME... [--cache DIR] [--catalog FILE] [--refresh]",
		Short: "Fetch kernels into the cache (or reuse a verified copy) and print their paths",
		Long: `Fetch makes each named kernel of the catalog available on local disk:
Debian kernels with apt (newest package matching the catalog's glob), OCI
kernels from their registry or a local OCI layout, local kernels in place.
A cached kernel whose image still hashes to its recorded sha256 is reused.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("kernels fetch needs at least one kernel name (see cnilab kernels list)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, dir, err := load()
			if err != nil {
				return err
			}
			var entries []kernels.Entry
			for _, n := range args {
				e, err := cat.Find(n)
				if err != nil {
					return usageError{err}
				}
				entries = append(entries, e)
			}
			out := cmd.OutOrStdout()
			var failed []string
			for _, e := range entries {
				if refresh && e.Source.Type != kernels.TypeLocal {
					if err := os.RemoveAll(filepath.Join(dir, e.Name)); err != nil {
						return err
					}
				}
				start := time.Now()
				k, err := kernels.Fetch(cmd.Context(), e, dir, cmd.ErrOrStderr())
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", e.Name, err)
					failed = append(failed, e.Name)
					if cmd.Context().Err() != nil {
						break
					}
					continue
				}
				printKernel(out, k, time.Since(start))
			}
			if len(failed) > 0 {
				return fmt.Errorf("could not fetch %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&refresh, "refresh", false, "drop the cached copy and fetch again (Debian: the newest version apt knows now)")
	return c
}

func printKernel(w io.Writer, k kernels.Kernel, took time.Duration) {
	how := "fetched in " + took.Round(100*time.Millisecond).String()
	if k.Cached {
		how = "cached"
	} else if k.Source.Type == kernels.TypeLocal {
		how = "local"
	}
	fmt.Fprintf(w, "%s (%s): release %s\n", k.Name, how, k.Release)
	fmt.Fprintf(w, "  vmlinuz  %s (%s, sha256 %s)\n", k.Vmlinuz, fileSize(k.Vmlinuz), k.SHA256)
	if k.ModulesDir != "" {
		formats, err := kernels.ModuleFormats(k.ModulesDir)
		desc := ""
		if err == nil {
			var parts []string
			for f, n := range formats {
				parts = append(parts, fmt.Sprintf("%d %s", n, f))
			}
			sort.Strings(parts)
			desc = " (" + strings.Join(parts, ", ") + ")"
		}
		fmt.Fprintf(w, "  modules  %s%s\n", k.ModulesDir, desc)
	} else {
		fmt.Fprintf(w, "  modules  none\n")
	}
	if k.ConfigFile != "" {
		fmt.Fprintf(w, "  config   %s\n", k.ConfigFile)
	}
	if k.Origin != "" {
		fmt.Fprintf(w, "  from     %s %s\n", k.Origin, k.OriginDigest)
	}
}

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}
