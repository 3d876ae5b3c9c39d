package filter

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"text/template/parse"
	"time"
)

// BlockView is the data a block page template is executed with. Every string is
// escaped by html/template for where the template writes it.
type BlockView struct {
	URL        string    // the blocked URL, or "host:port" for a CONNECT
	Host       string    // the blocked host
	Rule       string    // the deciding rule's name
	Category   string    // the rule's category, "" when none
	Reason     string    // the rule's reason, "" when none
	Contact    string    // the policy's contact line (forward.contact), "" when none
	User       string    // the signed-in user, "" when none
	Time       string    // when the request was refused, in the policy's time zone
	Lang       string    // the language chosen for the page ("fr"), for <html lang>
	UnblockURL string    // the unblock link (block_page.unblock_url filled in), "" when none
	T          BlockText // the wording in Lang
}

// unblockFields are the placeholders unblock_url may hold, each replaced by the
// query-escaped value.
var unblockFields = []string{"url", "host", "category", "rule", "reason", "user"}

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// CheckUnblockURL reports what is wrong with an unblock link pattern: it must be
// an absolute http or https URL once its placeholders ({url}, {host}, {category},
// {rule}, {reason}, {user}) are filled, and name no other placeholder.
func CheckUnblockURL(pattern string) error {
	for _, m := range placeholderRE.FindAllString(pattern, -1) {
		name := m[1 : len(m)-1]
		found := false
		for _, f := range unblockFields {
			found = found || f == name
		}
		if !found {
			return fmt.Errorf("unknown placeholder %s (known: {%s})", m, strings.Join(unblockFields, "}, {"))
		}
	}
	u, err := url.Parse(placeholderRE.ReplaceAllString(pattern, "x"))
	if err != nil {
		return fmt.Errorf("not a URL: %v", unwrapURLErr(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", pattern)
	}
	return nil
}

func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fillUnblock fills pattern's placeholders with v's values, query-escaped.
func fillUnblock(pattern string, v *BlockView) string {
	if pattern == "" {
		return ""
	}
	return placeholderRE.ReplaceAllStringFunc(pattern, func(m string) string {
		var s string
		switch m[1 : len(m)-1] {
		case "url":
			s = v.URL
		case "host":
			s = v.Host
		case "category":
			s = v.Category
		case "rule":
			s = v.Rule
		case "reason":
			s = v.Reason
		case "user":
			s = v.User
		default:
			return m
		}
		return url.QueryEscape(s)
	})
}

// parseBlockTemplate parses an HTML block page template named name (its file,
// which errors name) and checks it: every field it reads exists in BlockView, and
// it executes on a sample page. Errors read "NAME:LINE[:COL]: message".
func parseBlockTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Parse(text)
	if err != nil {
		return nil, templateError(err)
	}
	if err := checkFields(t, text); err != nil {
		return nil, err
	}
	for _, sample := range []*BlockView{sampleView(true), sampleView(false)} {
		if err := t.Execute(io.Discard, sample); err != nil {
			return nil, templateError(err)
		}
	}
	return t, nil
}

// templateError rewrites a template error as "NAME:LINE[:COL]: message".
func templateError(err error) error {
	var he *template.Error
	if errors.As(err, &he) && he.Name != "" {
		if he.Line == 0 {
			return fmt.Errorf("%s: %s", he.Name, he.Description)
		}
		return fmt.Errorf("%s:%d: %s", he.Name, he.Line, he.Description)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, "html/template:")
	return errors.New(msg)
}

// sampleView is a page with every field set (full) or every optional one empty.
func sampleView(full bool) *BlockView {
	v := &BlockView{URL: "http://example.com/", Host: "example.com", Rule: "rule", Time: time.Unix(0, 0).UTC().Format(time.DateTime), Lang: DefaultLanguage}
	if full {
		v.Category, v.Reason, v.Contact, v.User, v.UnblockURL = "category", "reason", "contact", "user", "https://example.com/unblock"
	}
	return v
}

// checkFields walks t's trees and reports the first field the template reads from
// the page's data (dot outside {{with}} and {{range}}, or $) that BlockView has
// not, as "NAME:LINE:COL: unknown field .X".
func checkFields(t *template.Template, text string) error {
	root := reflect.TypeFor[BlockView]()
	c := &fieldChecker{root: root, t: t, text: text, seen: map[string]bool{}}
	return c.tree(t.Tree)
}

type fieldChecker struct {
	root reflect.Type
	t    *template.Template
	text string          // the template's source, which node positions index
	seen map[string]bool // templates already checked with dot as the page
}

func (c *fieldChecker) tree(tr *parse.Tree) error {
	if tr == nil || tr.Root == nil || c.seen[tr.Name] {
		return nil
	}
	c.seen[tr.Name] = true
	return c.node(tr, tr.Root, true)
}

// node checks n; dotIsPage says whether dot is still the page's data there.
func (c *fieldChecker) node(tr *parse.Tree, n parse.Node, dotIsPage bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, m := range n.Nodes {
			if err := c.node(tr, m, dotIsPage); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return c.node(tr, n.Pipe, dotIsPage)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, cmd := range n.Cmds {
			for _, arg := range cmd.Args {
				if err := c.node(tr, arg, dotIsPage); err != nil {
					return err
				}
			}
		}
	case *parse.ChainNode:
		return c.node(tr, n.Node, dotIsPage)
	case *parse.FieldNode:
		if dotIsPage {
			return c.fields(tr, n, n.Ident)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return c.fields(tr, n, n.Ident[1:])
		}
	case *parse.IfNode:
		return c.branch(tr, &n.BranchNode, dotIsPage, dotIsPage)
	case *parse.WithNode:
		return c.branch(tr, &n.BranchNode, false, dotIsPage)
	case *parse.RangeNode:
		return c.branch(tr, &n.BranchNode, false, dotIsPage)
	case *parse.TemplateNode:
		if err := c.node(tr, n.Pipe, dotIsPage); err != nil {
			return err
		}
		if dotIsPage && n.Pipe != nil && len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
			if _, ok := n.Pipe.Cmds[0].Args[0].(*parse.DotNode); ok {
				if sub := c.t.Lookup(n.Name); sub != nil {
					return c.tree(sub.Tree)
				}
			}
		}
	}
	return nil
}

