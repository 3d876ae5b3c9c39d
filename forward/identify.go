package forward

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
)

// authenticate checks the proxy credentials of a proxy request (plain or CONNECT)
// when authentication is configured. It fills the exchange's user and groups and
// returns true, or answers 407 (or 429 for a locked-out client) and returns false.
// Inner requests of an inspected tunnel inherit the CONNECT's identity; local
// requests (PAC file) need none.
func (p *Proxy) authenticate(x *exchange, r *http.Request) bool {
	if p.auth == nil {
		return true
	}
	client := x.entry.Client
	user, pass, ok := auth.ParseProxyAuthorization(r.Header)
	if ok {
		var attempt *auth.Attempt
		if p.limiter != nil {
			var wait time.Duration
			if p.auth.Cached(user, pass) {
				attempt, wait = p.limiter.ReserveKnown(user, client)
			} else {
				attempt, wait = p.limiter.Reserve(user, client)
			}
			if attempt == nil {
				x.entry.Rule, x.entry.Error = "proxy_auth", "authentication locked out"
				x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				p.page(&x.w, r, http.StatusTooManyRequests, "Too many failed sign-ins; try again later.")
				return false
			}
		}
		if groups, good := p.auth.Check(user, pass); good {
			if attempt != nil {
				attempt.Succeed()
			}
			x.entry.User, x.groups = user, groups
			return true
		}
		if attempt != nil {
			attempt.Fail()
		}
		x.entry.Error = "bad credentials"
		p.logger.Info("forward: proxy authentication failed", "client", client.String(), "user", user)
	}
	x.entry.Rule = "proxy_auth"
	h := x.w.Header()
	for k, v := range auth.Challenge(p.realm) {
		h[k] = v
	}
	p.page(&x.w, r, http.StatusProxyAuthRequired, "This proxy needs you to sign in.")
	return false
}
