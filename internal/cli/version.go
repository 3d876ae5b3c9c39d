package cli

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Release builds stamp these with the linker (docs/operations.md, "Release build"):
//
//	go build -trimpath -ldflags "-X github.com/portcullis/portcullis/internal/cli.releaseVersion=v1.2.0 \
//	  -X github.com/portcullis/portcullis/internal/cli.releaseCommit=$(git rev-parse HEAD) \
//	  -X github.com/portcullis/portcullis/internal/cli.releaseDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/portcullis
//
// They are written only by the linker; empty values fall back to the build info.
var (
	releaseVersion string
	releaseCommit  string
	releaseDate    string
)

// buildVersion is what `portcullis version` reports.
type buildVersion struct {
	Version  string // module or release version; "(devel)" when unknown
	Commit   string // VCS revision; "" when unknown
	Date     string // commit time (RFC 3339); "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Go       string // toolchain, OS and architecture
}

// readVersion combines the linker stamps with runtime/debug.ReadBuildInfo (the
// module version, and the vcs.* settings `go build` records in a git checkout).
func readVersion() buildVersion {
	v := buildVersion{Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Date = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if releaseCommit != "" {
		v.Modified = false // the release stamp describes the source exactly
	}
	v.Version = cmp.Or(releaseVersion, v.Version, "(devel)")
	v.Commit = cmp.Or(releaseCommit, v.Commit)
	v.Date = cmp.Or(releaseDate, v.Date)
	return v
}

// versionText is `portcullis version`'s output.
func versionText() string {
	v := readVersion()
	var b strings.Builder
	fmt.Fprintf(&b, "portcullis %s\n", v.Version)
	switch {
	case v.Commit == "":
		b.WriteString("commit:  unknown (built without VCS information: see \"Release build\" in docs/operations.md)\n")
	case v.Modified:
		fmt.Fprintf(&b, "commit:  %s (modified: uncommitted changes)\n", v.Commit)
	default:
		fmt.Fprintf(&b, "commit:  %s\n", v.Commit)
	}
	if v.Date != "" {
		fmt.Fprintf(&b, "date:    %s\n", v.Date)
	}
	fmt.Fprintf(&b, "go:      %s\n", v.Go)
	return b.String()
}
