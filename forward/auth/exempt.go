package auth

import (
	"fmt"
	"net/netip"

	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// Exempt is the forward.auth.exempt section: clients that are never asked to
// sign in (printers, exam machines) and destinations reachable without
// signing in (update servers, the captive page). An exempt request goes
// through the rules as a client with no user, even if it carries credentials.
type Exempt struct {
	// Clients are networks (CIDRs) whose requests need no sign-in.
	Clients []netip.Prefix `yaml:"clients"`
	// Domains are destinations that need no sign-in: each domain and all its
	// subdomains, matched as a rule's domain: is.
	Domains []string `yaml:"domains"`
}

// Validate reports problems with e; paths are relative to e.
func (e *Exempt) Validate() []field.Error {
	var errs []field.Error
	for i, p := range e.Clients {
		if !p.IsValid() {
			errs = append(errs, field.Errorf(fmt.Sprintf("clients[%d]", i), "not a valid network"))
		}
	}
	for i, d := range e.Domains {
		if !rules.ValidDomain(d) {
			errs = append(errs, field.Errorf(fmt.Sprintf("domains[%d]", i), "invalid domain %q", d))
		}
	}
	return errs
}

// Exemptions is a compiled Exempt. The zero value (and nil) exempts nothing.
type Exemptions struct {
	clients []netip.Prefix
	domains rules.Domains
}

// Compile builds the matcher of e (which Validate accepted).
func (e *Exempt) Compile() *Exemptions {
	if len(e.Clients) == 0 && len(e.Domains) == 0 {
		return nil
	}
	x := &Exemptions{domains: rules.NewDomains(e.Domains)}
	for _, p := range e.Clients {
		x.clients = append(x.clients, p.Masked())
	}
	return x
}

// Match reports whether a request from client to host needs no sign-in, and
// why ("client 10.0.5.2 in forward.auth.exempt.clients 10.0.5.0/24"). host is
// lower case without a trailing dot.
func (x *Exemptions) Match(client netip.Addr, host string) (why string, ok bool) {
	if x == nil {
		return "", false
	}
	client = client.Unmap()
	for _, p := range x.clients {
		if p.Contains(client) {
			return fmt.Sprintf("client %s in forward.auth.exempt.clients %s", client, p), true
		}
	}
	if d, ok := x.domains.Match(host); ok {
		return fmt.Sprintf("destination %s under forward.auth.exempt.domains %s", host, d), true
	}
	return "", false
}
