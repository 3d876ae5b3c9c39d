//go:build linux

package forward

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestIdleTunnelsHoldOnlyTheirSockets opens tunnels to an echo server, moves a
// byte through each, leaves them idle and checks that the process then holds about
// 4 fds per tunnel (client, proxy's client side, proxy's upstream side, echo side):
// no splice pipes (2 fds each, one per direction) stay parked in idle tunnels.
// Then every tunnel must still relay.
func TestIdleTunnelsHoldOnlyTheirSockets(t *testing.T) {
	echo := startEcho(t)
	tp := startProxy(t, Options{Config: connectPorts(t, "tcp://"+echo.Addr().String())})
	const n = 64
	before := openFDs(t)
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		resp, c, br := tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: status %d", i, resp.StatusCode)
		}
		conns[i], readers[i] = c, br
		roundTrip(t, c, br, "a\n")
	}
	// Pipes given back go to the runtime's pool and are closed when collected, so
	// poll (with GC) until the count settles, with a deadline.
	perTunnel := func() float64 { return float64(openFDs(t)-before) / n }
	deadline := time.Now().Add(10 * time.Second)
	for perTunnel() > 4.5 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(50 * time.Millisecond) // polling an external effect, with a deadline
	}
	if got := perTunnel(); got > 4.5 {
		t.Fatalf("%.2f fds per idle tunnel in this process, want 4 (no parked splice pipes)", got)
	}
	t.Logf("%.2f fds per idle tunnel (both ends in this process)", perTunnel())
	for i, c := range conns {
		roundTrip(t, c, readers[i], "b\n")
		_ = c.Close()
	}
}
