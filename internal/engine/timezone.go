package engine

import (
	"cmp"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config"
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

// blockPage is the block page for st's policy, showing times in its zone.
func blockPage(st *state) (*filter.BlockPage, error) {
	return filter.NewBlockPageIn(policyZone(st.file.Policy))
}
