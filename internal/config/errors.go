package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a policy file, with where it is.
type Error struct {
	File      string
	Line, Col int
	Path      string // dotted field path, e.g. "rules[2].glob[0]"
	Msg       string
}

// Error formats the problem as "FILE:LINE:COL: path: msg".
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a policy file, in file order.
type Errors []Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
