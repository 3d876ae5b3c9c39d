// Package auth owns forward-proxy authentication: the htpasswd file (bcrypt
// entries only) and the group file beside it, the check of Basic credentials
// from Proxy-Authorization with a bounded cache of successful checks, the
// Proxy-Authenticate challenge for 407 responses, the per-client limiter of
// failed attempts, and SetPassword behind `portcullis passwd FILE USER`.
//
// The forward door checks credentials through a Verifier: the Store of the
// htpasswd file, or a directory (package forward/auth/directory, selected by
// Config.LDAP), whose Verify may also answer "cannot tell" (an outage) — the
// door then answers 503 and counts no failed attempt.
//
// A Store is immutable once loaded (its cache aside): a reload loads a new
// Store and swaps it in. The package does no I/O on the request path.
//
// Typical use by the forward door, per request (or once per CONNECT tunnel):
//
//	user, pass, ok := auth.ParseProxyAuthorization(r.Header)
//	if !ok {
//		// 407 with auth.Challenge(realm); not a failure (browsers probe first)
//	}
//	attempt, wait := lim.Reserve(user, clientAddr) // before checking the password
//	if attempt == nil {
//		// 429 Too Many Requests with Retry-After: wait
//	}
//	groups, ok := store.Check(user, pass)
//	if !ok {
//		attempt.Fail() // then 407 with auth.Challenge(realm)
//	} else {
//		attempt.Succeed()
//	}
package auth
