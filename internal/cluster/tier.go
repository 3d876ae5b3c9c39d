package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// opsQueue bounds the operations waiting for Redis (cache-tier writes and
// deletes, published events); beyond it they are dropped (the memory cache has
// the response anyway; an event is best effort).
const opsQueue = 1024

// CacheTier is the shared cache tier on Redis (internal/cache's Tier): a memory
// miss on one node finds there what another node stored.
type CacheTier struct {
	c *Cluster
}

type queuedOp struct {
	key         string
	val         []byte // nil: delete
	ttl         time.Duration
	prefix      bool
	invalidated bool
	event       *Event // set: publish it (nothing else)
}

// CacheTier returns the cluster's shared cache tier.
func (c *Cluster) CacheTier() *CacheTier { return &CacheTier{c: c} }

func (t *CacheTier) redisKey(key string) string { return t.c.key("c", key) }

// Load returns what another node stored under key, waiting at most the
// configured timeout; nil when Redis is down, slow or has nothing.
func (t *CacheTier) Load(ctx context.Context, key string) []byte {
	if !t.c.Up() {
		return nil
	}
	var b []byte
	err := t.c.try(ctx, t.c.cfg.Redis.Timeout, func(ctx context.Context) error {
		var err error
		b, err = t.c.rdb.Get(ctx, t.redisKey(key)).Bytes()
		return err
	})
	if err != nil {
		return nil
	}
	return b
}

// Store queues b to be written under key for ttl; it never blocks.
func (t *CacheTier) Store(key string, b []byte, ttl time.Duration) {
	if ttl <= 0 || !t.c.Up() {
		return
	}
	t.c.enqueue(queuedOp{key: key, val: b, ttl: ttl})
}

// Drop removes key (every key starting with it when prefix). A purge (an admin
// request) waits for Redis, so that the purge broadcast that follows cannot be
// answered from the tier; an invalidation (on a request's path) is queued, and
// broadcast to the other nodes' memory caches once removed.
func (t *CacheTier) Drop(key string, prefix, invalidated bool) {
	op := queuedOp{key: key, prefix: prefix, invalidated: invalidated}
	if invalidated {
		t.c.enqueue(op)
		return
	}
	t.c.runOp(context.Background(), op)
}

// MaxObjectBytes is the largest body the tier takes.
func (t *CacheTier) MaxObjectBytes() int64 { return t.c.cfg.Cache.MaxObjectBytes }

// TTLCap is the longest time a response stays in the tier.
func (t *CacheTier) TTLCap() time.Duration { return t.c.cfg.Cache.TTLCap }

func (c *Cluster) enqueue(op queuedOp) {
	select {
	case c.ops <- op:
	default:
		c.opsDropped.Add(1)
	}
}

// opsLoop runs the queued operations until ctx ends.
func (c *Cluster) opsLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-c.ops:
			c.runOp(ctx, op)
		}
	}
}

func (c *Cluster) runOp(ctx context.Context, op queuedOp) {
	if op.event != nil {
		b, _ := json.Marshal(op.event)
		_ = c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
			return c.rdb.Publish(ctx, c.key("events"), b).Err()
		})
		return
	}
	k := c.key("c", op.key)
	switch {
	case op.val != nil:
		_ = c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
			return c.rdb.Set(ctx, k, op.val, op.ttl).Err()
		})
	case op.prefix:
		_ = c.do(ctx, 10*backgroundTimeout, func(ctx context.Context) error {
			return c.deletePrefix(ctx, k)
		})
	default:
		_ = c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
			return c.rdb.Del(ctx, k).Err()
		})
	}
	if op.invalidated {
		_ = c.Broadcast(ctx, EventInvalidate, op.key)
	}
}

// deletePrefix deletes every key starting with prefix, on every master.
func (c *Cluster) deletePrefix(ctx context.Context, prefix string) error {
	match := escapeGlob(prefix) + "*"
	del := func(ctx context.Context, r *redis.Client) error {
		it := r.Scan(ctx, 0, match, 500).Iterator()
		for it.Next(ctx) {
			if err := r.Del(ctx, it.Val()).Err(); err != nil {
				return err
			}
		}
		return it.Err()
	}
	switch r := c.rdb.(type) {
	case *redis.ClusterClient:
		return r.ForEachMaster(ctx, del)
	case *redis.Client:
		return del(ctx, r)
	}
	return nil
}

// escapeGlob escapes Redis glob characters in s.
func escapeGlob(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
