// Package directory checks forward-proxy sign-ins against an LDAP directory
// (OpenLDAP, Active Directory): the user's entry is found with the service
// account (bind_dn), the password is checked by binding as that entry, and the
// user's groups come from a group search (group_filter) or from an attribute
// of the user's entry (member_of, Active Directory's memberOf). Results, good
// and bad, are cached for a short time; a directory that cannot be reached is
// an error (ErrUnavailable), never a rejection, so the forward door can answer
// 503 instead of asking for the password again or counting a failed guess.
package directory

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Defaults of a directory section.
const (
	DefaultUserFilter     = "(uid={user})"
	DefaultGroupAttribute = "cn"
	DefaultCacheTTL       = time.Minute
	DefaultCacheSize      = 4096
	DefaultTimeout        = 5 * time.Second
)

// Config is the forward.auth.ldap section of the policy file. File paths are
// relative to the policy file; the caller resolves them before New.
type Config struct {
	// URL is ldap://HOST[:PORT] or ldaps://HOST[:PORT].
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection with StartTLS before any bind.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM file of the CAs that sign the directory's certificate
	// (default: the system's).
	CAFile string `yaml:"ca_file"`
	// BindDN and BindPasswordFile are the service account that searches for
	// users and groups. Empty BindDN: anonymous searches.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	// BaseDN is where users are searched (whole subtree).
	BaseDN string `yaml:"base_dn"`
	// UserFilter finds the user's entry; {user} is replaced by the escaped user
	// name. Default DefaultUserFilter; Active Directory: (sAMAccountName={user}).
	UserFilter string `yaml:"user_filter"`
	// GroupFilter finds the user's groups under GroupBaseDN (default BaseDN);
	// {user} is the escaped user name and {dn} the escaped DN of the user's
	// entry, e.g. (&(objectClass=groupOfNames)(member={dn})) or
	// (&(objectClass=posixGroup)(memberUid={user})).
	GroupFilter string `yaml:"group_filter"`
	GroupBaseDN string `yaml:"group_base_dn"`
	// GroupAttribute names a group: the attribute read from a group entry found
	// by GroupFilter, or the RDN type taken from a MemberOf DN (default "cn").
	GroupAttribute string `yaml:"group_attribute"`
	// MemberOf is an attribute of the user's entry that lists the DNs of the
	// user's groups (memberOf in Active Directory, or OpenLDAP's memberof
	// overlay). Used instead of GroupFilter.
	MemberOf string `yaml:"member_of"`
	// Groups are the directory groups the policy uses (compared without case).
	// Only these are kept from the directory's answer, and validate checks
	// every group name the policy uses against them.
	Groups []string `yaml:"groups"`
	// CacheTTL is how long a result, good or bad, is remembered (default
	// DefaultCacheTTL; negative: not cached). A changed password stops or
	// starts working within CacheTTL.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the remembered results (default DefaultCacheSize).
	CacheSize int `yaml:"cache_size"`
	// Timeout bounds a whole check against the directory (default
	// DefaultTimeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Validate reports problems with c that need no file; paths are relative to
// c. The files (bind_password_file, ca_file) are checked by New.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, field.Errorf("url", "is required (ldap://HOST[:PORT] or ldaps://HOST[:PORT])"))
	case err != nil:
		errs = append(errs, field.Errorf("url", "%v", err))
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		errs = append(errs, field.Errorf("url", "scheme %q: want ldap:// or ldaps://", u.Scheme))
	case u.Hostname() == "":
		errs = append(errs, field.Errorf("url", "no host in %q", c.URL))
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
		errs = append(errs, field.Errorf("url", "only ldap[s]://HOST[:PORT] is supported; put the base DN in base_dn"))
	case c.StartTLS && u.Scheme == "ldaps":
		errs = append(errs, field.Errorf("start_tls", "is for ldap:// URLs; ldaps:// is TLS already"))
	}
	if (c.BindDN == "") != (c.BindPasswordFile == "") {
		errs = append(errs, field.Errorf("bind_password_file", "bind_dn and bind_password_file go together"))
	}
	if c.BindDN != "" {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			errs = append(errs, field.Errorf("bind_dn", "%v", err))
		}
	}
	if c.BaseDN == "" {
		errs = append(errs, field.Errorf("base_dn", "is required (where users are searched, e.g. ou=people,dc=school,dc=example)"))
	} else if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		errs = append(errs, field.Errorf("base_dn", "%v", err))
	}
	if c.GroupBaseDN != "" {
		if _, err := ldap.ParseDN(c.GroupBaseDN); err != nil {
			errs = append(errs, field.Errorf("group_base_dn", "%v", err))
		}
	}
	if c.UserFilter != "" {
		errs = append(errs, checkFilter("user_filter", c.UserFilter, true)...)
	}
	if c.GroupFilter != "" {
		errs = append(errs, checkFilter("group_filter", c.GroupFilter, false)...)
	}
	if c.GroupFilter != "" && c.MemberOf != "" {
		errs = append(errs, field.Errorf("member_of", "choose group_filter or member_of, not both"))
	}
	if c.GroupAttribute != "" && !isAttr(c.GroupAttribute) {
		errs = append(errs, field.Errorf("group_attribute", "%q is not an attribute name", c.GroupAttribute))
	}
	if c.MemberOf != "" && !isAttr(c.MemberOf) {
		errs = append(errs, field.Errorf("member_of", "%q is not an attribute name", c.MemberOf))
	}
	switch {
	case len(c.Groups) > 0 && c.GroupFilter == "" && c.MemberOf == "":
		errs = append(errs, field.Errorf("groups", "needs group_filter or member_of to find the user's groups"))
	case len(c.Groups) == 0 && (c.GroupFilter != "" || c.MemberOf != ""):
		errs = append(errs, field.Errorf("groups", "list the directory groups the policy uses (only these are kept)"))
	}
	seen := map[string]bool{}
	for i, g := range c.Groups {
		k := strings.ToLower(g)
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, field.Errorf(fmt.Sprintf("groups[%d]", i), "empty group name"))
		case seen[k]:
			errs = append(errs, field.Errorf(fmt.Sprintf("groups[%d]", i), "group %q listed twice", g))
		}
		seen[k] = true
	}
	if c.CacheSize < 0 {
		errs = append(errs, field.Errorf("cache_size", "must not be negative"))
	}
	if c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "must not be negative"))
	}
	return errs
}

