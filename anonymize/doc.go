// Package anonymize owns everything that rewrites what crosses the proxy for privacy:
// hop-by-hop header removal (RFC 9110 §7.6.1), anonymity levels (transparent,
// anonymous, elite), header actions (referrer, user agent and client hints,
// Accept-Language, removal and replacement by name or glob, Sec-GPC and DNT), cookie
// policies (strip, third-party only, session-only, Set-Cookie blocking), tracking
// parameter removal that keeps the rest of the URL byte-identical, the names of the
// tracker lists a profile blocks quietly, and origin hiding on reverse-mode responses.
//
// A Profile is compiled once (Compile, or the built-ins Transparent, Anonymous, Elite
// and Privacy; CompileProfiles builds a policy's whole set) and is immutable and safe
// for concurrent use; its Request and Response methods are pure functions over the
// message they are given. The door removes the hop-by-hop fields itself (internal/relay), before
// Profile.Request, because only the door knows whether it is relaying a protocol
// upgrade. QuietResponse is what a door answers for a tracker blocked quietly.
//
// docs/threats.md states what each level hides and what no proxy can hide.
package anonymize
