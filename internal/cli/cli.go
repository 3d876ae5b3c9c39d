// Package cli is the portcullis command line: run, validate, policy explain, version,
// ca, passwd and report. It is a package (not main) so that tests drive it in-process.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/engine"
	"github.com/portcullis/portcullis/internal/heapfloor"
	"github.com/portcullis/portcullis/policies"
)

const usage = `Portcullis: forward proxy, reverse proxy, cache and DNS from one policy file.

Usage:
  portcullis run [--config FILE] [--log-level LEVEL] [--watch]
                 [--drain-timeout DURATION]
      Serve the policy (default: the embedded default policy, a private forward
      proxy on 127.0.0.1:3128). SIGHUP reloads the policy, SIGUSR1 reopens the
      access log, SIGTERM/SIGINT drain and exit (a second signal exits at once).
      --watch also reloads when the policy file or a list file it names changes
      (polled every 2s); --drain-timeout bounds the drain (default 30s).
  portcullis validate [--config FILE]
      Check a policy; print every problem as FILE:LINE:COL: field: message.
  portcullis policy explain [--config FILE] URL [--client IP] [--user U]
                            [--group G] [--time RFC3339] [--method M] [--door D]
      Show which rule decides a request, and why each rule before it did not.
  portcullis ca create --cert FILE --key FILE
      Create an ECDSA CA for HTTPS inspection (key written with mode 0600).
  portcullis passwd FILE USER
      Add or update USER in an htpasswd FILE (bcrypt). On a terminal it asks
      for the password twice without echo; from a pipe it reads one line.
  portcullis report --log FILE [--log FILE…] [--since 24h|7d|RFC3339]
                    [--format html|csv] [--top N] [--out FILE]
      Report users, client addresses, categories, sites, blocked sites and bytes,
      with requests per hour, from access logs in any format (json, combined,
      squid; .gz too), in bounded memory. A progress bar shows on a terminal.
  portcullis version
`

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "policy":
		if len(args) > 1 && args[1] == "explain" {
			return cmdExplain(args[2:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: portcullis policy explain [--config FILE] URL [flags]")
		return 2
	case "ca":
		return cmdCA(args[1:], stdout, stderr)
	case "passwd":
		return cmdPasswd(args[1:], os.Stdin, stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprint(stdout, versionText())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseInterspersed parses flags that may stand before or after positional
// arguments, returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func loadPolicy(path string) (*config.File, error) {
	return engine.LoadPolicy(path, policies.Default)
}

// printProblems prints a policy error, one problem per line.
func printProblems(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	cfgPath := fs.String("config", "", "policy file (default: the embedded default policy)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	f, err := loadPolicy(*cfgPath)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	// Compile too (lists are loaded), so validate says what run would, warnings
	// (malformed list lines) included.
	e, err := engine.New(engine.Options{PolicyPath: *cfgPath, DefaultPolicy: policies.Default, Logger: slog.New(newWarnHandler(stderr)), DryRun: true})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	for _, w := range e.Warnings() {
		fmt.Fprintln(stderr, w)
	}
	e.Close()
	for _, w := range f.Warnings() {
		fmt.Fprintln(stderr, w.Error())
	}
	fmt.Fprintf(stdout, "%s: OK (%d rules, %d lists)\n", f.Name, len(f.Policy.Rules), len(f.Policy.Lists))
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("unknown log level %q (debug, info, warn, error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	cfgPath := fs.String("config", "", "policy file (default: the embedded default policy)")
	level := fs.String("log-level", "info", "operational log level: debug, info, warn, error")
	watch := fs.Bool("watch", false, "reload when the policy file or a list file it names changes (polled every 2s)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long in-flight requests and tunnels may finish before they are cut")
	floorFlag := fs.String("heap-floor", DefaultHeapFloor, "let the heap grow to this size (16MiB, 1GiB) before the garbage collector runs; 0 for Go's default pace (ignored when GOGC is set)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	if *drain <= 0 {
		fmt.Fprintln(stderr, "portcullis run: --drain-timeout must be positive")
		return 2
	}
	floor, err := parseHeapFloor(*floorFlag)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis run: --heap-floor:", err)
		return 2
	}
	logger, err := newLogger(stderr, *level)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	e, err := engine.New(engine.Options{PolicyPath: *cfgPath, DefaultPolicy: policies.Default, Logger: logger,
		Watch: *watch, DrainTimeout: *drain})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if limit := e.MemoryLimitHint(); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	if os.Getenv("GOGC") == "" {
		defer heapfloor.Start(floor).Stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, controlSignals()...)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopping := false
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(stderr, "portcullis:", err)
				return 1
			}
			return 0
		case s := <-sigs:
			switch {
			case isReload(s):
				_ = e.Reload() // logged by the engine; the old policy keeps serving on error
			case isReopenLogs(s):
				e.ReopenLogs()
			default:
				if stopping {
					logger.Warn("second signal: exiting without waiting for in-flight requests")
					return 1
				}
				stopping = true
				logger.Info("draining in-flight requests; send the signal again to exit at once", "signal", s.String())
				cancel()
			}
		}
	}
}

func cmdCA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: portcullis ca create --cert FILE --key FILE")
		return 2
	}
	fs := newFlags("ca create", stderr)
	cert := fs.String("cert", "portcullis-ca.pem", "where to write the CA certificate (PEM)")
	key := fs.String("key", "portcullis-ca.key", "where to write the CA private key (PEM, mode 0600)")
	if _, err := parseInterspersed(fs, args[1:]); err != nil {
		return 2
	}
	if _, err := certs.CreateCA(*cert, *key, certs.InspectionCAName); err != nil {
		fmt.Fprintln(stderr, "portcullis ca create:", err)
		return 1
	}
	fmt.Fprintf(stdout, "CA certificate: %s\nCA key:         %s (keep it secret; mode 0600)\n", *cert, *key)
	fmt.Fprint(stdout, caSnippet(*cert, *key))
	return 0
}

