package auth

import (
	"context"
	"errors"
)

// Verifier checks a user's password and tells the user's groups. The forward
// door uses one for sign-in, `policy explain --user` for groups. Two sources
// implement it: the htpasswd Store (and its group file) and the school's
// directory (forward/auth/directory).
type Verifier interface {
	// Verify reports whether pass is the password of user and, if so, the
	// user's name as the source spells it (a directory finds "ALICE" as
	// alice: rules and logs must see one name) and groups. err is set when the
	// source could not tell (a directory outage): the door answers 503 and
	// counts no failed guess.
	Verify(ctx context.Context, user, pass string) (name string, groups []string, ok bool, err error)
	// UserGroups returns the groups of user, without checking a password.
	UserGroups(ctx context.Context, user string) ([]string, error)
	// Cached reports whether user and pass were found right recently (so the
	// sign-in limiter need not slow them down with the guesses around them).
	Cached(user, pass string) bool
}

// Verify is Check as a Verifier; err is always nil (the files are in memory).
// The htpasswd file's names are exact, so name is user.
func (s *Store) Verify(_ context.Context, user, pass string) (name string, groups []string, ok bool, err error) {
	groups, ok = s.Check(user, pass)
	if !ok {
		return "", nil, false, nil
	}
	return user, groups, true, nil
}

// UserGroups is Groups as a Verifier.
func (s *Store) UserGroups(_ context.Context, user string) ([]string, error) {
	if _, ok := s.users[user]; !ok {
		return nil, errUnknownUser
	}
	return s.Groups(user), nil
}

// errUnknownUser is UserGroups' answer for a user the htpasswd file lacks.
var errUnknownUser = errors.New("no such user in the htpasswd file")
