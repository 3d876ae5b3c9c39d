package cache

import (
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/relay"
)

func itoa(i int) string { return strconv.Itoa(i) }

// canonical returns the canonical form of a header name.
func canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

func fieldErrors(errs []field.Error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// stripHop removes hop-by-hop fields, including those named in Connection,
// from h: they are never stored nor merged (RFC 9111 §3.1, RFC 9110 §7.6.1).
// The list is relay's, the one of the whole tree.
func stripHop(h http.Header) { relay.RemoveHopByHop(h) }