// caSnippet is what `ca create` tells the user to put in the policy: the
// forward fields that load the CA (absolute paths, so the snippet works
// wherever the policy file is) and ca_clients, which turns a blocked HTTPS
// site into the block page for the clients that trust the CA. Pasted into a
// policy as it is, it validates (TestCACreateSnippetValidates).
func caSnippet(cert, key string) string {
	if a, err := filepath.Abs(cert); err == nil {
		cert = a
	}
	if a, err := filepath.Abs(key); err == nil {
		key = a
	}
	return fmt.Sprintf(`
Add this to the policy's forward section (then portcullis validate, and reload):

forward:
  ca_cert: %q
  ca_key: %q
  # Clients whose browsers trust the CA: a blocked HTTPS site shows them the
  # block page instead of a browser error. Replace with your networks.
  ca_clients: ["10.0.0.0/8"]

Students and staff install the certificate from http://PROXY:PORT/ca (the proxy's
own port, for clients in allow_clients, no sign-in). To inspect allowed sites too,
give rules "action: inspect".
`, cert, key)
}

func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("passwd", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: portcullis passwd FILE USER   (asked twice on a terminal; one line from a pipe)")
		return 2
	}
	var pass string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pass, err = readNewPassword(f, stderr, pos[1])
		if err != nil {
			fmt.Fprintln(stderr, "portcullis passwd:", err)
			return 1
		}
	} else {
		// From a pipe or a file: one line, as scripts write it.
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "portcullis passwd: reading the password:", err)
			return 1
		}
		pass = strings.TrimRight(line, "\r\n")
	}
	if pass == "" {
		fmt.Fprintln(stderr, "portcullis passwd: empty password")
		return 1
	}
	if err := auth.SetPassword(pos[0], pos[1], pass); err != nil {
		fmt.Fprintln(stderr, "portcullis passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: password set for %s\n", pos[0], pos[1])
	fmt.Fprintln(stdout, "A running portcullis picks the change up on SIGHUP (kill -HUP PID, systemctl reload portcullis), or by itself with run --watch.")
	return 0
}

// readNewPassword asks for user's new password twice on the terminal tty,
// without echo, prompting on prompt (standard error: standard output may be
// redirected).
func readNewPassword(tty *os.File, prompt io.Writer, user string) (string, error) {
	fmt.Fprintf(prompt, "New password for %s: ", user)
	first, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if len(first) == 0 {
		return "", nil
	}
	fmt.Fprintf(prompt, "Retype the password for %s: ", user)
	second, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if string(first) != string(second) {
		return "", errors.New("the passwords do not match; nothing changed")
	}
	return string(first), nil
}

// DefaultHeapFloor is `portcullis run`'s --heap-floor: how large the heap may grow
// before the garbage collector runs (internal/heapfloor).
const DefaultHeapFloor = "16MiB"

// parseHeapFloor reads --heap-floor: a size such as 32MiB, or 0 for none.
func parseHeapFloor(s string) (int64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	n, err := config.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (write it as 32MiB, 1GiB, or 0 for none)", s)
	}
	return n, nil
}
