package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrUnavailable wraps every error that means "the directory could not say":
// it could not be reached, TLS failed, the service account was refused, or it
// did not answer in time. Such a result is never cached.
var ErrUnavailable = errors.New("directory unavailable")

// maxConcurrent bounds the connections a Directory opens at once, so a burst
// of sign-ins (or of guesses) cannot flood the directory.
const maxConcurrent = 8

// Directory checks credentials against an LDAP directory. It is safe for
// concurrent use, opens one connection per check (results are cached) and has
// no background goroutine: dropping it releases everything.
type Directory struct {
	cfg    Config
	host   string // for TLS verification
	tls    *tls.Config
	bindPW string
	groups map[string]string // lower-case name → the declared spelling
	order  []string          // declared groups, in order
	now    func() time.Time
	sem    chan struct{}
	cache  *cache
	dials  atomic.Int64 // connections opened, for tests
	// nameAttr is the attribute user_filter compares with {user} ("uid" in
	// "(uid={user})"); "" when the filter is not that simple.
	nameAttr string

	flightMu sync.Mutex
	flights  map[[sha256.Size]byte]*flight // checks under way, by cache key
}

// flight is one check under way; others with the same credentials wait for it
// (a browser opening a page sends several requests with the same password at
// once, and a class signs in at the start of a lesson).
type flight struct {
	done chan struct{}
	user
	ok  bool
	err error
}

// user is what the directory says about a user name.
type user struct {
	dn     string
	name   string   // as the directory spells it
	groups []string // the declared groups the user is in
}

// Option adjusts a Directory built by New.
type Option func(*Directory)

// WithClock sets the clock the cache reads; tests inject one.
func WithClock(now func() time.Time) Option { return func(d *Directory) { d.now = now } }

// FileError is an error of New about a file the Config names; Field is the
// key naming it ("bind_password_file" or "ca_file").
type FileError struct {
	Field, File string
	Err         error
	Unreadable  bool // the file could not be read (else: what it holds is wrong)
}

