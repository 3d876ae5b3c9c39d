package engine

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/config/field"
)

// policyZone is the policy's time zone, in which block pages show the time: the
// zone of its schedules when they all name the same one (a school's timetable),
// otherwise the machine's local zone.
func policyZone(p *config.Policy) *time.Location {
	zone := ""
	for _, s := range p.Schedules {
		if s == nil {
			continue
		}
		z := cmp.Or(s.Timezone, "UTC") // a schedule's default zone
		if zone != "" && z != zone {
			return time.Local
		}
		zone = z
	}
	if zone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(zone)
	if err != nil { // validated when the policy loaded; keep serving regardless
		return time.Local
	}
	return loc
}

// blockPage is the block page for st's policy, showing times in its zone, with
// forward.block_page's template, languages and unblock link. An error is a field
// error at the policy's forward.block_page.template (a template that does not
// parse or reads an unknown field: "TEMPLATE:LINE:COL: message").
func blockPage(st *state) (*filter.BlockPage, error) {
	o := filter.BlockPageOptions{Location: policyZone(st.file.Policy)}
	if fw := st.file.Policy.Forward; fw != nil {
		bc := fw.BlockPage
		o.Lang, o.UnblockURL = bc.Lang, bc.UnblockURL
		if bc.Template != "" {
			path := st.file.Resolve(bc.Template)
			text, err := os.ReadFile(path)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.block_page.template", "cannot read %s: %v", path, err)})
			}
			o.Template, o.TemplateName = string(text), path
		}
	}
	bp, err := filter.NewBlockPageWith(o)
	if err != nil {
		return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.block_page.template", "%v", err)})
	}
	return bp, nil
}
