package rules

import (
	"fmt"
	"github.com/portcullis/portcullis/internal/config/field"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA zones; don't depend on the host's zoneinfo
)

// Schedule is a compiled weekly schedule: windows per weekday in a time zone, minus
// excluded dates.
type Schedule struct {
	loc *time.Location
	// days[w] holds the [from, to) minute ranges active on weekday w.
	days [7][][2]int
	// except holds excluded dates as YYYYMMDD integers, each pair an inclusive range.
	except [][2]int
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// compileSchedule checks and compiles one schedule; problems carry paths relative to it.
func compileSchedule(s *ScheduleConfig) (*Schedule, []field.Error) {
	var errs []field.Error
	out := &Schedule{loc: time.UTC}
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			errs = append(errs, field.Error{Path: "timezone", Msg: fmt.Sprintf("unknown time zone %q (use an IANA name such as Europe/Paris)", s.Timezone)})
		} else {
			out.loc = loc
		}
	}
	if len(s.Windows) == 0 {
		errs = append(errs, field.Error{Path: "windows", Msg: "a schedule needs at least one window"})
	}
	for i, w := range s.Windows {
		p := fmt.Sprintf("windows[%d]", i)
		if w == nil {
			errs = append(errs, field.Error{Path: p, Msg: "empty window"})
			continue
		}
		from, err1 := parseClock(w.From)
		if err1 != nil {
			errs = append(errs, field.Error{Path: p + ".from", Msg: err1.Error()})
		}
		to, err2 := parseClock(w.To)
		if err2 != nil {
			errs = append(errs, field.Error{Path: p + ".to", Msg: err2.Error()})
		}
		if err1 == nil && err2 == nil && from >= to {
			errs = append(errs, field.Error{Path: p + ".to", Msg: fmt.Sprintf("%s is not after %s (a window cannot cross midnight: split it in two)", w.To, w.From)})
		}
		if len(w.Days) == 0 {
			errs = append(errs, field.Error{Path: p + ".days", Msg: "no days given (use mon-fri, sat, sun…)"})
		}
		for j, d := range w.Days {
			ds, err := parseDays(d)
			if err != nil {
				errs = append(errs, field.Error{Path: fmt.Sprintf("%s.days[%d]", p, j), Msg: err.Error()})
				continue
			}
			for _, wd := range ds {
				out.days[wd] = append(out.days[wd], [2]int{from, to})
			}
		}
	}
	for i, e := range s.Except {
		lo, hi, ok := strings.Cut(e, "..")
		a, err := parseDate(lo)
		b := a
		if err == nil && ok {
			b, err = parseDate(hi)
		}
		if err != nil || b < a {
			errs = append(errs, field.Error{Path: fmt.Sprintf("except[%d]", i), Msg: fmt.Sprintf("invalid date %q (write 2026-12-25 or 2026-12-19..2027-01-04)", e)})
			continue
		}
		out.except = append(out.except, [2]int{a, b})
	}
	return out, errs
}

// Active reports whether t falls inside the schedule.
func (s *Schedule) Active(t time.Time) bool {
	t = t.In(s.loc)
	y, m, d := t.Date()
	date := y*10000 + int(m)*100 + d
	for _, r := range s.except {
		if date >= r[0] && date <= r[1] {
			return false
		}
	}
	minute := t.Hour()*60 + t.Minute()
	for _, r := range s.days[t.Weekday()] {
		if minute >= r[0] && minute < r[1] {
			return true
		}
	}
	return false
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("invalid time %q (write HH:MM, 00:00 to 24:00)", s)
	}
	return hh*60 + mm, nil
}

func parseDays(s string) ([]time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	lo, hi, isRange := strings.Cut(s, "-")
	a, ok1 := weekdays[lo]
	if !isRange {
		if !ok1 {
			return nil, fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri)", s)
		}
		return []time.Weekday{a}, nil
	}
	b, ok2 := weekdays[hi]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("unknown day range %q (use a range like mon-fri)", s)
	}
	var out []time.Weekday
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == b {
			break
		}
	}
	return out, nil
}

func parseDate(s string) (int, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d, nil
}
