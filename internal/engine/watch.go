package engine

import (
	"context"
	"maps"
	"sort"
	"time"
)

// watch polls the policy file and the list files the current policy names every
// Options.WatchInterval, and reloads once a change has settled: the files differ
// (size or modification time) from what the running policy was loaded from, and did
// not change between the last two polls, so that a file being written in place
// (truncated, then written) is not loaded half-written. It returns when ctx ends. A
// reload that fails is logged by Reload and the old policy keeps serving; the files
// are not reloaded again until they change again.
func (e *Engine) watch(ctx context.Context) {
	t := time.NewTicker(e.opts.WatchInterval)
	defer t.Stop()
	loaded := e.watchStamp() // what the running policy was built from
	seen := loaded           // what the previous poll saw
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := e.watchStamp()
		settled := maps.Equal(now, seen)
		seen = now
		if !settled || maps.Equal(now, loaded) || ctx.Err() != nil {
			continue
		}
		e.log.Info("policy or list files changed; reloading")
		if err := e.Reload(); err != nil { // logged, and counted in the reload metrics
			// Retried when the files change again (or changed during the attempt).
			loaded = now
		} else {
			// The new policy may name other lists: watch what it names from now on.
			loaded = e.reloadedStamp(now)
		}
		seen = loaded
	}
}

// reloadedStamp is the watch stamp of what the running policy was built from, as
// near as the engine knows it, after a successful reload that started when the
// watched files were as in before: a list's stamp as the list loader took it before
// reading the list, another file's from before when it was watched then, else as it
// is now. Stamping after the reload instead would take a file changed while the
// reload ran as loaded, and that change would be lost.
func (e *Engine) reloadedStamp(before map[string]string) map[string]string {
	var lists map[string]string
	if l := e.cur.Load().lists; l != nil {
		lists = l.stamps
	}
	return e.stampWith(func(p string) string {
		if st, ok := lists[p]; ok {
			return st
		}
		if st, ok := before[p]; ok {
			return st
		}
		return fileStamp(p)
	})
}

// watchedPaths are the files whose change triggers a reload: the policy file (unless
// the policy is the embedded default) and every list the current policy names (a UT1
// list is a folder: every file under it counts).
func (e *Engine) watchedPaths() []string {
	var paths []string
	if e.opts.PolicyPath != "" {
		paths = append(paths, e.opts.PolicyPath)
	}
	f := e.cur.Load().file
	for _, lc := range f.Policy.Lists {
		if lc != nil && lc.Path != "" {
			paths = append(paths, f.Resolve(lc.Path))
		}
	}
	if fw := f.Policy.Forward; fw != nil { // `portcullis passwd` edits take effect by themselves
		for _, p := range append([]string{fw.Auth.HtpasswdFile, fw.Auth.GroupFile}, fw.Phrase.Lists...) {
			if p != "" {
				paths = append(paths, f.Resolve(p))
			}
		}
	}
	sort.Strings(paths[min(1, len(paths)):])
	return paths
}

// watchStamp is the size and modification time of every watched path, by path.
func (e *Engine) watchStamp() map[string]string { return e.stampWith(fileStamp) }

// stampWith is the watch stamp with each watched path's stamp from stampOf.
func (e *Engine) stampWith(stampOf func(string) string) map[string]string {
	paths := e.watchedPaths()
	m := make(map[string]string, len(paths))
	for _, p := range paths {
		m[p] = stampOf(p)
	}
	return m
}
