package cluster_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cluster"
	"github.com/portcullis/portcullis/internal/cluster/redistest"
)

// node starts a Cluster named name on addrs and stops it when the test ends.
func node(t *testing.T, name, mode string, addrs ...string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cluster.Config{Node: name, Redis: cluster.RedisConfig{Addrs: addrs, Mode: mode, Timeout: 200 * time.Millisecond}}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "Redis reachable", c.Up)
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spread sends requests for one key round-robin over the nodes' limiters for d
// and returns how many were allowed.
func spread(nodes []*cluster.Cluster, rate float64, d time.Duration) int {
	allowed := 0
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		if nodes[i%len(nodes)].Limiter().Allow("route|192.0.2.7", rate, 10, time.Now()) {
			allowed++
		}
		time.Sleep(200 * time.Microsecond)
	}
	return allowed
}

func TestLimiterHoldsAcrossNodes(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var addrs []string
			if mode == "cluster" {
				addrs = redistest.StartCluster(t, 3).Addrs()
			} else {
				addrs = []string{redistest.Start(t).Addr}
			}
			var nodes []*cluster.Cluster
			for _, n := range []string{"a", "b", "c"} {
				nodes = append(nodes, node(t, n, mode, addrs...))
			}
			const rate, secs = 100, 3
			got := spread(nodes, rate, secs*time.Second)
			// The burst (10) at the start, then the rate: rate*secs, within ±10 %.
			t.Logf("three nodes allowed %d requests in %ds at %d/s", got, secs, rate)
			if want := rate * secs; got < want*9/10 || got > want*11/10 {
				t.Fatalf("three nodes allowed %d requests in %ds at %d/s, want %d ±10%%", got, secs, rate, want)
			}
		})
	}
}

func TestLimiterFallsBackWhenRedisDies(t *testing.T) {
	srv := redistest.Start(t)
	a := node(t, "a", "standalone", srv.Addr)
	srv.Stop()
	// Allow never waits on Redis; the first failed sync or heartbeat marks it down.
	waitFor(t, 10*time.Second, "Redis marked down", func() bool { return !a.Up() })
	for i := range 1000 {
		if !a.Limiter().Allow("k", 1, 1, time.Now()) {
			t.Fatalf("request %d refused while Redis is down: the shared limiter must defer to the local one", i)
		}
	}
	srv.Restart()
	waitFor(t, 10*time.Second, "Redis marked up again", a.Up)
	if a.Failures() != 1 {
		t.Fatalf("failures = %d, want 1", a.Failures())
	}
}

func TestBroadcastReachesOtherNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := node(t, "a", "standalone", srv.Addr)
	b := node(t, "b", "standalone", srv.Addr)
	var mu sync.Mutex
	var got []cluster.Event
	b.OnEvent(func(ev cluster.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() })
	a.OnEvent(func(ev cluster.Event) { t.Errorf("a received its own event %+v", ev) })
	// The subscription is made by Run: send until b sees one.
	waitFor(t, 10*time.Second, "b to receive a purge", func() bool {
		if err := a.Broadcast(context.Background(), cluster.EventPurge, "http://site/x"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if ev := got[0]; ev.Kind != cluster.EventPurge || ev.Key != "http://site/x" || ev.Node != "a" {
		t.Fatalf("b got %+v", ev)
	}
}

func TestPeersListsNodesAndFlagsOlderPolicy(t *testing.T) {
	srv := redistest.Start(t)
	t0 := time.Now()
	a := node(t, "a", "standalone", srv.Addr)
	a.SetNodeInfo(func() cluster.NodeInfo { return cluster.NodeInfo{Policy: "old", PolicyLoaded: t0, ReloadOK: true} })
	b := node(t, "b", "standalone", srv.Addr)
	b.SetNodeInfo(func() cluster.NodeInfo {
		return cluster.NodeInfo{Policy: "new", PolicyLoaded: t0.Add(time.Second), ReloadOK: false, ReloadError: "x.yaml:3:1: bad"}
	})
	var peers []cluster.Peer
	waitFor(t, 10*time.Second, "both nodes with their policies", func() bool {
		var err error
		peers, err = a.Peers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(peers) == 2 && peers[0].Policy == "old" && peers[1].Policy == "new"
	})
	if !peers[0].Self || peers[1].Self || !peers[0].Alive || !peers[1].Alive {
		t.Fatalf("self/alive wrong: %+v", peers)
	}
	if !peers[0].OlderPolicy || peers[1].OlderPolicy {
		t.Fatalf("a runs the older policy and must be flagged, b not: %+v", peers)
	}
	if peers[1].ReloadOK || !strings.Contains(peers[1].ReloadError, "bad") {
		t.Fatalf("b's failed reload not shown: %+v", peers[1])
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
