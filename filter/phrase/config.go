package phrase

import (
	"fmt"

	"github.com/portcullis/portcullis/internal/config/field"
)

// DefaultThreshold is the naughtynesslimit e2guardian ships (its comment: 50
// for young children, 100 for older ones, 160 for young adults).
const DefaultThreshold = 50

// maxMaxScan bounds Config.MaxScan: what a single response may hold in memory.
const maxMaxScan = 16 << 20

// Config is a phrase_filter section of the policy file (per group or rule).
type Config struct {
	// Lists are phrase list files (see LoadFile), scored together.
	Lists []string `yaml:"lists"`
	// Threshold blocks a page scoring more than it (default DefaultThreshold).
	Threshold int `yaml:"threshold"`
	// MaxScan is how many bytes of a response are held back and scored
	// before it is passed (default DefaultMaxScan, at most 16 MiB).
	MaxScan int `yaml:"max_scan"`
	// ScanTail keeps scoring beyond MaxScan and cuts the response short if the
	// threshold is crossed late (see Options.ScanTail). Default false.
	ScanTail bool `yaml:"scan_tail"`
}

// Validate reports problems with c; paths are relative to c. It does not read
// the list files: Compile does.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	for i, l := range c.Lists {
		if l == "" {
			errs = append(errs, field.Errorf(fmt.Sprintf("lists[%d]", i), "empty path"))
		}
	}
	if c.Threshold < 0 {
		errs = append(errs, field.Errorf("threshold", "must not be negative"))
	}
	if c.MaxScan < 0 || c.MaxScan > maxMaxScan {
		errs = append(errs, field.Errorf("max_scan", "must be between 0 (default) and %d", maxMaxScan))
	}
	return errs
}

// Compile loads the lists (paths as given: the caller resolves them against
// the policy file first) and compiles them into one Matcher. Errors name
// FILE:LINE.
func (c *Config) Compile() (*Matcher, error) {
	lists := make([]*List, 0, len(c.Lists))
	for _, p := range c.Lists {
		l, err := LoadFile(p)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	return Compile(lists...), nil
}

// Options returns the Filter options c describes, defaults applied.
func (c *Config) Options() Options {
	o := Options{Threshold: c.Threshold, MaxScan: c.MaxScan, ScanTail: c.ScanTail}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.MaxScan == 0 {
		o.MaxScan = DefaultMaxScan
	}
	return o
}
