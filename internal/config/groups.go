package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/config/field"
)

// groupNames is the set of names a policy may use for a group: those of its
// groups: section (clients by CIDR, users), those of the forward proxy's auth
// group file, whose members are the signed-in users the file lists, and the
// directory groups declared under forward.auth.ldap.groups (validate cannot ask
// the directory, so the policy declares the directory groups it uses).
type groupNames struct {
	policy map[string]bool
	file   string          // the auth group file (resolved); "" when the policy names none
	auth   map[string]bool // the groups that file declares
	ldap   map[string]bool // forward.auth.ldap.groups
	// unread is set when the group file could not be read (reported at
	// forward.auth.group_file, here or by the check of the auth files): names
	// outside groups: are then not checked.
	unread bool
}

// groupNames reads the group names of the policy and of its auth group file. A
// line of the group file that cannot be parsed is reported at
// forward.auth.group_file; a file that cannot be opened is left to the check of
// the auth files (and to the engine, which loads them).
func (f *File) groupNames() (*groupNames, []field.Error) {
	g := &groupNames{policy: map[string]bool{}, auth: map[string]bool{}, ldap: map[string]bool{}}
	for name := range f.Policy.Groups {
		g.policy[name] = true
	}
	fw := f.Policy.Forward
	if fw != nil && fw.Auth.LDAP != nil {
		for _, name := range fw.Auth.LDAP.Groups {
			g.ldap[name] = true
		}
	}
	if fw == nil || fw.Auth.GroupFile == "" {
		return g, nil
	}
	g.file = f.Resolve(fw.Auth.GroupFile)
	names, err := auth.GroupNames(g.file)
	if err != nil {
		g.unread = true
		if pe := (*auth.ParseError)(nil); errors.As(err, &pe) {
			return g, []field.Error{field.Errorf("forward.auth.group_file", "%v", pe)} // FILE:LINE: what is wrong
		}
		return g, nil
	}
	for _, n := range names {
		g.auth[n] = true
	}
	return g, nil
}

// check reports a problem with the group name used at path, or nil.
func (g *groupNames) check(path, name string) []field.Error {
	if g.policy[name] || g.auth[name] || g.ldap[name] || g.unread {
		return nil
	}
	where := " (not in groups:, and no auth groups file is configured)"
	switch {
	case g.file != "":
		where = fmt.Sprintf(" (not in groups: nor in the auth groups file %s)", g.file)
	case len(g.ldap) > 0:
		where = " (not in groups: nor in forward.auth.ldap.groups)"
	}
	all := maps.Clone(g.policy)
	maps.Copy(all, g.auth)
	maps.Copy(all, g.ldap)
	return []field.Error{field.Errorf(path, "unknown group %q%s%s", name, where, suggest(name, all))}
}

// checkByAddress is check for a place that knows clients only by address (the
// DNS door): a group of the auth group file alone has no member there.
func (g *groupNames) checkByAddress(path, name string) []field.Error {
	if !g.policy[name] && g.auth[name] {
		return []field.Error{field.Errorf(path, "group %q is only in the auth groups file %s, and DNS clients do not sign in: declare it under groups: with its clients' CIDRs", name, g.file)}
	}
	if !g.policy[name] && g.ldap[name] {
		return []field.Error{field.Errorf(path, "group %q is only a directory group (forward.auth.ldap.groups), and DNS clients do not sign in: declare it under groups: with its clients' CIDRs", name)}
	}
	return g.check(path, name)
}

// validateGroupRefs checks every place that names a group: rules' group, the
// forward door's safesearch_groups and phrase_thresholds, and the DNS door's
// groups.
func (f *File) validateGroupRefs() []field.Error {
	g, errs := f.groupNames()
	for i, r := range f.Policy.Rules {
		if r == nil {
			continue
		}
		for j, name := range r.Group {
			errs = append(errs, g.check(fmt.Sprintf("rules[%d].group[%d]", i, j), name)...)
		}
	}
	if fw := f.Policy.Forward; fw != nil {
		for _, name := range slices.Sorted(maps.Keys(fw.SafeSearchGroups)) {
			errs = append(errs, g.check("forward.safesearch_groups."+name, name)...)
		}
		for _, name := range slices.Sorted(maps.Keys(fw.PhraseThresholds)) {
			errs = append(errs, g.check("forward.phrase_thresholds."+name, name)...)
		}
	}
	if d := f.Policy.DNS; d != nil {
		for _, name := range slices.Sorted(maps.Keys(d.Groups)) {
			errs = append(errs, g.checkByAddress("dns.groups."+name, name)...)
		}
	}
	return errs
}

// CheckGroupName returns an error when name is not a group of the policy (its
// groups: section or its auth group file), suggesting the closest name: for
// tools that take a group name from the user (policy explain --group).
func (f *File) CheckGroupName(name string) error {
	g, _ := f.groupNames()
	if errs := g.check("group", name); len(errs) > 0 {
		return errs[0]
	}
	return nil
}
