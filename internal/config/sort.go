package config

import (
	"cmp"
	"io"
	"slices"
)

var ioEOF = io.EOF

func sortErrors(errs Errors) {
	slices.SortStableFunc(errs, func(a, b Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
}