func (e *FileError) Error() string {
	if e.Unreadable {
		return fmt.Sprintf("cannot read %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}
func (e *FileError) Unwrap() error { return e.Err }

// New builds a Directory from cfg (which Validate accepted; paths already
// resolved): it reads the service password and the CA file, and contacts
// nothing. Problems with the files are *FileError.
func New(cfg Config, opts ...Option) (*Directory, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("directory: %v", errs[0])
	}
	u, _ := url.Parse(cfg.URL)
	d := &Directory{cfg: cfg, host: u.Hostname(), now: time.Now, sem: make(chan struct{}, maxConcurrent), groups: map[string]string{},
		flights: map[[sha256.Size]byte]*flight{}}
	if d.cfg.UserFilter == "" {
		d.cfg.UserFilter = DefaultUserFilter
	}
	if d.cfg.GroupAttribute == "" {
		d.cfg.GroupAttribute = DefaultGroupAttribute
	}
	if d.cfg.GroupBaseDN == "" {
		d.cfg.GroupBaseDN = d.cfg.BaseDN
	}
	if d.cfg.Timeout == 0 {
		d.cfg.Timeout = DefaultTimeout
	}
	ttl := cfg.CacheTTL
	switch {
	case ttl == 0:
		ttl = DefaultCacheTTL
	case ttl < 0:
		ttl = 0
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	for _, g := range cfg.Groups {
		d.groups[strings.ToLower(g)] = g
		d.order = append(d.order, g)
	}
	if cfg.BindPasswordFile != "" {
		b, err := os.ReadFile(cfg.BindPasswordFile)
		if err != nil {
			return nil, &FileError{"bind_password_file", cfg.BindPasswordFile, unwrapPath(err), true}
		}
		d.bindPW = strings.TrimRight(string(b), "\r\n")
		if d.bindPW == "" {
			return nil, &FileError{"bind_password_file", cfg.BindPasswordFile, errors.New("is empty (an empty password would be an unauthenticated bind)"), false}
		}
	}
	d.tls = &tls.Config{ServerName: d.host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, &FileError{"ca_file", cfg.CAFile, unwrapPath(err), true}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, &FileError{"ca_file", cfg.CAFile, errors.New("no PEM certificate in it"), false}
		}
		d.tls.RootCAs = pool
	}
	if m := nameAttrRE.FindAllStringSubmatch(d.cfg.UserFilter, -1); len(m) == 1 {
		d.nameAttr = m[0][1]
	}
	for _, o := range opts {
		o(d)
	}
	d.cache = newCache(ttl, size, d.now)
	return d, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// nameAttrRE finds "(ATTR={user})" in a user filter.
var nameAttrRE = regexp.MustCompile(`\(([A-Za-z][A-Za-z0-9-]*)=\{user\}\)`)

// Verify reports whether pass is the password of user in the directory and,
// if so, the user's name as the directory spells it (the value of the
// attribute user_filter compares, when it is one "(ATTR={user})" term: "ALICE"
// signs in as alice, so rules by user and the logs see one name) and the
// user's groups among the declared ones (in declaration order). An
// empty password is refused without asking the directory: to LDAP it is an
// unauthenticated bind, which succeeds. err (wrapping ErrUnavailable) means
// the directory could not tell; it is not cached. Good and bad results are
// cached for the cache TTL.
func (d *Directory) Verify(ctx context.Context, name, pass string) (string, []string, bool, error) {
	if name == "" || pass == "" || len(name) > 256 || len(pass) > 1024 {
		return "", nil, false, nil
	}
	key := d.cache.key(name, pass)
	if u, ok, hit := d.cache.get(key); hit {
		return u.name, u.groups, ok, nil
	}
	d.flightMu.Lock()
	f, joined := d.flights[key]
	if !joined {
		f = &flight{done: make(chan struct{})}
		d.flights[key] = f
	}
	d.flightMu.Unlock()
	if joined {
		select {
		case <-f.done:
			return f.answer()
		case <-ctx.Done():
			return "", nil, false, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	// Others may be waiting: a client that goes away does not cancel the check
	// (the configured timeout bounds it).
	f.user, f.ok, f.err = d.check(context.WithoutCancel(ctx), name, pass)
	if f.err == nil {
		d.cache.put(key, f.user, f.ok)
	}
	d.flightMu.Lock()
	delete(d.flights, key)
	d.flightMu.Unlock()
	close(f.done)
	return f.answer()
}

// Cached reports whether name and pass are in the cache as right.
func (d *Directory) Cached(name, pass string) bool {
	_, ok, hit := d.cache.get(d.cache.key(name, pass))
	return hit && ok
}

// answer is the result of f as Verify returns it.
func (f *flight) answer() (string, []string, bool, error) {
	if !f.ok || f.err != nil {
		return "", nil, false, f.err
	}
	return f.name, slices.Clone(f.groups), true, nil
}

// UserGroups returns the declared groups user is in, looked up with the
// service account (no password); for `policy explain --user`. A user the
// directory does not know (or knows twice) is an error.
func (d *Directory) UserGroups(ctx context.Context, name string) ([]string, error) {
	conn, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer d.close(conn)
	u, found, err := d.lookup(conn, name)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, fmt.Errorf("no single entry matches %s under %s", fill(d.cfg.UserFilter, name, ""), d.cfg.BaseDN)
	}
	return u.groups, nil
}

// check asks the directory: find the user's entry and groups with the service
// account, then bind as the entry with pass.
func (d *Directory) check(ctx context.Context, name, pass string) (user, bool, error) {
	conn, err := d.open(ctx)
	if err != nil {
		return user{}, false, err
	}
	defer d.close(conn)
	u, found, err := d.lookup(conn, name)
	if err != nil || !found {
		return user{}, false, err
	}
	if err := conn.Bind(u.dn, pass); err != nil {
		if unavailable(err) {
			return user{}, false, fmt.Errorf("%w: bind as %s: %v", ErrUnavailable, u.dn, err)
		}
		return user{}, false, nil // invalid credentials, account disabled or locked: the directory said no
	}
	return u, true, nil
}

// open takes a connection slot, dials, upgrades to TLS if asked and binds as
// the service account.
func (d *Directory) open(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: too many checks waiting: %v", ErrUnavailable, ctx.Err())
	}
	conn, err := d.dial(ctx)
	if err != nil {
		<-d.sem
		return nil, err
	}
	return conn, nil
}

func (d *Directory) close(conn *ldap.Conn) {
	conn.Close()
	<-d.sem
}

func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	deadline, _ := ctx.Deadline()
	dialer := &net.Dialer{Deadline: deadline}
	d.dials.Add(1)
	conn, err := ldap.DialURL(d.cfg.URL, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(d.tls))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	conn.SetTimeout(time.Until(deadline))
	if d.cfg.StartTLS {
		if err := conn.StartTLS(d.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: StartTLS: %v", ErrUnavailable, err)
		}
	}
	if d.cfg.BindDN != "" {
		if err := conn.Bind(d.cfg.BindDN, d.bindPW); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: service bind as %s: %v", ErrUnavailable, d.cfg.BindDN, err)
		}
	}
	return conn, nil
}

// lookup finds the entry of name, its spelling and its declared groups.
// found is false when no entry, or more than one, matches.
func (d *Directory) lookup(conn *ldap.Conn, name string) (u user, found bool, err error) {
	secs := int(d.cfg.Timeout / time.Second)
	var attrs []string
	if d.nameAttr != "" {
		attrs = append(attrs, d.nameAttr)
	}
	if d.cfg.MemberOf != "" {
		attrs = append(attrs, d.cfg.MemberOf)
	}
	if len(attrs) == 0 {
		attrs = []string{"1.1"} // no attributes
	}
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, secs, false,
		fill(d.cfg.UserFilter, name, ""), attrs, nil)
	res, err := conn.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return user{}, false, nil // two entries for one name: no one signs in as it
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return user{}, false, fmt.Errorf("%w: base_dn %s does not exist", ErrUnavailable, d.cfg.BaseDN)
	case err != nil:
		return user{}, false, fmt.Errorf("%w: user search: %v", ErrUnavailable, err)
	case len(res.Entries) != 1:
		return user{}, false, nil
	}
	entry := res.Entries[0]
	u = user{dn: entry.DN, name: name}
	if d.nameAttr != "" {
		for _, v := range entry.GetEqualFoldAttributeValues(d.nameAttr) {
			if strings.EqualFold(v, name) {
				u.name = v
				break
			}
		}
	}
	if len(d.groups) == 0 {
		return u, true, nil
	}
	var names []string
	if d.cfg.MemberOf != "" {
		for _, g := range entry.GetEqualFoldAttributeValues(d.cfg.MemberOf) {
			if name := rdnValue(g, d.cfg.GroupAttribute); name != "" {
				names = append(names, name)
			}
		}
	} else {
		req := ldap.NewSearchRequest(d.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, secs, false,
			fill(d.cfg.GroupFilter, name, u.dn), []string{d.cfg.GroupAttribute}, nil)
		res, err := conn.Search(req)
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return user{}, false, fmt.Errorf("%w: group search: %v", ErrUnavailable, err)
		}
		if res != nil {
			for _, e := range res.Entries {
				names = append(names, e.GetEqualFoldAttributeValues(d.cfg.GroupAttribute)...)
			}
		}
	}
	u.groups = d.declared(names)
	return u, true, nil
}

