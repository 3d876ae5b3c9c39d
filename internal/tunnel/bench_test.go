package tunnel

import (
	"io"
	"net"
	"sync"
	"testing"
)

// BenchmarkRelayBulk measures bulk throughput (b.SetBytes: 1 MiB per
// iteration) the way shared/bench's scenario e does: the client asks with
// one byte, the origin answers 1 MiB, again and again over one connection.
// "direct" is client→origin, "tunnel" goes through Set.Relay (both legs
// *net.TCPConn, so it splices), "iocopy" through a goroutine per direction
// running io.Copy (what goproxy does, and Go's own splice). The "-reno"
// modes put every socket on reno from its first byte: with the usual bbr
// and no fq qdisc, the kernel paces each socket's sending with a timer,
// which on some machines is most of the chain's CPU (forward.tcp_congestion).
func BenchmarkRelayBulk(b *testing.B) {
	for _, mode := range []string{"direct", "tunnel", "iocopy", "direct-reno", "tunnel-reno"} {
		b.Run(mode, func(b *testing.B) {
			var client, origin net.Conn
			var wg sync.WaitGroup
			switch mode {
			case "direct":
				client, origin = pair(b)
			case "direct-reno":
				client, origin = pairCC(b, "reno")
			case "tunnel":
				s := NewSet()
				var done <-chan result
				client, origin, done = relay(b, s, nil, 0)
				defer func() { _ = client.Close(); _ = origin.Close(); <-done }()
			case "tunnel-reno":
				var pc, pu net.Conn
				client, pc = pairCC(b, "reno")
				pu, origin = pairCC(b, "reno")
				done := make(chan struct{})
				go func() { defer close(done); _, _, _ = NewSet().Relay(pc, pu, nil, 0) }()
				defer func() { _ = client.Close(); _ = origin.Close(); <-done }()
			case "iocopy":
				var pc, pu net.Conn
				client, pc = pair(b)
				pu, origin = pair(b)
				wg.Add(2)
				go func() { defer wg.Done(); _, _ = io.Copy(pu, pc); _ = pu.Close() }()
				go func() { defer wg.Done(); _, _ = io.Copy(pc, pu); _ = pc.Close() }()
				defer func() { _ = client.Close(); _ = origin.Close(); wg.Wait() }()
			}
			go serveMiB(origin)
			buf := make([]byte, 256<<10)
			ask := []byte{'g'}
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := client.Write(ask); err != nil {
					b.Fatal(err)
				}
				for left := 1 << 20; left > 0; {
					n, err := client.Read(buf[:min(left, len(buf))])
					if err != nil {
						b.Fatal(err)
					}
					left -= n
				}
			}
			if cpu := processCPU() - cpu0; cpu > 0 {
				// the whole chain's CPU (client, origin and relay are all
				// this process): kernel TCP work included
				b.ReportMetric(cpu.Seconds()*1024/float64(b.N), "cpu-s/GiB")
			}
		})
	}
}

// serveMiB answers every byte read from c with 1 MiB, until c ends.
func serveMiB(c net.Conn) {
	body := make([]byte, 1<<20)
	ask := make([]byte, 1)
	for {
		if _, err := c.Read(ask); err != nil {
			return
		}
		if _, err := c.Write(body); err != nil {
			return
		}
	}
}
