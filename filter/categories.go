package filter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// LoadCategories loads a UT1-layout folder: every subfolder (symbolic links
// followed, as UT1 uses them for aliases) holding a "domains" or "urls" file
// is a category, keyed by the subfolder's name. With only, just those
// categories are loaded, and a missing one is an error. Subfolders without
// list files (and plain files such as README or global_usage) are ignored.
// Malformed lines are reported in each List's Problems, never as an error.
func LoadCategories(dir string, only ...string) (map[string]*List, error) {
	names := only
	if len(names) == 0 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			st, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil || !st.IsDir() {
				continue
			}
			if hasListFile(filepath.Join(dir, e.Name())) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	}
	out := make(map[string]*List, len(names))
	for _, name := range names {
		if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
			return nil, fmt.Errorf("filter: bad category name %q", name)
		}
		if _, dup := out[name]; dup {
			continue
		}
		l, err := LoadList(FormatUT1, filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("filter: category %q: %w", name, err)
		}
		out[name] = l
	}
	return out, nil
}

func hasListFile(dir string) bool {
	for _, f := range []string{"domains", "urls"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil || !errors.Is(err, os.ErrNotExist) {
			return true
		}
	}
	return false
}
