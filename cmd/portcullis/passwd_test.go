package main

import (
	"bufio"
	"errors"
	"io"
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

func (p *ptyRun) typeLine(t *testing.T, s string) {
	t.Helper()
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

// TestWarnsWhenNoUserCanSignIn: validate and run warn, naming the field, when the
// htpasswd file has no user (every sign-in would fail); a pipe still sets a
// password from one line, and the warning goes away.
func TestWarnsWhenNoUserCanSignIn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(file, []byte("# users are added with portcullis passwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte("forward:\n  listen: [\"127.0.0.1:0\"]\n  auth: {htpasswd_file: htpasswd}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := policy + ":3:25: forward.auth.htpasswd_file: warning: "
	out, errOut, code := runCLI(t, "validate", "--config", policy)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(errOut, want) || !strings.Contains(errOut, "has no user") {
		t.Fatalf("validate with an empty htpasswd file: exit %d\n%s%s", code, out, errOut)
	}
	run := exec.Command(binary, "run", "--config", policy)
	stderr, err := run.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	logged := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "portcullis running") {
				break
			}
		}
		logged <- strings.Join(lines, "\n")
		io.Copy(io.Discard, stderr)
	}()
	select {
	case lines := <-logged:
		if !strings.Contains(lines, "level=WARN") || !strings.Contains(lines, want) {
			t.Errorf("run with an empty htpasswd file logged no warning before running:\n%s", lines)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not start")
	}
	cmd := exec.Command(binary, "passwd", file, "bob")
	cmd.Stdin = strings.NewReader("from-a-pipe\n")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "password set for bob") {
		t.Fatalf("passwd from a pipe: %v\n%s", err, b)
	}
	if _, errOut, code := runCLI(t, "validate", "--config", policy); code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("validate after adding a user: exit %d\n%s", code, errOut)
	}
}
