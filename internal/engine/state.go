package engine

import (
	"crypto/tls"
	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/pool"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/reverse"
	"github.com/portcullis/portcullis/rules"
)

// state is one policy version, compiled: immutable once built, swapped whole.
type state struct {
	version  int
	file     *config.File
	loadedAt time.Time
	program  *rules.Program
	lists    *loadedLists
	profiles map[string]*anonymize.Profile
	// hasTrackers is set when a profile names tracker lists.
	hasTrackers bool

	pools      map[string]*pool.Pool
	cache      *cache.Cache // nil: no cache section
	forward    http.Handler
	reverse    *reverse.Handler
	reverseTLS *tls.Config
	ca         *forward.CA     // the inspection CA, nil when nothing is inspected
	leaves     *forward.Leaves // its leaf cache, shared across reloads
	admin      http.Handler

	listens []listenSpec
}

// build compiles f into a state, reusing what the shared parts keep across reloads.
func (e *Engine) build(f *config.File) (*state, error) {
	st := &state{file: f, loadedAt: time.Now()}
	lists, ferrs := e.shared.lists.load(f, e.log)
	if len(ferrs) > 0 {
		return nil, f.FieldErrors(ferrs)
	}
	st.lists = lists
	prog, ferrs := rules.Compile(&f.Policy.Config, lists.source)
	if len(ferrs) > 0 {
		return nil, f.FieldErrors(ferrs)
	}
	st.program = prog
	for _, door := range []func(*state) error{e.useResolver, e.usePools, e.useCache, e.buildProfiles, e.useInspection, e.buildForward, e.buildReverse, e.buildDNS, e.buildAdmin} {
		if err := door(st); err != nil {
			return nil, err
		}
	}
	return st, nil
}
