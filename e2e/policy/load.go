package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	yaml "go.yaml.in/yaml/v3"
)

// LoadCases reads the cases in every *.yaml, *.yml and *.json file under
// dir (recursively, in lexical order). A file holds one case, a list of
// cases, or several YAML documents separated by "---", each a case or a
// list. The cases are validated on the standard model and their names must
// be unique.
func LoadCases(dir string) ([]Case, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var cases []Case
	seen := map[string]string{}
	for _, f := range files {
		cs, err := LoadCaseFile(f)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if err := c.Validate(NewStandardModel()); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if prev, dup := seen[c.Name]; dup {
				return nil, fmt.Errorf("%s: case %s: duplicate name (also in %s)", f, c.Name, prev)
			}
			seen[c.Name] = f
		}
		cases = append(cases, cs...)
	}
	return cases, nil
}

// LoadCaseFile reads the cases of one file (see LoadCases) without
// validating them.
//
// Files are read as YAML 1.2 (JSON is YAML), not YAML 1.1 as
// sigs.k8s.io/yaml does: under 1.1 the standard model's namespace label
// `ns: y` would read as "true", and a key `on` as true. Unknown fields are
// errors, so a typo does not silently change a case.
func LoadCaseFile(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var cases []Case
	for i := 0; ; i++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return cases, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if doc == nil {
			continue
		}
		list, err := decodeCases(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		cases = append(cases, list...)
	}
}

// decodeCases turns one decoded YAML document, a case or a list of cases,
// into cases through JSON, so the API types' JSON decoding applies.
func decodeCases(doc any) ([]Case, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	strict := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	if _, isList := doc.([]any); isList {
		var list []Case
		return list, strict(&list)
	}
	var c Case
	if err := strict(&c); err != nil {
		return nil, err
	}
	return []Case{c}, nil
}
