// Package filetype owns the download check made on response headers before a
// body is sent: blocked MIME types, blocked file extensions (from the
// Content-Disposition filename and the URL path) and a maximum size (from
// Content-Length). It reads headers only; it never reads or sniffs a body.
package filetype

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Config is the file_types section of the policy file (per rule or group).
// The zero value blocks nothing.
type Config struct {
	// BlockMIME lists media types to block, e.g. "application/x-msdownload",
	// or a whole top-level type as "video/*". Compared case-insensitively
	// without parameters ("; charset=...").
	BlockMIME []string `yaml:"block_mime"`
	// BlockExtensions lists file name endings to block, with the dot:
	// ".exe", ".msi", ".tar.gz". Compared case-insensitively with the
	// Content-Disposition filename and the last segment of the URL path.
	BlockExtensions []string `yaml:"block_extensions"`
	// MaxBytes blocks a response whose Content-Length is larger (0: no limit).
	// A response without Content-Length (chunked) passes this check.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Validate reports problems with c; paths are relative to c.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	for i, m := range c.BlockMIME {
		if _, err := parseMIME(m); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("block_mime[%d]", i), "%v", err))
		}
	}
	for i, e := range c.BlockExtensions {
		if msg := checkExt(e); msg != "" {
			errs = append(errs, field.Errorf(fmt.Sprintf("block_extensions[%d]", i), "%s", msg))
		}
	}
	if c.MaxBytes < 0 {
		errs = append(errs, field.Errorf("max_bytes", "must not be negative"))
	}
	return errs
}

func parseMIME(m string) (string, error) {
	m = strings.ToLower(strings.TrimSpace(m))
	typ, sub, ok := strings.Cut(m, "/")
	if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(m, " ;,\t") || strings.Count(m, "/") != 1 {
		return "", fmt.Errorf("%q is not a media type (want type/subtype or type/*)", m)
	}
	return m, nil
}

func checkExt(e string) string {
	if len(e) < 2 || e[0] != '.' {
		return fmt.Sprintf("%q: want an extension starting with a dot, e.g. .exe", e)
	}
	if strings.ContainsAny(e, "/\\ \t*?") {
		return fmt.Sprintf("%q: an extension has no slashes, spaces or wildcards", e)
	}
	return ""
}

// Checker is a compiled Config. It is immutable and safe for concurrent use.
type Checker struct {
	mimes    map[string]bool // "type/sub" and "type/*"
	exts     []string        // lowercased, with the dot
	maxBytes int64
}

// New compiles cfg; it returns an error when cfg does not validate.
func New(cfg Config) (*Checker, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("filetype: %v", errs[0])
	}
	c := &Checker{mimes: make(map[string]bool), maxBytes: cfg.MaxBytes}
	for _, m := range cfg.BlockMIME {
		m, _ = parseMIME(m)
		c.mimes[m] = true
	}
	for _, e := range cfg.BlockExtensions {
		c.exts = append(c.exts, strings.ToLower(e))
	}
	return c, nil
}

// Check decides on the headers of resp (and the URL of req, which may be nil,
// in which case resp.Request is used) whether the download is blocked, and why:
// a blocked Content-Type (parameters ignored), a blocked extension of the
// Content-Disposition filename (filename* preferred, as in RFC 6266) or of the
// URL path's last segment, or a Content-Length over MaxBytes. reason is a
// short lower-case sentence for the block page and the access log, "" when
// not blocked.
func (c *Checker) Check(req *http.Request, resp *http.Response) (blocked bool, reason string) {
	if c == nil || resp == nil {
		return false, ""
	}
	if req == nil {
		req = resp.Request
	}
	if len(c.mimes) > 0 {
		if ct := mediaType(resp.Header.Get("Content-Type")); ct != "" {
			typ, _, _ := strings.Cut(ct, "/")
			if c.mimes[ct] || c.mimes[typ+"/*"] {
				return true, fmt.Sprintf("file type %s is blocked", ct)
			}
		}
	}
	if len(c.exts) > 0 {
		if name := dispositionFilename(resp.Header.Get("Content-Disposition")); name != "" {
			if ext := c.blockedExt(name); ext != "" {
				return true, fmt.Sprintf("file extension %s is blocked (attachment %q)", ext, name)
			}
		}
		if req != nil && req.URL != nil {
			if name := path.Base(req.URL.Path); name != "/" && name != "." {
				if ext := c.blockedExt(name); ext != "" {
					return true, fmt.Sprintf("file extension %s is blocked (%s)", ext, name)
				}
			}
		}
	}
	if c.maxBytes > 0 {
		n := resp.ContentLength
		if n <= 0 { // a Response built by hand may carry the header only
			n, _ = strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		}
		if n > c.maxBytes {
			return true, fmt.Sprintf("download of %d bytes exceeds the limit of %d bytes", n, c.maxBytes)
		}
	}
	return false, ""
}

// blockedExt returns the blocked extension name ends with, or "".
func (c *Checker) blockedExt(name string) string {
	name = strings.ToLower(strings.TrimRight(name, ". ")) // Windows ignores trailing dots and spaces
	for _, e := range c.exts {
		if strings.HasSuffix(name, e) && len(name) > len(e) {
			return e
		}
	}
	return ""
}

// mediaType returns the lowercased type/subtype of a Content-Type value, "" if
// there is none. A value mime.ParseMediaType rejects for its parameters still
// yields its type.
func mediaType(v string) string {
	if v == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(v); err == nil || mt != "" {
		return mt
	}
	mt, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// dispositionFilename returns the file name of a Content-Disposition value:
// filename* (decoded by the mime package) or filename, with any directory part
// removed; "" if there is none. A header the mime package rejects is searched
// for a filename= parameter by hand, since browsers are lenient too.
func dispositionFilename(v string) string {
	if v == "" {
		return ""
	}
	var name string
	if _, params, err := mime.ParseMediaType(v); err == nil {
		name = params["filename"]
	} else {
		lower := strings.ToLower(v)
		if i := strings.Index(lower, "filename="); i >= 0 {
			name = v[i+len("filename="):]
			name, _, _ = strings.Cut(name, ";")
			name = strings.Trim(strings.TrimSpace(name), `"'`)
		}
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimSpace(name)
}

// TooLargeError is returned by a body wrapped with LimitBody once it exceeds
// MaxBytes.
type TooLargeError struct{ Max int64 }

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("filetype: body exceeds the limit of %d bytes", e.Max)
}

// LimitBody enforces MaxBytes on a body whose length the headers did not
// give (chunked responses pass Check's size test): the returned body yields
// at most MaxBytes bytes and then fails with *TooLargeError, so the proxy
// aborts the response. With no MaxBytes, body is returned as is.
func (c *Checker) LimitBody(body io.ReadCloser) io.ReadCloser {
	if c == nil || c.maxBytes <= 0 || body == nil {
		return body
	}
	return &limitedBody{rc: body, left: c.maxBytes, max: c.maxBytes}
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &TooLargeError{Max: l.max}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed tells "too large" from "exactly the limit"
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), &TooLargeError{Max: l.max}
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
