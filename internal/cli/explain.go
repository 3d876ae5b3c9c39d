package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/engine"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/policies"
	"github.com/portcullis/portcullis/rules"
)

func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy explain", stderr)
	cfgPath := fs.String("config", "", "policy file (default: the embedded default policy)")
	client := fs.String("client", "127.0.0.1", "client address")
	user := fs.String("user", "", "authenticated user")
	groups := fs.String("group", "", "comma-separated groups the user belongs to (default with --user: read from the group file or the directory, as the proxy would)")
	at := fs.String("time", "", "when (RFC 3339, e.g. 2026-11-23T10:00:00+01:00; default now)")
	method := fs.String("method", "GET", "HTTP method (CONNECT for a tunnel)")
	door := fs.String("door", "forward", "door: forward, reverse, dns or socks (forward.socks: a CONNECT by the forward door's rules)")
	intercept := fs.Bool("intercept", false, "the request reaches the forward door through forward.intercept (redirected by the firewall): no sign-in")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: portcullis policy explain [--config FILE] URL|HOST:PORT|NAME [--client IP] [--user U] [--group G] [--time T] [--method M] [--door D] [--intercept]")
		return 2
	}
	f, err := factsFor(pos[0], *client, *user, *groups, *at, *method, *door)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis policy explain:", err)
		return 2
	}
	e, err := engine.New(engine.Options{PolicyPath: *cfgPath, DefaultPolicy: policies.Default, Logger: slog.New(slog.DiscardHandler), DryRun: true})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	defer e.Close()
	for _, g := range f.Groups {
		if err := e.CheckGroupName(g); err != nil {
			fmt.Fprintln(stderr, "portcullis policy explain: --group:", strings.TrimPrefix(err.Error(), "group: "))
			return 2
		}
	}
	fmt.Fprintf(stdout, "request: %s %s (door %s, client %s", f.Method, pos[0], f.Door, f.Client)
	if f.User != "" {
		fmt.Fprintf(stdout, ", user %s", f.User)
	}
	fmt.Fprintf(stdout, ", at %s)\n", f.Time.Format(time.RFC3339))
	socksDoor := *door == "socks"
	if socksDoor {
		listening, mode, ports := e.Socks()
		if !listening {
			fmt.Fprintln(stdout, "  note: the policy has no forward.socks listeners: no SOCKS5 door")
		}
		fmt.Fprintf(stdout, "  socks: decided as a CONNECT to %s by the forward door's rules; the server name the client sends is checked again\n", net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))))
		if !slices.Contains(ports, int(f.Port)) {
			fmt.Fprintf(stdout, "verdict: block (rule connect_ports, reason \"port %d is not in forward.connect_ports\")\n", f.Port)
			return 0
		}
		if mode == "none" {
			fmt.Fprintln(stdout, "  sign-in: none (forward.socks.auth: none): evaluated by address and address groups, with no user")
			f.User, f.Groups = "", nil
		}
	}
	if *intercept {
		if f.Door != rules.DoorForward || socksDoor {
			fmt.Fprintln(stderr, "portcullis policy explain: --intercept is for the forward door")
			return 2
		}
		if !e.Intercepts() {
			fmt.Fprintln(stdout, "  note: the policy has no forward.intercept listeners: nothing is intercepted")
		}
		fmt.Fprintln(stdout, "  sign-in: none on intercepted connections (browsers cannot answer 407 there): evaluated by address and address groups, with no user")
		f.User, f.Groups = "", nil
	} else {
		signIn(e, f, *groups != "", socksDoor, stdout)
	}
	v, steps := e.Explain(f)
	for i, s := range steps {
		if s.Matched {
			fmt.Fprintf(stdout, "  %2d. %-28s MATCHED\n", i+1, s.Rule)
		} else {
			fmt.Fprintf(stdout, "  %2d. %-28s no: %s does not match\n", i+1, s.Rule, s.Failed)
		}
	}
	if v.Rule == "default" {
		fmt.Fprintln(stdout, "  no rule matched: the default action applies")
	}
	if !v.Blocked() && f.Door == rules.DoorForward {
		if refused := explainEgress(stdout, e, f); refused != nil {
			fmt.Fprintf(stdout, "verdict: block (rule egress, reason %q, setting resolver.egress.allow)\n", refused.Reason)
			return 0
		}
	}
	fmt.Fprintf(stdout, "verdict: %s (rule %s", v.Action, v.Rule)
	if v.Category != "" {
		fmt.Fprintf(stdout, ", category %s", v.Category)
	}
	if v.Reason != "" {
		fmt.Fprintf(stdout, ", reason %q", v.Reason)
	}
	fmt.Fprintln(stdout, ")")
	return 0
}

