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
// path and query without the policy's ignored parameters. It answers
// {"purged": N} with the number of URLs removed.
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
		k, ok := purgeKey(raw, prefix)
		if !ok {
			http.Error(w, "want ?url= or ?prefix= with an absolute http(s) URL", http.StatusBadRequest)
			return
		}
		c.dropTier(k, prefix, false)
		var n int
		if prefix {
			n = c.store.removePrefix(k)
		} else if c.store.remove(k) {
			n = 1
		}
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
	k, ok := purgeKey(rawURL, false)
	if ok {
		c.dropTier(k, false, false)
	}
	return ok && c.store.remove(k)
}

// PurgePrefix removes every URL starting with prefix and returns how many.
func (c *Cache) PurgePrefix(prefix string) int {
	k, ok := purgeKey(prefix, true)
	if !ok {
		return 0
	}
	c.dropTier(k, true, false)
	return c.store.removePrefix(k)
}

func purgeKey(raw string, prefix bool) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
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
	return b.String(), true
}
