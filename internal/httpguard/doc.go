// Package httpguard owns the HTTP/1.1 framing checks that Go's net/http server
// does not make: it refuses, with 400 Bad Request and a closed connection, a
// request whose head carries both Content-Length and Transfer-Encoding (RFC
// 9112 §6.1 and §6.3: "ought to be handled as an error", and a server that
// processes one anyway MUST close the connection), a Transfer-Encoding in an
// HTTP/1.0 request (§6.1: the framing MUST be treated as faulty), whitespace
// in a field name such as "Content-Length : 5" (§5.1: MUST be rejected with
// 400; net/http accepts it as a field of another name, go.dev/issue/34540,
// which a lenient front end may read as the length) and an obsolete line
// folding of any field (§5.2 allows rejecting it, and nginx does; parsers
// join folded lines differently, and folding Content-Length or
// Transfer-Encoding is only ever an attempt to make two parsers disagree).
//
// net/http cannot be told to do this: on Content-Length with chunked
// Transfer-Encoding it deletes Content-Length, reads the body as chunked and
// keeps the connection, and the handler sees no trace of it (golang/go#80942
// makes later Go releases close the connection, but still not refuse). So the
// check sits under net/http, on the connection: a Conn follows the HTTP/1.1
// framing of the bytes the server reads (request heads, Content-Length bodies,
// chunked bodies with their extensions and trailers) with a small state
// machine, at no allocation and no extra system call, and skips bodies without
// looking at them, so a body containing "Content-Length:" is only a body. When
// a head has a forbidden shape, the Conn hands net/http the head up to the
// offending line followed by a line that is not a header field, and then the
// end of the stream: net/http answers that request itself with "400 Bad
// Request" and "Connection: close" and closes the connection. Requests before
// it on the connection, pipelined or not, are served normally; nothing after
// it is ever read by the server, so the request never reaches a handler, a
// cache or an origin.
//
// The follower mirrors net/http's own framing rules (RFC 9112 §6.3 as Go
// implements it: Transfer-Encoding ignored in HTTP/1.0, "chunked" as the only
// coding, CRLF-terminated chunk lines, trailers up to an empty line). On
// anything it cannot follow — bytes that are no request line (a TLS
// ClientHello, WebSocket frames after a 101, a tunnel after CONNECT), the
// HTTP/2 connection preface, a malformed length — it stops looking and passes
// the bytes through untouched: in each of those cases net/http either rejects
// the stream itself or no longer reads requests from it.
//
// NewListener guards plain listeners; ServeTLS serves an http.Server on a TLS
// listener whose HTTP/1.1 connections are guarded and whose HTTP/2
// connections (which have no such framing) go to net/http as *tls.Conn.
// Unwrap gives the connection underneath, for code that takes a hijacked
// connection over (CONNECT tunnels that splice).
package httpguard
