package auth

import (
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Defaults of the credential cache.
const (
	DefaultCacheTTL  = 5 * time.Minute
	DefaultCacheSize = 4096
)

// Store holds the users and groups of one htpasswd file (and optional group
// file) and checks credentials against them. It is safe for concurrent use.
type Store struct {
	users  map[string][]byte   // user → bcrypt hash
	decoy  []byte              // a stored hash, compared against for unknown users
	groups map[string][]string // user → groups, in file order

	ttl   time.Duration
	max   int
	now   func() time.Time
	mu    sync.Mutex
	cache map[[sha256.Size]byte]time.Time // sha256(user:pass) → expiry of a successful check
}

// Option adjusts a Store built by Load.
type Option func(*Store)

// WithCache sets how long a successful check is remembered (ttl ≤ 0 disables
// the cache) and how many are remembered at most (size ≤ 0 means
// DefaultCacheSize).
func WithCache(ttl time.Duration, size int) Option {
	return func(s *Store) {
		s.ttl = ttl
		if size > 0 {
			s.max = size
		}
	}
}

// WithClock sets the clock the cache reads; tests inject one.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Load reads the htpasswd file at htpasswdPath (lines "user:bcrypt-hash";
// blank lines and '#' comments ignored; any other hash is an error naming
// FILE:LINE) and, if groupPath is not empty, the group file (lines "group: user1
// user2", every user defined in the htpasswd file). Parse problems are
// *ParseError. The cache defaults to DefaultCacheTTL and DefaultCacheSize.
func Load(htpasswdPath, groupPath string, opts ...Option) (*Store, error) {
	f, err := os.Open(htpasswdPath)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	users, err := parseHtpasswd(f, htpasswdPath)
	f.Close()
	if err != nil {
		return nil, err
	}
	groups := map[string][]string{}
	if groupPath != "" {
		g, err := os.Open(groupPath)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		groups, err = parseGroups(g, groupPath, users)
		g.Close()
		if err != nil {
			return nil, err
		}
	}
	s := &Store{users: users, groups: groups, ttl: DefaultCacheTTL, max: DefaultCacheSize, now: time.Now}
	for _, h := range users {
		s.decoy = h
		break
	}
	for _, o := range opts {
		o(s)
	}
	s.cache = make(map[[sha256.Size]byte]time.Time)
	return s, nil
}

// Len returns the number of users.
func (s *Store) Len() int { return len(s.users) }

// HasUser reports whether the htpasswd file defines user.
func (s *Store) HasUser(user string) bool {
	_, ok := s.users[user]
	return ok
}

// Groups returns the groups of user from the group file (nil if none). The
// slice is a copy.
func (s *Store) Groups(user string) []string { return slices.Clone(s.groups[user]) }

// Check reports whether pass is the password of user and, if so, the user's
// groups (a copy; nil when the user is in none). A successful check is cached
// for the cache TTL under sha256(user ":" pass), so a keep-alive browser that
// sends its credentials on every request pays bcrypt once; failures are never
// cached (rate-limit them with a Limiter).
func (s *Store) Check(user, pass string) (groups []string, ok bool) {
	key := credentialKey(user, pass)
	if s.inCache(key) {
		return s.Groups(user), true
	}
	hash, known := s.users[user]
	if !known {
		// Cost the same bcrypt time as a wrong password, so that timing does
		// not tell which users exist.
		if s.decoy != nil {
			_ = bcrypt.CompareHashAndPassword(s.decoy, []byte(pass))
		}
		return nil, false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return nil, false
	}
	if s.ttl > 0 {
		s.remember(key)
	}
	return s.Groups(user), true
}

// Cached reports whether Check would answer from its cache of successful
// checks (no bcrypt): the credentials were right within the cache TTL.
func (s *Store) Cached(user, pass string) bool { return s.inCache(credentialKey(user, pass)) }

func credentialKey(user, pass string) [sha256.Size]byte {
	var buf [128]byte // keeps the usual user:pass off the heap
	return sha256.Sum256(append(append(append(buf[:0], user...), ':'), pass...))
}

func (s *Store) inCache(key [sha256.Size]byte) bool {
	if s.ttl <= 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, hit := s.cache[key]
	if hit && now.After(exp) {
		delete(s.cache, key)
		hit = false
	}
	return hit
}

// remember caches a successful check, evicting expired entries and then, if
// still full, arbitrary ones.
func (s *Store) remember(key [sha256.Size]byte) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.max {
		for k, exp := range s.cache {
			if now.After(exp) {
				delete(s.cache, k)
			}
		}
		for k := range s.cache {
			if len(s.cache) < s.max {
				break
			}
			delete(s.cache, k)
		}
	}
	s.cache[key] = now.Add(s.ttl)
}
