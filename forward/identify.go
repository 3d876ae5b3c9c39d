package forward

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/rules"
)

// authenticate checks the proxy credentials of a proxy request (plain or CONNECT)
// when authentication is configured. It fills the exchange's user and groups and
// returns true, or answers 407 (or 429 for a locked-out client, or 503 when the
// directory cannot be asked) and returns false. Inner requests of an inspected
// tunnel inherit the CONNECT's identity; local requests (PAC file) need none. An
// exempt client or destination (forward.auth.exempt) needs none either: it goes
// through the rules with no user.
func (p *Proxy) authenticate(x *exchange, r *http.Request) bool {
	if p.auth == nil || p.exempt(x, r) {
		return true
	}
	user, pass, ok := auth.ParseProxyAuthorization(r.Header)
	if ok {
		switch res, wait, err := p.checkPassword(r.Context(), x, user, pass); res {
		case signedIn:
			return true
		case lockedOut:
			if p.concealSignIn(x, r) {
				return false
			}
			x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			p.page(&x.w, r, http.StatusTooManyRequests, "Too many failed sign-ins; try again later.")
			return false
		case signInDown:
			return p.authUnavailable(x, r, user, err)
		}
	}
	x.entry.Rule = "proxy_auth"
	if p.concealSignIn(x, r) {
		return false
	}
	h := x.w.Header()
	for k, v := range auth.Challenge(p.realm) {
		h[k] = v
	}
	p.page(&x.w, r, http.StatusProxyAuthRequired, "This proxy needs you to sign in.")
	return false
}

// signInResult is the outcome of checking a user name and password.
type signInResult uint8

const (
	signedIn       signInResult = iota
	badCredentials              // logged; counted by the limiter
	lockedOut                   // the limiter refused the attempt: wait before another
	signInDown                  // the directory could not check (not counted)
)

// checkPassword checks user and pass for x's client against the door's
// sign-in, through the limiter (reserved before the check, ended with the
// result). On success it records the user and groups in x; otherwise it
// records the failure's rule and error in x's entry.
func (p *Proxy) checkPassword(ctx context.Context, x *exchange, user, pass string) (signInResult, time.Duration, error) {
	client := x.entry.Client
	x.entry.Rule = "proxy_auth"
	var attempt *auth.Attempt
	if p.limiter != nil {
		var wait time.Duration
		if p.auth.Cached(user, pass) {
			attempt, wait = p.limiter.ReserveKnown(user, client)
		} else {
			attempt, wait = p.limiter.Reserve(user, client)
		}
		if attempt == nil {
			x.entry.Error = "authentication locked out"
			return lockedOut, wait, nil
		}
	}
	name, groups, good, err := p.auth.Verify(ctx, user, pass)
	if err != nil {
		if attempt != nil {
			attempt.Cancel() // the directory did not answer: not a guess
		}
		return signInDown, 0, err
	}
	if good {
		if attempt != nil {
			attempt.Succeed()
		}
		x.entry.Rule = ""
		x.entry.User, x.groups = name, groups
		return signedIn, 0, nil
	}
	if attempt != nil {
		attempt.Fail()
	}
	x.entry.Error = "bad credentials"
	p.logger.Info("forward: proxy authentication failed", "client", client.String(), "user", user)
	return badCredentials, 0, nil
}

// exempt reports whether the request needs no sign-in (forward.auth.exempt).
func (p *Proxy) exempt(x *exchange, r *http.Request) bool {
	target := r.Host
	if r.Method != http.MethodConnect {
		target = r.URL.Host
	}
	host, _ := rules.SplitHostPort(target)
	_, ok := p.exempts.Match(x.entry.Client, host)
	return ok
}

// authUnavailable answers 503 when the directory could not check the
// credentials: the user is neither refused (407, which would make the browser
// ask again for a password that may be right) nor counted as a failed guess.
func (p *Proxy) authUnavailable(x *exchange, r *http.Request, user string, err error) bool {
	x.entry.Rule, x.entry.Error = "proxy_auth", "sign-in unavailable"
	if skipped, ok := p.quiet.allow(p.now(), 10*time.Second); ok {
		p.logger.Warn("forward: sign-in unavailable: the directory could not check the password",
			"client", x.entry.Client.String(), "user", user, "err", err, "not_logged_since_last", skipped)
	}
	if p.concealSignIn(x, r) {
		return false
	}
	x.w.Header().Set("Retry-After", "30")
	p.page(&x.w, r, http.StatusServiceUnavailable, "Sign-in unavailable: the school's directory cannot be reached just now, so your password cannot be checked. Please try again in a few minutes.")
	return false
}

// logThrottle lets one log line through per period (an outage would otherwise
// log every request of every pupil; the access log still records each one).
type logThrottle struct {
	last    atomic.Int64 // UnixNano of the last line let through
	skipped atomic.Int64 // lines held back since
}

// allow reports whether a line may be written at now, and how many were held
// back since the last one.
func (l *logThrottle) allow(now time.Time, period time.Duration) (skipped int64, ok bool) {
	last := l.last.Load()
	if last != 0 && now.UnixNano()-last < int64(period) || !l.last.CompareAndSwap(last, now.UnixNano()) {
		l.skipped.Add(1)
		return 0, false
	}
	return l.skipped.Swap(0), true
}
