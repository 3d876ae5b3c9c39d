//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// ptyRun runs the binary with args on a new pseudo-terminal (its standard
// input, output and error) and returns a handle to type into it and read what
// it shows.
type ptyRun struct {
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
}

func startOnPTY(t *testing.T, args ...string) *ptyRun {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pseudo-terminals (/dev/ptmx) are required in CI: %v", err)
		}
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	p := &ptyRun{master: master, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once the program has exited
				return
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

// waitFor waits until the terminal has shown s.
func (p *ptyRun) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.shown(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", s, p.shown())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *ptyRun) shown() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitNoEcho waits until the program has turned echo off on its terminal
// (TCGETS on the master reads the terminal's settings): what a person typing
// after the prompt meets, without racing the program's own tcsetattr.
func (p *ptyRun) waitNoEcho(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(p.master.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo never turned off; the terminal shows %q", p.shown())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// typeLine types s and Enter once echo is off.
func (p *ptyRun) typeLine(t *testing.T, s string) {
	t.Helper()
	p.waitNoEcho(t)
	if _, err := p.master.Write([]byte(s + "\r")); err != nil {
		t.Fatal(err)
	}
}

// exit waits for the program and everything it showed.
func (p *ptyRun) exit(t *testing.T) (int, string) {
	t.Helper()
	err := p.cmd.Wait()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the terminal output did not end")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), p.shown()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, p.shown()
}

// TestPasswdOnATerminal (issue 17 item 7): on a terminal, `portcullis passwd`
// prompts, does not echo the password, asks for it twice, and says how a running
// proxy picks the change up; different passwords change nothing. On bc21481 it
// showed no prompt and echoed the password.
func TestPasswdOnATerminal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	p := startOnPTY(t, "passwd", file, "alice")
	p.waitFor(t, "New password for alice:")
	p.typeLine(t, "correct-horse-7")
	p.waitFor(t, "Retype")
	p.typeLine(t, "correct-horse-7")
	code, shown := p.exit(t)
	if code != 0 {
		t.Fatalf("exit %d; the terminal showed %q", code, shown)
	}
	if strings.Contains(shown, "correct-horse") {
		t.Errorf("the password was echoed: %q", shown)
	}
	if !strings.Contains(shown, "SIGHUP") || !strings.Contains(shown, "--watch") {
		t.Errorf("no word on how a running proxy picks the change up: %q", shown)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	user, hash, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	if user != "alice" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct-horse-7")) != nil {
		t.Fatalf("htpasswd file %q does not hold alice's new password", b)
	}

	// Two different passwords: refused, the file is left as it was.
	p = startOnPTY(t, "passwd", file, "alice")
	p.waitFor(t, "New password for alice:")
	p.typeLine(t, "first-try")
	p.waitFor(t, "Retype")
	p.typeLine(t, "second-try")
	code, shown = p.exit(t)
	if code == 0 || !strings.Contains(shown, "do not match") || strings.Contains(shown, "-try") {
		t.Errorf("mismatched passwords: exit %d, the terminal showed %q", code, shown)
	}
	if after, _ := os.ReadFile(file); string(after) != string(b) {
		t.Errorf("mismatched passwords changed the file: %q", after)
	}
}
