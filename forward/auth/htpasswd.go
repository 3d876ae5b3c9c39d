package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ParseError is a problem with one line of an htpasswd or group file.
type ParseError struct {
	File string // the file's path as given
	Line int    // 1-based line number
	Msg  string // what is wrong
}

// Error implements error as "FILE:LINE: MSG".
func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxLine bounds one line of an htpasswd or group file.
const maxLine = 64 << 10

// scanLines calls fn for each line of r with its 1-based number, the line with
// surrounding white space removed; blank lines and lines starting with '#' are
// skipped.
func scanLines(r io.Reader, file string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &ParseError{File: file, Line: n + 1, Msg: err.Error()}
	}
	return nil
}

// isBcrypt reports whether hash has a bcrypt prefix ($2a$, $2b$, $2y$ or $2x$).
func isBcrypt(hash string) bool {
	return len(hash) > 4 && hash[0] == '$' && hash[1] == '2' && hash[3] == '$' &&
		strings.IndexByte("abxy", hash[2]) >= 0
}

// hashKind names a non-bcrypt htpasswd hash for error messages.
func hashKind(hash string) string {
	switch {
	case strings.HasPrefix(hash, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$apr1$"):
		return "Apache MD5 ($apr1$)"
	case strings.HasPrefix(hash, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "SHA-crypt (" + hash[:3] + ")"
	}
	return "crypt or plain text"
}

// validUser reports a problem with a user name, or "" if it is acceptable: not
// empty, no colon (it separates user from password in Basic credentials and in
// the file), no white space or control characters.
func validUser(user string) string {
	if user == "" {
		return "empty user name"
	}
	for _, r := range user {
		if r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Sprintf("user name %q contains a colon, white space or a control character", user)
		}
	}
	return ""
}

// parseHtpasswd reads "user:bcrypt-hash" lines into a map.
func parseHtpasswd(r io.Reader, file string) (map[string][]byte, error) {
	users := make(map[string][]byte)
	lineOf := make(map[string]int)
	err := scanLines(r, file, func(n int, line string) error {
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			return &ParseError{file, n, "want USER:HASH"}
		}
		if msg := validUser(user); msg != "" {
			return &ParseError{file, n, msg}
		}
		if !isBcrypt(hash) {
			return &ParseError{file, n, fmt.Sprintf("user %q: %s hash is not supported, only bcrypt ($2y$; htpasswd -B or portcullis passwd)", user, hashKind(hash))}
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return &ParseError{file, n, fmt.Sprintf("user %q: malformed bcrypt hash: %v", user, err)}
		}
		if prev, dup := lineOf[user]; dup {
			return &ParseError{file, n, fmt.Sprintf("user %q already defined on line %d", user, prev)}
		}
		lineOf[user] = n
		users[user] = []byte(hash)
		return nil
	})
	return users, err
}

// parseGroups reads "group: user1 user2" lines. Every user must exist in users.
// A group may appear on several lines; its members accumulate.
func parseGroups(r io.Reader, file string, users map[string][]byte) (map[string][]string, error) {
	byUser := make(map[string][]string)
	seen := make(map[[2]string]bool)
	err := scanGroups(r, file, func(n int, group string, members []string) error {
		for _, u := range members {
			if _, known := users[u]; !known {
				return &ParseError{file, n, fmt.Sprintf("group %q: user %q is not in the htpasswd file", group, u)}
			}
			if k := [2]string{u, group}; !seen[k] {
				seen[k] = true
				byUser[u] = append(byUser[u], group)
			}
		}
		return nil
	})
	return byUser, err
}

// scanGroups calls fn for each "group: user1 user2" line of r with its number,
// the group's name and its members (possibly none).
func scanGroups(r io.Reader, file string, fn func(n int, group string, members []string) error) error {
	return scanLines(r, file, func(n int, line string) error {
		group, members, ok := strings.Cut(line, ":")
		group = strings.TrimSpace(group)
		if !ok || group == "" {
			return &ParseError{file, n, "want GROUP: USER..."}
		}
		if strings.ContainsFunc(group, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return &ParseError{file, n, fmt.Sprintf("group name %q contains white space or a control character", group)}
		}
		return fn(n, group, strings.Fields(members))
	})
}

// GroupNames returns the names of the groups the group file at path declares,
// sorted, members or not ("staff:" alone declares staff): the names policy rules
// may use. Unlike Load it does not check members against the htpasswd file.
// Problems with a line are *ParseError; a file that cannot be opened, or a
// folder, is a *fs.PathError.
func GroupNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("auth: %w", &fs.PathError{Op: "read", Path: path, Err: errors.New("is a folder, not a file")})
	}
	seen := map[string]bool{}
	var names []string
	err = scanGroups(f, path, func(_ int, group string, _ []string) error {
		if !seen[group] {
			seen[group] = true
			names = append(names, group)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// SetPassword adds user to the htpasswd file at path, or replaces the hash of
// an existing user, with a bcrypt hash of password at bcrypt.DefaultCost. Other
// lines, comments included, are kept as they are. The file is written to a
// temporary file in the same directory with mode 0600, synced, and renamed over
// path, so readers see the old file or the new one, never a partial one. A
// missing file is created.
func SetPassword(path, user, password string) error {
	return setPassword(path, user, password, bcrypt.DefaultCost)
}

func setPassword(path, user, password string, cost int) error {
	if msg := validUser(user); msg != "" {
		return errors.New("auth: " + msg)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("auth: hashing the password of %q: %w", user, err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("auth: %w", err)
	}
	entry := user + ":" + string(hash)
	var out bytes.Buffer
	replaced := false
	for line := range strings.Lines(string(old)) {
		body := strings.TrimRight(line, "\r\n")
		if name, _, ok := strings.Cut(strings.TrimSpace(body), ":"); ok && name == user {
			if !replaced { // later duplicates of the user are dropped
				out.WriteString(entry + "\n")
				replaced = true
			}
			continue
		}
		out.WriteString(body + "\n")
	}
	if !replaced {
		out.WriteString(entry + "\n")
	}
	return writeAtomic(path, out.Bytes())
}

// writeAtomic writes data to a temporary file beside path and renames it over path.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	return nil
}
