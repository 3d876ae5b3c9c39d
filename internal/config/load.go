package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/internal/config/field"
)

// File is a decoded and validated policy file.
type File struct {
	Policy *Policy
	// Name is the file's path as given (used in messages); "" for embedded policies.
	Name string
	// Dir is the folder that relative paths in the policy are resolved against.
	Dir string
	// Source is the file's bytes.
	Source []byte

	pos map[string]Pos
}

// Load reads, decodes and validates the policy file at path. On any problem it returns
// Errors listing all of them.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read policy: %v", errors.Unwrap(err))}}
	}
	return Parse(path, filepath.Dir(path), src)
}

// Parse decodes and validates policy source named name, resolving relative paths
// against dir.
func Parse(name, dir string, src []byte) (*File, error) {
	f := &File{Policy: &Policy{}, Name: name, Dir: dir, Source: src, pos: map[string]Pos{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, ioEOF) { // an empty file is an empty policy
			return f, f.validate()
		}
		return nil, Errors{syntaxError(name, src, err)}
	}
	d := &decoder{file: name, pos: f.pos}
	d.decode(&root, reflect.ValueOf(f.Policy).Elem(), "")
	errs := d.errs
	if verr := f.validate(); verr != nil {
		// Report validation problems too, except those about a field that could not be
		// decoded (they would only repeat it).
		for _, e := range verr.(Errors) {
			if !underAny(e.Path, d.errs) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return f, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML syntax error into an Error at the line to fix. yaml.v3
// reports some errors at the start of the enclosing block (a mis-indented key deep
// in a section is reported at the section's first line, column 1), so the line is
// found again as the first one the document cannot be cut after: the first k lines
// of src parse, the first k+1 do not. The column is that line's first character.
func syntaxError(name string, src []byte, err error) Error {
	msg := err.Error()
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return Error{File: name, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	e := Error{File: name, Line: line, Col: 1, Msg: "YAML syntax: " + m[2]}
	if bad, col := firstBadLine(src); bad > 0 {
		if bad != line {
			e.Msg += " (check this line's indentation)"
		}
		e.Line, e.Col = bad, col
	}
	return e
}

// maxRescanLines bounds the work firstBadLine does (it parses up to this many prefixes).
const maxRescanLines = 5000

// firstBadLine returns the 1-based line after the longest run of whole lines that
// parses as YAML, and the column of its first non-blank character; 0 when every
// line parses (the problem is at the end) or src is too long to rescan.
func firstBadLine(src []byte) (line, col int) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if len(lines) > maxRescanLines {
		return 0, 0
	}
	prefix := func(k int) []byte { return bytes.Join(lines[:k], nil) }
	for k := len(lines) - 1; k >= 0; k-- {
		var n yaml.Node
		if err := yaml.NewDecoder(bytes.NewReader(prefix(k))).Decode(&n); err != nil && !errors.Is(err, ioEOF) {
			continue
		}
		text := lines[k]
		col := len(text) - len(bytes.TrimLeft(text, " \t")) + 1
		return k + 1, col
	}
	return 0, 0
}

func underAny(path string, errs Errors) bool {
	for _, e := range errs {
		if path == e.Path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(path, e.Path+"[") {
			return true
		}
	}
	return false
}

// Pos returns where the field at path (or its closest recorded parent) stands.
func (f *File) Pos(path string) Pos {
	for p := path; p != ""; {
		if pos, ok := f.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Pos{}
}

// errAt builds an Error for the field at path.
func (f *File) errAt(path, format string, args ...any) Error {
	pos := f.Pos(path)
	return Error{File: f.Name, Line: pos.Line, Col: pos.Col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Resolve returns p relative to the policy file's folder (absolute paths unchanged).
func (f *File) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// validator is implemented by the section Configs of other packages.
type validator interface {
	Validate() []field.Error
}

func (f *File) validate() error {
	var errs Errors
	add := func(fes []field.Error, prefix string) {
		for _, fe := range fes {
			p := field.Join(prefix, fe.Path)
			errs = append(errs, f.errAt(p, "%s", fe.Msg))
		}
	}
	add(f.validatePolicy(), "")
	secs := reflect.ValueOf(&f.Policy.Sections).Elem()
	for i := range secs.NumField() {
		fv := secs.Field(i)
		if fv.Kind() == reflect.Pointer && fv.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(secs.Type().Field(i).Tag.Get("yaml"), ",")
		if v, ok := fv.Interface().(validator); ok {
			add(v.Validate(), name)
		} else if fv.CanAddr() {
			if v, ok := fv.Addr().Interface().(validator); ok {
				add(v.Validate(), name)
			}
		}
		if fv.Kind() == reflect.Map {
			iter := fv.MapRange()
			for iter.Next() {
				if v, ok := iter.Value().Interface().(validator); ok {
					add(v.Validate(), field.Join(name, iter.Key().String()))
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs)
	return errs
}

// FieldErrors turns problems found while compiling the policy (paths from its root)
// into positioned Errors.
func (f *File) FieldErrors(fes []field.Error) Errors {
	errs := make(Errors, 0, len(fes))
	for _, fe := range fes {
		errs = append(errs, f.errAt(fe.Path, "%s", fe.Msg))
	}
	sortErrors(errs)
	return errs
}

// Decode decodes policy source strictly (unknown fields, wrong shapes) without
// validating values or touching the disk: for checking policy fragments such as the
// README's examples.
func Decode(name string, src []byte) error {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&root); err != nil {
		return Errors{syntaxError(name, src, err)}
	}
	d := &decoder{file: name, pos: map[string]Pos{}}
	d.decode(&root, reflect.ValueOf(&Policy{}).Elem(), "")
	if len(d.errs) > 0 {
		return d.errs
	}
	return nil
}
