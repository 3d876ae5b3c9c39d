package cache

import (
	"bytes"
	"context"
	"encoding/gob"
	"net/http"
	"strconv"

	"time"
)

// Tier is a second cache level below the memory store, shared by several nodes
// (internal/cluster keeps it on Redis). A miss in memory looks there before the
// origin; what the memory store keeps is written there too; purges and
// invalidations remove it there and, through the tier, on the other nodes.
type Tier interface {
	// Load returns what Store saved under key, nil when there is nothing (or
	// the tier could not answer in time). It is called on a request's path and
	// must bound its wait.
	Load(ctx context.Context, key string) []byte
	// Store saves b under key for ttl; it must not block the caller.
	Store(key string, b []byte, ttl time.Duration)
	// Drop removes key (every key starting with it when prefix); invalidated
	// says an unsafe request removed it, which the other nodes must hear.
	Drop(key string, prefix, invalidated bool)
	// MaxObjectBytes is the largest body the tier takes, TTLCap the longest
	// time it keeps one.
	MaxObjectBytes() int64
	TTLCap() time.Duration
}

type tierHolder struct{ Tier }

// SetTier attaches t below the memory store (nil detaches it).
func (c *Cache) SetTier(t Tier) {
	if t == nil {
		c.tier.Store(nil)
		return
	}
	c.tier.Store(&tierHolder{t})
}

func (c *Cache) currentTier() Tier {
	if h := c.tier.Load(); h != nil {
		return h.Tier
	}
	return nil
}

// tierEntry is a stored response as the tier keeps it: what the entry cannot
// derive from its fields again.
type tierEntry struct {
	Status    int
	Header    http.Header
	Body      []byte
	ReqTime   time.Time
	ResTime   time.Time
	AgeVal    time.Duration
	VaryNames []string
	VaryVals  []string
	KeyHdr    string
}

// fromTier answers a memory miss from the tier when it holds a variant usable for
// this request: the variants are put in the memory store and the response is a hit
// of the shared tier. It returns nil otherwise.
func (x *exchange) fromTier(kb []byte) *http.Response {
	t := x.c.currentTier()
	if t == nil {
		return nil
	}
	key := string(kb)
	// Register as a fill, so that an invalidation of key while the tier
	// answers keeps what it answered out of the memory store.
	gen := x.c.store.beginFill(key)
	defer x.c.store.endFill(key)
	b := t.Load(x.req.Context(), key)
	if b == nil {
		return nil
	}
	var tes []tierEntry
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&tes) != nil {
		return nil
	}
	var vs []*entry
	for i := len(tes) - 1; i >= 0; i-- { // put oldest first: the first variant is the newest
		te := &tes[i]
		e := &entry{status: te.Status, header: te.Header, reqTime: te.ReqTime, resTime: te.ResTime,
			varyNames: te.VaryNames, varyVals: te.VaryVals, keyHdr: te.KeyHdr}
		if e.header == nil {
			e.header = http.Header{}
		}
		e.header["Age"] = []string{strconv.FormatInt(int64(te.AgeVal/time.Second), 10)}
		e.cc = parseRespCC(e.header)
		x.c.refreshMeta(e)
		if !e.shareable() {
			continue
		}
		e.setBody(te.Body)
		x.c.store.put(key, e, gen, x.c.cfg.MaxVariants, 0)
		vs = append([]*entry{e}, vs...)
	}
	e := x.pick(vs)
	if e == nil || (len(x.req.Header["Authorization"]) > 0 && !e.cc.authOK()) {
		return nil
	}
	now := x.c.now()
	age, life := e.currentAge(now), e.lifetime(x.cp.p.MaxTTL)
	if !x.usable(e, age, life) {
		return nil
	}
	x.c.stats.hits.Add(1)
	x.c.stats.tierHits.Add(1)
	x.st.hit, x.st.fwd, x.st.tier = true, "", true
	return x.respond(e, age, life, false)
}

// toTier writes key's stored variants to the tier (those within its size bound
// and still fresh), for as long as they stay fresh, at most its TTL cap.
func (c *Cache) toTier(key string) {
	t := c.currentTier()
	if t == nil {
		return
	}
	now := c.now()
	var tes []tierEntry
	var ttl time.Duration
	for _, e := range c.store.get(key) {
		if int64(len(e.body)) > t.MaxObjectBytes() || !e.shareable() {
			continue
		}
		left := e.life - e.currentAge(now)
		if left <= 0 {
			continue
		}
		ttl = max(ttl, left)
		tes = append(tes, tierEntry{Status: e.status, Header: e.header, Body: e.body, ReqTime: e.reqTime, ResTime: e.resTime,
			AgeVal: e.ageVal, VaryNames: e.varyNames, VaryVals: e.varyVals, KeyHdr: e.keyHdr})
	}
	if len(tes) == 0 {
		return
	}
	var buf bytes.Buffer
	if gob.NewEncoder(&buf).Encode(tes) != nil {
		return
	}
	t.Store(key, buf.Bytes(), min(ttl, t.TTLCap()))
}

// dropTier removes key from the tier (and so from the other nodes).
func (c *Cache) dropTier(key string, prefix, invalidated bool) {
	if t := c.currentTier(); t != nil {
		t.Drop(key, prefix, invalidated)
	}
}

// PurgeLocal removes rawURL from this node's memory store only (a purge another
// node broadcast); prefix removes every URL starting with it.
func (c *Cache) PurgeLocal(rawURL string, prefix bool) int {
	k, anyPort, ok := purgeKey(rawURL, prefix)
	if !ok {
		return 0
	}
	return c.purge(k, prefix, anyPort)
}