// declared keeps the names that are declared groups, in declaration order,
// with the declared spelling.
func (d *Directory) declared(names []string) []string {
	in := map[string]bool{}
	for _, n := range names {
		if g, ok := d.groups[strings.ToLower(n)]; ok {
			in[g] = true
		}
	}
	var out []string
	for _, g := range d.order {
		if in[g] {
			out = append(out, g)
		}
	}
	return out
}

// rdnValue returns the value of the first RDN of dn when its type is attr
// ("CN=Teachers,OU=Groups,…" → "Teachers" for attr cn), else "".
func rdnValue(dn, attr string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return ""
	}
	for _, a := range p.RDNs[0].Attributes {
		if strings.EqualFold(a.Type, attr) {
			return a.Value
		}
	}
	return ""
}

// unavailable reports whether a bind error means the directory could not
// answer (network, timeout, busy) rather than that it refused.
func unavailable(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return true
	}
	switch le.ResultCode {
	case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultOther,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultAdminLimitExceeded, ldap.ErrorUnexpectedResponse, ldap.LDAPResultServerDown, ldap.LDAPResultTimeout:
		return true
	}
	return false
}

// cache remembers check results under a keyed hash of user and password.
type cache struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	salt [32]byte // so a memory dump does not give sha256(user:pass) to crack offline
	mu   sync.Mutex
	m    map[[sha256.Size]byte]result
}

type result struct {
	user
	ok  bool
	exp time.Time
}

func newCache(ttl time.Duration, max int, now func() time.Time) *cache {
	c := &cache{ttl: ttl, max: max, now: now, m: map[[sha256.Size]byte]result{}}
	_, _ = rand.Read(c.salt[:])
	return c
}

func (c *cache) key(user, pass string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *cache) get(k [sha256.Size]byte) (u user, ok, hit bool) {
	if c.ttl <= 0 {
		return user{}, false, false
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	r, found := c.m[k]
	if !found {
		return user{}, false, false
	}
	if !now.Before(r.exp) {
		delete(c.m, k)
		return user{}, false, false
	}
	u = r.user
	u.groups = slices.Clone(r.groups)
	return u, r.ok, true
}

func (c *cache) put(k [sha256.Size]byte, u user, ok bool) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, r := range c.m {
			if !now.Before(r.exp) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	u.groups = slices.Clone(u.groups)
	c.m[k] = result{user: u, ok: ok, exp: now.Add(c.ttl)}
}

// Len returns the number of cached results (for tests and the status page).
func (d *Directory) Len() int {
	d.cache.mu.Lock()
	defer d.cache.mu.Unlock()
	return len(d.cache.m)
}
