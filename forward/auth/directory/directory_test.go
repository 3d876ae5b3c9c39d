package directory_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/forward/auth/directory"
	"github.com/portcullis/portcullis/internal/slapdtest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDir(t *testing.T, cfg directory.Config, opts ...directory.Option) *directory.Directory {
	t.Helper()
	d, err := directory.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func baseConfig(s *slapdtest.Server) directory.Config {
	return directory.Config{
		URL: s.URL, BindDN: slapdtest.BindDN, BindPasswordFile: s.BindPasswordFile, BaseDN: slapdtest.PeopleDN,
		UserFilter: "(&(objectClass=inetOrgPerson)(uid={user}))", GroupBaseDN: slapdtest.GroupsDN,
		GroupFilter: "(&(objectClass=groupOfNames)(member={dn}))", Groups: []string{"teachers", "students"},
	}
}

// TestDirectoryVerify checks sign-ins against a real slapd, over plain LDAP,
// StartTLS and ldaps://, with groups from a group search and from the memberOf
// attribute (the memberof overlay, as Active Directory has it): the right
// password signs in with the user's groups, a wrong or empty one, an unknown
// user and a filter-injection attempt do not.
func TestDirectoryVerify(t *testing.T) {
	s := slapdtest.Start(t)
	memberOf := baseConfig(s)
	memberOf.GroupFilter, memberOf.MemberOf = "", "memberOf"
	startTLS := baseConfig(s)
	startTLS.StartTLS, startTLS.CAFile = true, s.CAFile
	ldaps := memberOf
	ldaps.URL, ldaps.CAFile = s.LDAPS, s.CAFile
	for name, cfg := range map[string]directory.Config{"group_filter": baseConfig(s), "member_of": memberOf, "start_tls": startTLS, "ldaps": ldaps} {
		t.Run(name, func(t *testing.T) {
			cfg.CacheTTL = -1 // every check asks slapd
			d := newDir(t, cfg)
			for _, c := range []struct {
				user, pass string
				ok         bool
				name       string
				groups     string
			}{
				{"alice", "alice-pw", true, "alice", "teachers"},
				{"ALICE", "alice-pw", true, "alice", "teachers"}, // one name for rules and logs
				{"bob", "bob-pw", true, "bob", "students"},
				{"carol", "carol-pw", true, "carol", ""},
				{"alice", "bob-pw", false, "", ""},
				{"alice", "", false, "", ""}, // an unauthenticated bind would succeed
				{"nobody", "x", false, "", ""},
				{"*", "alice-pw", false, "", ""},            // escaped: no user is named *
				{"alice)(uid=*", "alice-pw", false, "", ""}, // no filter injection
			} {
				name, groups, ok, err := d.Verify(context.Background(), c.user, c.pass)
				if err != nil {
					t.Fatalf("Verify(%q, %q): %v", c.user, c.pass, err)
				}
				if ok != c.ok || name != c.name || strings.Join(groups, ",") != c.groups {
					t.Errorf("Verify(%q, %q) = %q %v %v, want %q %v %q", c.user, c.pass, name, groups, ok, c.name, c.ok, c.groups)
				}
			}
			if g, err := d.UserGroups(context.Background(), "alice"); err != nil || strings.Join(g, ",") != "teachers" {
				t.Errorf("UserGroups(alice) = %v, %v", g, err)
			}
		})
	}
}

// TestDirectoryTLSNeedsTheCA: without the test CA, ldaps:// and StartTLS are
// unavailable (the certificate is not trusted), not a rejection.
func TestDirectoryTLSNeedsTheCA(t *testing.T) {
	s := slapdtest.Start(t)
	cfg := baseConfig(s)
	cfg.StartTLS = true
	if _, _, ok, err := newDir(t, cfg).Verify(context.Background(), "alice", "alice-pw"); ok || !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("StartTLS without the CA: ok=%v err=%v, want unavailable (certificate)", ok, err)
	}
	cfg = baseConfig(s)
	cfg.URL = s.LDAPS
	_, _, ok, err := newDir(t, cfg).Verify(context.Background(), "alice", "alice-pw")
	if ok || !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("ldaps without the CA: ok=%v err=%v, want unavailable", ok, err)
	}
}

// TestDirectoryCacheAndOutage: results are cached for cache_ttl, a changed
// password stops working once the TTL has passed, and an outage is an error
// that is not cached (the next check after slapd is back asks it again).
func TestDirectoryCacheAndOutage(t *testing.T) {
	s := slapdtest.Start(t)
	clk := &clock{t: time.Now()}
	cfg := baseConfig(s)
	cfg.CacheTTL = time.Minute
	d := newDir(t, cfg, directory.WithClock(clk.now))
	verify := func(user, pass string) (bool, error) {
		t.Helper()
		_, _, ok, err := d.Verify(context.Background(), user, pass)
		return ok, err
	}
	if ok, err := verify("alice", "alice-pw"); !ok || err != nil {
		t.Fatalf("alice: %v %v", ok, err)
	}
	if ok, err := verify("bob", "wrong"); ok || err != nil {
		t.Fatalf("bob wrong: %v %v", ok, err)
	}
	s.SetPassword(t, "alice", "new-pw")
	if ok, _ := verify("alice", "alice-pw"); !ok {
		t.Fatal("within the TTL the cached sign-in should still work")
	}
	clk.add(time.Minute)
	if ok, err := verify("alice", "alice-pw"); ok || err != nil {
		t.Fatalf("old password after the TTL: %v %v, want refused", ok, err)
	}
	if ok, err := verify("alice", "new-pw"); !ok || err != nil {
		t.Fatalf("new password: %v %v", ok, err)
	}

	s.Stop()
	clk.add(time.Minute) // everything cached has expired
	for range 2 {
		ok, err := verify("bob", "bob-pw")
		if ok || !errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("slapd stopped: ok=%v err=%v, want ErrUnavailable", ok, err)
		}
	}
	if _, err := d.UserGroups(context.Background(), "bob"); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Groups with slapd stopped: %v", err)
	}
	s.Restart(t)
	if ok, err := verify("bob", "bob-pw"); !ok || err != nil {
		t.Fatalf("slapd back: %v %v (an outage must not be cached)", ok, err)
	}
}

// TestDirectoryCacheBounded: the cache never holds more than cache_size
// results.
func TestDirectoryCacheBounded(t *testing.T) {
	s := slapdtest.Start(t)
	cfg := baseConfig(s)
	cfg.CacheSize = 3
	d := newDir(t, cfg)
	for i := range 10 {
		if _, _, _, err := d.Verify(context.Background(), "bob", strings.Repeat("x", i+1)); err != nil {
			t.Fatal(err)
		}
		if n := d.Len(); n > 3 {
			t.Fatalf("cache holds %d results, cache_size is 3", n)
		}
	}
}