// signIn says what the forward door's sign-in does with the request: nothing
// when it is exempt (the user and groups are then dropped, as the door drops
// them), and, for --user without --group, looks up the user's groups where the
// door would find them (the group file or the directory).
func signIn(e *engine.Engine, f *rules.Facts, groupsGiven, socks bool, stdout io.Writer) {
	if why, ok := e.SignInExempt(f); ok && !socks { // the SOCKS5 door has no exemptions
		fmt.Fprintf(stdout, "  sign-in: exempt, %s: evaluated with no user\n", why)
		f.User, f.Groups = "", nil
		return
	}
	if f.User == "" || groupsGiven || f.Door != rules.DoorForward {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	groups, source, ok, err := e.UserGroups(ctx, f.User)
	switch {
	case !ok:
	case err != nil:
		fmt.Fprintf(stdout, "  groups of %s: cannot be read from %s: %v\n", f.User, source, err)
	case len(groups) == 0:
		fmt.Fprintf(stdout, "  groups of %s (from %s): none\n", f.User, source)
	default:
		fmt.Fprintf(stdout, "  groups of %s (from %s): %s\n", f.User, source, strings.Join(groups, ", "))
		f.Groups = groups
	}
}

// factsFor builds the facts a door would gather for target.
func factsFor(target, client, user, groups, at, method, door string) (*rules.Facts, error) {
	f := &rules.Facts{User: user, Method: strings.ToUpper(method), Time: time.Now()}
	switch door {
	case "forward", "socks":
		f.Door = rules.DoorForward
	case "reverse":
		f.Door = rules.DoorReverse
	case "dns":
		f.Door = rules.DoorDNS
		f.Method = ""
	default:
		return nil, fmt.Errorf("unknown door %q", door)
	}
	a, err := netip.ParseAddr(client)
	if err != nil {
		return nil, fmt.Errorf("--client: %v", err)
	}
	f.Client = a.Unmap()
	if groups != "" {
		f.Groups = strings.Split(groups, ",")
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, fmt.Errorf("--time: %v", err)
		}
		f.Time = t
	}
	switch {
	case f.Door == rules.DoorDNS:
		f.Host = strings.TrimSuffix(strings.ToLower(target), ".")
	case door == "socks" && strings.Contains(target, "://"):
		return nil, fmt.Errorf("--door socks: give HOST:PORT, the destination a SOCKS5 client asks for")
	case strings.Contains(target, "://"):
		u, err := url.Parse(target)
		if err != nil {
			return nil, err
		}
		f.Scheme = u.Scheme
		f.Host = strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		f.Path = u.EscapedPath()
		if f.Path == "" {
			f.Path = "/"
		}
		f.Query = u.RawQuery
		f.Port = 80
		if u.Scheme == "https" {
			f.Port = 443
		}
		if p := u.Port(); p != "" {
			n, _ := strconv.Atoi(p)
			f.Port = uint16(n)
		}
		if f.Method == "CONNECT" {
			f.Path, f.Query, f.Scheme = "", "", ""
		}
	default: // host:port: a CONNECT
		host, port, ok := strings.Cut(target, ":")
		n, err := strconv.Atoi(port)
		if !ok || err != nil {
			return nil, fmt.Errorf("give a URL (http://host/path) or HOST:PORT for a CONNECT")
		}
		f.Method = "CONNECT"
		f.Host = strings.ToLower(host)
		f.Port = uint16(n)
	}
	return f, nil
}

// explainEgress prints the egress guard's decision on the destination of f, as
// the forward door would dial it, and returns the refusal when every address
// is refused (the request would be blocked with 403).
func explainEgress(stdout io.Writer, e *engine.Engine, f *rules.Facts) *resolver.EgressError {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	checks, err := e.ExplainEgress(ctx, f.Host, f.Port)
	var refused *resolver.EgressError
	if err != nil {
		if errors.As(err, &refused) {
			fmt.Fprintf(stdout, "egress: %s refused: %s (%s)\n", f.Host, refused.Reason, resolver.EgressHint(err))
			return refused
		}
		fmt.Fprintf(stdout, "egress: %s did not resolve now (%v); the egress guard checks its addresses when the proxy dials\n", f.Host, err)
		return nil
	}
	allowed := false
	for _, c := range checks {
		if c.Err == nil {
			allowed = true
			fmt.Fprintf(stdout, "egress: %s allowed\n", c.Addr)
			continue
		}
		if errors.As(c.Err, &refused) {
			fmt.Fprintf(stdout, "egress: %s refused: %s (%s)\n", c.Addr, refused.Reason, resolver.EgressHint(c.Err))
		}
	}
	if allowed || refused == nil {
		return nil
	}
	return refused
}
