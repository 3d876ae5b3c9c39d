package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// warnHandler is the slog.Handler validate gives the engine's dry run: warnings
// (malformed list lines, and the like) are printed to the user, one per line; a
// malformed list line as "LISTFILE:LINE: problem (list NAME: line skipped)".
type warnHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	attrs []slog.Attr
}

func newWarnHandler(w io.Writer) *warnHandler { return &warnHandler{w: w, mu: new(sync.Mutex)} }

// Enabled implements slog.Handler.
func (h *warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle implements slog.Handler.
func (h *warnHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	var kv []string
	add := func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		kv = append(kv, a.Key+"="+a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	var line string
	if p, ok := attrs["problem"]; ok && attrs["list"] != "" {
		line = fmt.Sprintf("%s (list %s: line skipped)", p, attrs["list"])
	} else {
		line = "warning: " + r.Message
		if len(kv) > 0 {
			line += " (" + strings.Join(kv, " ") + ")"
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, line)
	return err
}

// WithAttrs implements slog.Handler.
func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnHandler{w: h.w, mu: h.mu, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

// WithGroup implements slog.Handler (groups are flattened).
func (h *warnHandler) WithGroup(string) slog.Handler { return h }
