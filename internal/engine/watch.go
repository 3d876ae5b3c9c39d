package engine

import (
	"context"
	"sort"
	"strings"
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
		settled := now == seen
		seen = now
		if !settled || now == loaded || ctx.Err() != nil {
			continue
		}
		e.log.Info("policy or list files changed; reloading")
		_ = e.Reload() // logged, and counted in the reload metrics
		// The new policy may name other lists: watch what it names from now on. A
		// file changed between the reload's read and this stamp is picked up at its
		// next change.
		loaded = e.watchStamp()
		seen = loaded
	}
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

// watchStamp summarises the size and modification time of every watched path.
func (e *Engine) watchStamp() string {
	var b strings.Builder
	for _, p := range e.watchedPaths() {
		b.WriteString(p)
		b.WriteByte('=')
		b.WriteString(fileStamp(p))
		b.WriteByte('\n')
	}
	return b.String()
}
