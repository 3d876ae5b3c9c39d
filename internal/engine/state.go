package engine

import (
	"crypto/tls"
	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/cluster"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/resolver"
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

	resolver   *resolver.Resolver // what the doors resolve with (dials go through shared.dialContext)
	pools      map[string]*pool.Pool
	cache      *cache.Cache     // nil: no cache section
	cluster    *cluster.Cluster // nil: the node stands alone
	forward    http.Handler
	reverse    *reverse.Handler
	reverseTLS *tls.Config
	ca         *certs.CA     // the inspection CA, nil when nothing is inspected
	leaves     *certs.Leaves // its leaf cache, shared across reloads
	admin      http.Handler
	auth       auth.Verifier    // forward sign-in; nil without one
	authExempt *auth.Exemptions // forward.auth.exempt

	// forwardTLS and forwardTLSDoor serve forward.tls_listen (nil without it).
	forwardTLS     *tls.Config
	forwardTLSDoor http.Handler

	listens []listenSpec

	// reverseCerts gives the reverse TLS listeners their certificates; nil
	// without TLS listeners. reversePlain is the plain listeners' handler when
	// it must answer ACME http-01 challenges before the door (else nil).
	reverseCerts *certs.Source
	reversePlain http.Handler

	// acme is the ACME certificate source of each door ("reverse",
	// "forward") whose certificates come from ACME; two doors with the same
	// settings share one. The engine owns them (useACME).
	acme map[string]*certs.Source
	// forwardPlain is the forward plain listeners' handler when they answer
	// ACME http-01 challenges before the door (else nil).
	forwardPlain http.Handler

	// warnings are problems that do not stop the policy from loading
	// (FILE:LINE:COL: field: warning: …), logged when it loads.
	warnings []string

	// stage is what the build prepared beside the live shared objects, committed
	// just before the state is swapped in (then nil) or discarded.
	stage *staged
}

// build compiles f into a state, reusing what the shared parts keep across reloads.
// It changes nothing that serves: what the policy changes in the shared parts is
// prepared in st.stage, for the caller to commit or discard. On error it discards
// that itself.
func (e *Engine) build(f *config.File) (_ *state, err error) {
	g := &staged{s: e.shared}
	defer func() {
		if err != nil {
			g.discard()
		}
	}()
	st := &state{file: f, loadedAt: time.Now(), stage: g}
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
	for _, door := range []func(*state) error{e.useCluster, e.useResolver, e.usePools, e.useCache, e.buildProfiles, e.useInspection, e.useACME, e.buildForward, e.buildReverse, e.buildDNS, e.buildAdmin} {
		if err := door(st); err != nil {
			return nil, err
		}
	}
	return st, nil
}
