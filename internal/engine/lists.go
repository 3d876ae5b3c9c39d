package engine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// listCache keeps compiled lists across reloads: a list whose file (or, for UT1, whose
// category files) did not change is not parsed again, so a reload with 5 M entries
// costs nothing when only a rule changed.
type listCache struct {
	mu      sync.Mutex
	entries map[string]*cachedList // by format + absolute path (+ categories)
}

type cachedList struct {
	stamp string // sizes and modification times of the files behind it
	lists []rules.ListEntry
	size  int
}

func newListCache() *listCache { return &listCache{entries: map[string]*cachedList{}} }

// ListInfo describes one loaded list for the status page and metrics.
type ListInfo struct {
	Name    string
	Entries int
}

// loadedLists is what one policy version uses.
type loadedLists struct {
	byName map[string][]rules.ListEntry
	info   []ListInfo
	stamps map[string]string // by path: fileStamp as it was before the list was read
}

func (l *loadedLists) source(name string) ([]rules.ListEntry, bool) {
	entries, ok := l.byName[name]
	return entries, ok
}

// load compiles every list f names, reusing unchanged ones. Problems that make a list
// unusable are returned as field errors; malformed lines are only logged.
func (c *listCache) load(f *config.File, log *slog.Logger) (*loadedLists, []field.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &loadedLists{byName: map[string][]rules.ListEntry{}, stamps: map[string]string{}}
	var errs []field.Error
	used := map[string]bool{}
	names := make([]string, 0, len(f.Policy.Lists))
	for name := range f.Policy.Lists {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lc := f.Policy.Lists[name]
		path := f.Resolve(lc.Path)
		key := fmt.Sprintf("%s|%s|%v", lc.Format, path, lc.Categories)
		used[key] = true
		stamp := fileStamp(path)
		cached := c.entries[key]
		if cached == nil || cached.stamp != stamp {
			start := time.Now()
			entries, size, err := loadList(name, lc, path, log)
			if err != nil {
				errs = append(errs, field.Errorf("lists."+name+".path", "%v", err))
				continue
			}
			cached = &cachedList{stamp: stamp, lists: entries, size: size}
			c.entries[key] = cached
			log.Info("list loaded", "list", name, "format", lc.Format, "entries", size, "took", time.Since(start).Round(time.Millisecond))
		}
		// The category a list reports: the policy's, else the list's own.
		entries := make([]rules.ListEntry, len(cached.lists))
		copy(entries, cached.lists)
		for i := range entries {
			if lc.Category != "" {
				entries[i].Category = lc.Category
			}
		}
		out.byName[name] = entries
		for _, e := range entries {
			if e.Name != name { // UT1 categories are reachable as NAME/CATEGORY
				out.byName[e.Name] = []rules.ListEntry{e}
			}
		}
		out.info = append(out.info, ListInfo{Name: name, Entries: cached.size})
		out.stamps[path] = cached.stamp
	}
	for k := range c.entries {
		if !used[k] {
			delete(c.entries, k)
		}
	}
	return out, errs
}

func loadList(name string, lc *rules.ListConfig, path string, log *slog.Logger) ([]rules.ListEntry, int, error) {
	if lc.Format == "ut1" {
		cats, err := filter.LoadCategories(path, lc.Categories...)
		if err != nil {
			return nil, 0, err
		}
		catNames := make([]string, 0, len(cats))
		for c := range cats {
			catNames = append(catNames, c)
		}
		sort.Strings(catNames)
		var entries []rules.ListEntry
		total := 0
		for _, c := range catNames {
			l := cats[c]
			reportProblems(log, name+"/"+c, l)
			entries = append(entries, rules.ListEntry{Name: name + "/" + c, Category: c, M: l})
			total += l.Len()
		}
		return entries, total, nil
	}
	l, err := filter.LoadList(filter.Format(lc.Format), path)
	if err != nil {
		return nil, 0, err
	}
	reportProblems(log, name, l)
	return []rules.ListEntry{{Name: name, Category: name, M: l}}, l.Len(), nil
}

func reportProblems(log *slog.Logger, list string, l *filter.List) {
	if l.Malformed == 0 {
		return
	}
	for i, p := range l.Problems {
		if i == 5 {
			break
		}
		log.Warn("list line skipped", "list", list, "problem", p.Error())
	}
	log.Warn("list has malformed lines (skipped)", "list", list, "count", l.Malformed)
}

// fileStamp summarises the size and modification time of path, or of every file
// under it when it is a folder.
func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	if !st.IsDir() {
		return fmt.Sprintf("%d@%d", st.Size(), st.ModTime().UnixNano())
	}
	var s string
	_ = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				s += fmt.Sprintf("%s:%d@%d;", p, fi.Size(), fi.ModTime().UnixNano())
			}
		}
		return nil
	})
	return s
}