func (c *fieldChecker) branch(tr *parse.Tree, b *parse.BranchNode, bodyDot, elseDot bool) error {
	if err := c.node(tr, b.Pipe, elseDot); err != nil {
		return err
	}
	if err := c.node(tr, b.List, bodyDot); err != nil {
		return err
	}
	if b.ElseList != nil {
		return c.node(tr, b.ElseList, elseDot)
	}
	return nil
}

// fields follows idents from the page's type and reports the first that is not a
// field (or method) of the value before it.
func (c *fieldChecker) fields(tr *parse.Tree, n parse.Node, idents []string) error {
	typ := c.root
	for i, id := range idents {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return nil // a map or interface: any key may be there
		}
		if m, ok := reflect.PointerTo(typ).MethodByName(id); ok {
			if m.Type.NumOut() == 0 {
				return nil
			}
			typ = m.Type.Out(0)
			continue
		}
		f, ok := typ.FieldByName(id)
		if !ok || !f.IsExported() {
			loc := c.position(tr.ParseName, int(n.Position()))
			known := c.known(typ)
			return fmt.Errorf("%s: unknown field .%s (%s has %s)", loc, strings.Join(idents[:i+1], "."), c.typeName(idents[:i]), known)
		}
		typ = f.Type
	}
	return nil
}

// position is "NAME:LINE:COL" (1-based) of the field expression around offset pos
// (which the parser puts at its last identifier).
func (c *fieldChecker) position(name string, pos int) string {
	pos = min(max(pos, 0), len(c.text))
	start := pos
	for start > 0 {
		b := c.text[start-1]
		if b != '.' && b != '$' && b != '_' && !('a' <= b && b <= 'z') && !('A' <= b && b <= 'Z') && !('0' <= b && b <= '9') && b < 0x80 {
			break
		}
		start--
	}
	line := 1 + strings.Count(c.text[:start], "\n")
	col := start - strings.LastIndexByte(c.text[:start], '\n')
	return fmt.Sprintf("%s:%d:%d", name, line, col)
}

func (c *fieldChecker) typeName(idents []string) string {
	if len(idents) == 0 {
		return "the page"
	}
	return "." + strings.Join(idents, ".")
}

func (c *fieldChecker) known(typ reflect.Type) string {
	var names []string
	for f := range typ.Fields() {
		if f.IsExported() {
			names = append(names, "."+f.Name)
		}
	}
	return strings.Join(names, ", ")
}
