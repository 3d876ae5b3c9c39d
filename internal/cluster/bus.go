package cluster

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Event kinds broadcast to every node.
const (
	// EventPurge removes one URL (Key, as the cache keys it).
	EventPurge = "purge"
	// EventPurgePrefix removes every URL starting with Key.
	EventPurgePrefix = "purge_prefix"
	// EventInvalidate is an unsafe method's invalidation of Key.
	EventInvalidate = "invalidate"
)

// Event is one broadcast.
type Event struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Data is the kind's own payload, if any.
	Data json.RawMessage `json:"data,omitempty"`
	// Node is the node that sent it; a node ignores its own events.
	Node string `json:"node"`
}

type bus struct {
	c        *Cluster
	mu       sync.RWMutex
	handlers []func(Event)
}

// OnEvent registers f to be called, on the bus's goroutine, for each event another
// node broadcasts. f must not block for long.
func (c *Cluster) OnEvent(f func(Event)) {
	c.bus.mu.Lock()
	c.bus.handlers = append(c.bus.handlers, f)
	c.bus.mu.Unlock()
}

// Broadcast sends ev to every other node. It waits at most the configured timeout
// and reports whether Redis took it.
func (c *Cluster) Broadcast(ctx context.Context, kind, key string) error {
	b, _ := json.Marshal(Event{Kind: kind, Key: key, Node: c.cfg.Node})
	return c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		return c.rdb.Publish(ctx, c.key("events"), b).Err()
	})
}

// Publish queues ev (Kind, Key, Data) to be broadcast to the other nodes; it
// never blocks, and drops the event when Redis is down or the queue is full.
func (c *Cluster) Publish(ev Event) {
	if !c.Up() {
		return
	}
	ev.Node = c.cfg.Node
	c.enqueue(queuedOp{event: &ev})
}

// listen subscribes to the events channel until ctx ends; go-redis resubscribes
// by itself after a lost connection.
func (b *bus) listen(ctx context.Context) {
	ps := b.c.rdb.Subscribe(ctx, b.c.key("events"))
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			var ev Event
			if json.Unmarshal([]byte(m.Payload), &ev) != nil || ev.Node == b.c.cfg.Node {
				continue
			}
			b.mu.RLock()
			hs := b.handlers
			b.mu.RUnlock()
			for _, h := range hs {
				h(ev)
			}
		}
	}
}
