// Package field carries validation problems from the packages that own a part of the
// policy file to the config package, which turns each into "FILE:LINE:COL: path: msg".
// A package validating its own Config returns field.Errors whose Path is relative to
// that Config (for example "members[2].url"); the config package prefixes the path of
// the section and looks up the line and column.
package field

import "fmt"

// Error is one problem with one field of the policy file.
type Error struct {
	Path string // dotted path relative to the validated value, e.g. "members[2].url"; "" for the value itself
	Msg  string // what is wrong, lower case, no trailing period
}

// Error implements error.
func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf builds an Error at path with a formatted message.
func Errorf(path, format string, args ...any) Error {
	return Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Join returns the path of child under parent: Join("members[2]", "url") is
// "members[2].url"; indexes ("[3]") are joined without a dot.
func Join(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case child[0] == '[':
		return parent + child
	}
	return parent + "." + child
}

// Prefix returns errs with prefix joined in front of each path.
func Prefix(prefix string, errs []Error) []Error {
	for i := range errs {
		errs[i].Path = Join(prefix, errs[i].Path)
	}
	return errs
}
