package rules

import (
	"slices"
	"testing"
)

func TestMemberReadings(t *testing.T) {
	for in, want := range map[string][]string{
		"/public/a.css":          nil,
		"/admin;x=1/users":       {"/admin/users"},
		"/public/..;/admin/x":    {"/admin/x"},
		`/public\..\admin`:       {"/admin"},
		"/admin./x":              {"/admin/x"},
		"/admin /x":              {"/admin/x"},
		"/ADMIN/x":               {"/admin/x"},
		"/Admin;a/..;/B./c":      {"/B/c", "/b/c"},
		"/a/b/":                  nil,
		"/a;/":                   {"/a/"},
		"/..;/..;/etc":           {"/etc"},
		"/static/jquery-3.7.min": nil,
	} {
		got := MemberReadings(in)
		if !slices.Equal(got, want) {
			t.Errorf("MemberReadings(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = MemberReadings("/static/app/main.js") }); n != 0 {
		t.Errorf("%v allocations for a plain path", n)
	}
}
