// Package redistest starts real redis-server processes on loopback for tests: a
// standalone server or a Redis Cluster of several masters. Each process runs in the
// test's temporary folder and is killed when the test ends. Without redis-server
// the test is skipped, except under CI=true, where it fails.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	// Addr is its 127.0.0.1:port address.
	Addr string
	dir  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB
}

// Need returns the path of name, skipping the test when it is missing (failing
// under CI=true).
func Need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (.ci/run installs redis-server): %v", name, err)
		}
		t.Skipf("%s not installed (apt-get install redis-server): %v", name, err)
	}
	return p
}

// freePort returns a loopback port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts a standalone server with extra redis-server arguments.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	Need(t, "redis-server")
	dir := t.TempDir()
	for try := 0; ; try++ {
		s := &Server{dir: dir, t: t}
		port := freePort(t)
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--loglevel", "warning"}, extra...)
		if err := s.start(); err != nil {
			if try < 5 {
				continue // the port was taken meanwhile
			}
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
}

func (s *Server) start() error {
	s.cmd = exec.Command("redis-server", s.args...)
	s.cmd.Dir = s.dir
	log, err := os.OpenFile(filepath.Join(s.dir, "redis-"+strings.ReplaceAll(s.Addr, ":", "_")+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return err
	}
	log.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := ping(s.Addr); err == nil {
			return nil
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redis-server on %s did not answer PING", s.Addr)
}

// Stop kills the server (no-op if stopped).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for try := 0; try < 50; try++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal(err)
}

// ping sends PING over RESP and waits for +PONG.
func ping(addr string) error {
	return Command(addr, "PING")
}

// Command sends one command and fails on an error reply.
func Command(addr string, args ...string) error {
	_, err := Do(addr, args...)
	return err
}

// Do sends one command and returns the first line of the reply.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis %s: %s", args[0], strings.TrimSpace(line[1:]))
	}
	return strings.TrimSpace(line), nil
}

// Cluster is a Redis Cluster of masters with no replicas.
type Cluster struct {
	// Servers are its masters.
	Servers []*Server
}

// Addrs are the masters' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, s := range c.Servers {
		a = append(a, s.Addr)
	}
	return a
}

// StartCluster starts n cluster-enabled servers and joins them into a cluster with
// redis-cli --cluster create, waiting until the cluster says ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	Need(t, "redis-cli")
	c := &Cluster{}
	for range n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(freePort(t))+".conf",
			"--cluster-node-timeout", "2000")
		c.Servers = append(c.Servers, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Servers {
		for {
			info, err := clusterInfo(s.Addr)
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster on %s not ok: %v %s", s.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

func clusterInfo(addr string) (string, error) {
	out, err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", addr[strings.LastIndexByte(addr, ':')+1:], "cluster", "info").CombinedOutput()
	return string(out), err
}
