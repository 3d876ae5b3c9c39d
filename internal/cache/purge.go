package cache

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// PurgeHandler returns the admin handler that removes stored responses:
//
//	POST|DELETE|PURGE ?url=http://host/path?query   removes that URL (all its variants)
//	POST|DELETE|PURGE ?prefix=http://host/static/   removes every URL starting so
//
// URLs are given as the cache keys them: scheme, host (default port dropped),
// path and query without the policy's ignored parameters. A URL without a port
// also removes the URLs that differ from it only by naming one (what a reverse
// door on a non-default port stores, keyed by the Host its clients send), so
// http://site/x removes http://site:8080/x too. It answers {"purged": N} with
// the number of URLs removed.
func (c *Cache) PurgeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodDelete, "PURGE":
		default:
			w.Header().Set("Allow", "POST, DELETE, PURGE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		raw, prefix := q.Get("url"), false
		if raw == "" {
			raw, prefix = q.Get("prefix"), true
		}
		k, anyPort, ok := purgeKey(raw, prefix)
		if !ok {
			http.Error(w, "want ?url= or ?prefix= with an absolute http(s) URL", http.StatusBadRequest)
			return
		}
		c.dropTier(k, prefix, false)
		n := c.purge(k, prefix, anyPort)
		c.log.Info("cache: purge", "key", k, "prefix", prefix, "purged", n)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Purged int `json:"purged"`
		}{n})
	})
}

// Purge removes the stored responses of one URL (as keyed; see PurgeHandler) and
// reports whether there were any.
func (c *Cache) Purge(rawURL string) bool {
	k, anyPort, ok := purgeKey(rawURL, false)
	if !ok {
		return false
	}
	c.dropTier(k, false, false)
	return c.purge(k, false, anyPort) > 0
}

// PurgePrefix removes every URL starting with prefix (see PurgeHandler) and
// returns how many.
func (c *Cache) PurgePrefix(prefix string) int {
	k, anyPort, ok := purgeKey(prefix, true)
	if !ok {
		return 0
	}
	c.dropTier(k, true, false)
	return c.purge(k, true, anyPort)
}

// purge removes key k (or the keys under prefix k) from the memory store;
// anyPort also those that differ from it only by naming a port.
func (c *Cache) purge(k string, prefix, anyPort bool) int {
	switch {
	case prefix:
		return c.store.removePrefix(k, anyPort)
	case anyPort:
		return c.store.removeAnyPort(k)
	case c.store.remove(k):
		return 1
	}
	return 0
}

// purgeKey returns the key (or key prefix) raw names, and whether raw has no
// port (so that keys naming one match too).
func purgeKey(raw string, prefix bool) (key string, anyPort, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, false
	}
	scheme, host := normOrigin(u.Scheme, u.Host)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(path)
	if u.RawQuery != "" || (!prefix && u.ForceQuery) {
		b.WriteByte('?')
		b.WriteString(u.RawQuery)
	}
	_, port := splitPort(host)
	return b.String(), port == "", true
}
