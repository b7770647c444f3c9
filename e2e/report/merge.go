package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Merge reads the runs of several reports into one File. Each input is a
// report.json file, a directory holding one, or a directory whose subtree
// holds several (one per CI matrix job, say: every report.json found below it
// is read, in path order). A run found twice (the same report given twice, or
// a merged report merged again) is kept once. A relative LogDir is made
// absolute against its report's directory; Rebase makes it relative again to
// wherever the merged report goes.
func Merge(inputs ...string) (File, error) {
	out := File{Runs: []Run{}}
	seen := map[string]bool{}
	for _, in := range inputs {
		paths, err := reportFiles(in)
		if err != nil {
			return File{}, err
		}
		for _, p := range paths {
			f, err := readFile(p)
			if err != nil {
				return File{}, err
			}
			base, err := filepath.Abs(filepath.Dir(p))
			if err != nil {
				return File{}, err
			}
			for _, r := range f.Runs {
				if r.LogDir != "" && !filepath.IsAbs(r.LogDir) {
					r.LogDir = filepath.Join(base, filepath.FromSlash(r.LogDir))
				}
				k := runKey(r)
				if seen[k] {
					continue
				}
				seen[k] = true
				out.Runs = append(out.Runs, r)
			}
		}
	}
	return out, nil
}

// Rebase makes every absolute LogDir relative to dir, the directory the
// report is written to, so that links in the rendered pages stay valid when
// the directory tree is moved or published as one artifact.
func (f *File) Rebase(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for i := range f.Runs {
		r := &f.Runs[i]
		if r.LogDir == "" || !filepath.IsAbs(r.LogDir) {
			continue
		}
		if rel, err := filepath.Rel(abs, r.LogDir); err == nil {
			r.LogDir = filepath.ToSlash(rel)
		}
	}
	return nil
}

// reportFiles lists the report.json files an input names.
func reportFiles(in string) ([]string, error) {
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("report input: %w", err)
	}
	if !st.IsDir() {
		return []string{in}, nil
	}
	own := filepath.Join(in, "report.json")
	if _, err := os.Stat(own); err == nil {
		return []string{own}, nil
	}
	var found []string
	err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "report.json" {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report input: %w", err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("report input %s: no report.json in it or below it", in)
	}
	sort.Strings(found)
	return found, nil
}

func readFile(p string) (File, error) {
	var f File
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return f, fmt.Errorf("report input: %w", err)
		}
		return f, fmt.Errorf("read report: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("read report %s: %w", p, err)
	}
	return f, nil
}

// runKey identifies a run across reports: the same suite run on the same
// cluster started at the same instant.
func runKey(r Run) string {
	return strings.Join([]string{
		r.Provider, r.CNI, r.Kernel, r.KernelName, r.LabelFilter,
		r.Started.UTC().Format("2006-01-02T15:04:05.999999999"),
		strconv.FormatFloat(r.Seconds, 'g', -1, 64), strconv.Itoa(len(r.Specs)),
	}, "\x00")
}
