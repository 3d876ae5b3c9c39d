package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// NodeInfo is what a node says of itself in the registry.
type NodeInfo struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Policy identifies the policy the node runs (a digest of the file).
	Policy string `json:"policy"`
	// PolicyLoaded is when that policy was loaded.
	PolicyLoaded time.Time `json:"policy_loaded"`
	// ReloadOK is false when the node's last reload failed.
	ReloadOK bool `json:"reload_ok"`
	// ReloadError is the last reload's error, if any.
	ReloadError string `json:"reload_error,omitempty"`
	// Version is the binary's version.
	Version string `json:"version,omitempty"`
	// Started is when the node started.
	Started time.Time `json:"started"`
	// Seen is the node's last heartbeat.
	Seen time.Time `json:"seen"`
}

// Peer is a node as another sees it.
type Peer struct {
	NodeInfo
	// Alive is true when the node's last heartbeat is under NodeTTL old.
	Alive bool `json:"alive"`
	// Self marks this node.
	Self bool `json:"self"`
	// OlderPolicy flags a node whose policy differs from the one loaded last
	// among the live nodes.
	OlderPolicy bool `json:"older_policy"`
}

func (c *Cluster) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		c.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat writes this node's entry into the registry hash.
func (c *Cluster) heartbeat(ctx context.Context) {
	info := NodeInfo{Node: c.cfg.Node, ReloadOK: true}
	if f := c.info.Load(); f != nil {
		info = (*f)()
		info.Node = c.cfg.Node
	}
	info.Started = c.started
	info.Seen = time.Now()
	b, _ := json.Marshal(info)
	_ = c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		return c.rdb.HSet(ctx, c.key("nodes"), c.cfg.Node, b).Err()
	})
	if peers, err := c.Peers(ctx); err == nil {
		c.peers.Store(&peers)
		n := int64(0)
		for _, p := range peers {
			if p.Alive {
				n++
			}
		}
		c.alive.Store(n)
	}
}

// Peers lists the nodes in the registry, this one included, alive or recently
// gone (entries older than a minute are dropped from the registry).
func (c *Cluster) Peers(ctx context.Context) ([]Peer, error) {
	var m map[string]string
	err := c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		var err error
		m, err = c.rdb.HGetAll(ctx, c.key("nodes")).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var peers []Peer
	var stale []string
	for name, v := range m {
		var p Peer
		if json.Unmarshal([]byte(v), &p.NodeInfo) != nil {
			continue
		}
		age := now.Sub(p.Seen)
		if age > time.Minute {
			stale = append(stale, name)
			continue
		}
		p.Alive = age < NodeTTL
		p.Self = name == c.cfg.Node
		peers = append(peers, p)
	}
	if len(stale) > 0 {
		_ = c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
			return c.rdb.HDel(ctx, c.key("nodes"), stale...).Err()
		})
	}
	// The newest policy among live nodes; others running another are flagged.
	var newest NodeInfo
	for _, p := range peers {
		if p.Alive && p.PolicyLoaded.After(newest.PolicyLoaded) {
			newest = p.NodeInfo
		}
	}
	for i := range peers {
		peers[i].OlderPolicy = peers[i].Alive && newest.Policy != "" && peers[i].Policy != newest.Policy
	}
	slices.SortFunc(peers, func(a, b Peer) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return peers, nil
}

// LastPeers is the node list as of the last heartbeat (no I/O; nil before the
// first one).
func (c *Cluster) LastPeers() []Peer {
	if p := c.peers.Load(); p != nil {
		return *p
	}
	return nil
}

// Status is the cluster as the status page shows it.
type Status struct {
	// Node is this node's name.
	Node string `json:"node"`
	// Redis lists the addresses and Mode the mode.
	Redis []string `json:"redis"`
	Mode  string   `json:"mode"`
	// Up is true while Redis answers; when false every shared part runs on this
	// node's own state.
	Up bool `json:"up"`
	// LastError is what last made Redis unreachable.
	LastError string `json:"last_error,omitempty"`
	// Failures counts the outages since start.
	Failures uint64 `json:"failures"`
	// Shared lists what is shared.
	Shared []string `json:"shared"`
	// Nodes are the nodes in the registry at the last heartbeat.
	Nodes []Peer `json:"nodes"`
}

// Status reports the cluster's state without I/O.
func (c *Cluster) Status() Status {
	return Status{Node: c.cfg.Node, Redis: c.cfg.Redis.Addrs, Mode: c.cfg.Redis.Mode, Up: c.Up(), LastError: c.LastError(),
		Failures: c.Failures(), Shared: c.cfg.Share, Nodes: c.LastPeers()}
}
