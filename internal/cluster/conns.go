package cluster

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Connection counts: one hash per scope (a door) and client address, a field per
// node and listener holding "count:unix-seconds". A node rewrites its non-zero
// fields every connRefresh; fields older than connStale are a dead node's and are
// ignored.
const (
	connRefresh = 5 * time.Second
	connStale   = 3 * connRefresh
	connTick    = 250 * time.Millisecond
)

// ConnCounts shares per-client connection counts between nodes (internal/accept's
// SharedCounts): Set and Others never wait on Redis; a sync loop writes this
// node's changes at once (nudged) and reads the others' back.
type ConnCounts struct {
	c     *Cluster
	nudge chan struct{}

	mu    sync.Mutex
	keys  map[string]*connKey
	dirty map[string]bool
}

type connKey struct {
	own    map[string]int // this node's listeners → open connections
	others map[string]int // other fields → count, as Redis last said
	synced time.Time      // this node's fields last written
}

func newConnCounts(c *Cluster) *ConnCounts {
	return &ConnCounts{c: c, nudge: make(chan struct{}, 1), keys: map[string]*connKey{}, dirty: map[string]bool{}}
}

// ConnCounts returns the cluster's shared connection counts.
func (c *Cluster) ConnCounts() *ConnCounts { return c.conns }

func (cc *ConnCounts) field(listener string) string { return cc.c.cfg.Node + " " + listener }

func connRedisKey(scope string, addr netip.Addr) string { return "conn:" + scope + "|" + addr.String() }

// Set records that listener (of scope) has n connections open from addr.
func (cc *ConnCounts) Set(scope, listener string, addr netip.Addr, n int) {
	key := connRedisKey(scope, addr)
	cc.mu.Lock()
	k := cc.keys[key]
	if k == nil {
		k = &connKey{own: map[string]int{}, others: map[string]int{}}
		cc.keys[key] = k
	}
	k.own[cc.field(listener)] = n
	cc.dirty[key] = true
	cc.mu.Unlock()
	select {
	case cc.nudge <- struct{}{}:
	default:
	}
}

// Others is how many connections addr has open in scope on the other listeners
// of this node and on the other nodes, as last known; 0 while Redis is down.
func (cc *ConnCounts) Others(scope, listener string, addr netip.Addr) int {
	if !cc.c.Up() {
		return 0
	}
	self := cc.field(listener)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	k := cc.keys[connRedisKey(scope, addr)]
	if k == nil {
		return 0
	}
	n := 0
	for f, v := range k.own {
		if f != self {
			n += v
		}
	}
	for f, v := range k.others {
		if _, mine := k.own[f]; !mine {
			n += v
		}
	}
	return n
}

func (cc *ConnCounts) syncLoop(ctx context.Context) {
	cc.c.nudgedLoop(ctx, connTick, cc.nudge, cc.sync)
}

// sync writes the changed and due fields of this node and reads the keys back.
func (cc *ConnCounts) sync(ctx context.Context, now time.Time) {
	type op struct {
		key  string
		own  map[string]int
		read *redis.MapStringStringCmd
	}
	var ops []*op
	cc.mu.Lock()
	for key, k := range cc.keys {
		total := 0
		for _, v := range k.own {
			total += v
		}
		due := total > 0 && now.Sub(k.synced) >= connRefresh
		if !cc.dirty[key] && !due {
			if total == 0 && len(k.others) == 0 {
				delete(cc.keys, key)
			}
			continue
		}
		own := make(map[string]int, len(k.own))
		for f, v := range k.own {
			own[f] = v
		}
		ops = append(ops, &op{key: key, own: own})
		k.synced = now
	}
	clear(cc.dirty)
	cc.mu.Unlock()
	if len(ops) == 0 {
		return
	}
	stamp := strconv.FormatInt(now.Unix(), 10)
	err := cc.c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		_, err := cc.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, o := range ops {
				rk := cc.c.key(o.key)
				for f, v := range o.own {
					if v > 0 {
						p.HSet(ctx, rk, f, strconv.Itoa(v)+":"+stamp)
					} else {
						p.HDel(ctx, rk, f)
					}
				}
				p.Expire(ctx, rk, connStale)
				o.read = p.HGetAll(ctx, rk)
			}
			return nil
		})
		return err
	})
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, o := range ops {
		k := cc.keys[o.key]
		if k == nil {
			continue
		}
		if err != nil || o.read.Err() != nil {
			cc.dirty[o.key] = true // write again next time
			k.synced = time.Time{}
			continue
		}
		clear(k.others)
		for f, v := range o.read.Val() {
			cnt, ts, ok := strings.Cut(v, ":")
			n, err1 := strconv.Atoi(cnt)
			sec, err2 := strconv.ParseInt(ts, 10, 64)
			if !ok || err1 != nil || err2 != nil || now.Sub(time.Unix(sec, 0)) > connStale {
				continue
			}
			k.others[f] = n
		}
	}
}