// checkFilter reports a filter that is not valid LDAP filter syntax once its
// placeholders are filled, or (needUser) that does not use {user}.
func checkFilter(path, f string, needUser bool) []field.Error {
	if needUser && !strings.Contains(f, "{user}") {
		return []field.Error{field.Errorf(path, "%q does not contain {user}", f)}
	}
	if !needUser && !strings.Contains(f, "{user}") && !strings.Contains(f, "{dn}") {
		return []field.Error{field.Errorf(path, "%q contains neither {user} nor {dn}", f)}
	}
	if _, err := ldap.CompileFilter(fill(f, "u", "cn=u")); err != nil {
		var le *ldap.Error
		if errors.As(err, &le) && le.Err != nil {
			err = le.Err
		}
		return []field.Error{field.Errorf(path, "%q is not a valid LDAP filter: %s", f, strings.TrimPrefix(err.Error(), "ldap: "))}
	}
	return nil
}

// fill replaces {user} and {dn} in filter by the escaped user and dn.
func fill(filter, user, dn string) string {
	return strings.NewReplacer("{user}", ldap.EscapeFilter(user), "{dn}", ldap.EscapeFilter(dn)).Replace(filter)
}

// isAttr reports whether s looks like an attribute description.
func isAttr(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == ';' || r == '.')
	})
}

// GroupNames returns the declared group names (those the policy may use).
func (c *Config) GroupNames() []string { return slices.Clone(c.Groups) }
