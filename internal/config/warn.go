package config

import (
	"reflect"
	"strings"

	"github.com/portcullis/portcullis/internal/config/field"
)

// warner is implemented by the section Configs that can spot settings that are
// valid but probably not what the author meant.
type warner interface {
	Warnings() []field.Error
}

// Warnings returns what the policy's sections warn about, positioned like Errors
// ("FILE:LINE:COL: path: warning: msg"): `portcullis validate` prints them and the
// engine logs them at start and on every reload, but they refuse nothing.
func (f *File) Warnings() Errors {
	var out Errors
	secs := reflect.ValueOf(&f.Policy.Sections).Elem()
	for i := range secs.NumField() {
		fv := secs.Field(i)
		if fv.Kind() != reflect.Pointer || fv.IsNil() {
			continue
		}
		w, ok := fv.Interface().(warner)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(secs.Type().Field(i).Tag.Get("yaml"), ",")
		for _, fe := range w.Warnings() {
			out = append(out, f.errAt(field.Join(name, fe.Path), "warning: %s", fe.Msg))
		}
	}
	sortErrors(out)
	return out
}
