package engine

import (
	"encoding/json"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/cluster"
)

// eventSignInFail and eventSignInReset carry the sign-in limiter's failures and
// resets between nodes.
const (
	eventSignInFail  = "signin_fail"
	eventSignInReset = "signin_reset"
)

// sharedAttempts is the sign-in limiter's store when the cluster shares sign-in
// counts: every decision is this node's own (MemoryAttempts: atomic, with the
// attempts in flight here, never waiting on Redis), and each failure, and each
// success that forgets a user's failures, is published to the other nodes, which
// count it as their own. A guesser spreading over N nodes therefore meets the
// same limits as on one, give or take the attempts in flight on the others
// within a publish's delay (about a millisecond). Without Redis each node counts
// alone.
type sharedAttempts struct {
	*auth.MemoryAttempts
	cl func() *cluster.Cluster // the cluster in force, nil: none
}

type limitMsg struct {
	Max      int           `json:"max"`
	Window   time.Duration `json:"window"`
	Lockout  time.Duration `json:"lockout"`
	Interval time.Duration `json:"interval"`
}

// Fail implements auth.AttemptStore.
func (s *sharedAttempts) Fail(key string, lim auth.Limit, now time.Time) {
	s.MemoryAttempts.Fail(key, lim, now)
	if c := s.cl(); c != nil && c.Config().Shares(cluster.ShareSignIn) {
		b, _ := json.Marshal(limitMsg(lim))
		c.Publish(cluster.Event{Kind: eventSignInFail, Key: key, Data: b})
	}
}

// Succeed implements auth.AttemptStore.
func (s *sharedAttempts) Succeed(key string, reset bool, now time.Time) {
	s.MemoryAttempts.Succeed(key, reset, now)
	if c := s.cl(); reset && c != nil && c.Config().Shares(cluster.ShareSignIn) {
		c.Publish(cluster.Event{Kind: eventSignInReset, Key: key})
	}
}

// remote counts another node's sign-in event.
func (s *sharedAttempts) remote(ev cluster.Event, now time.Time) {
	switch ev.Kind {
	case eventSignInFail:
		var m limitMsg
		if json.Unmarshal(ev.Data, &m) == nil && m.Max > 0 && m.Window > 0 {
			s.MemoryAttempts.Record(ev.Key, auth.Limit(m), now)
		}
	case eventSignInReset:
		s.MemoryAttempts.Succeed(ev.Key, true, now)
	}
}
