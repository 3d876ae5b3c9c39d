package accesslog

import "github.com/portcullis/portcullis/internal/config/field"

// DefaultBuffer is how many entries may wait for the writer when Config.Buffer is 0.
const DefaultBuffer = 4096

// Format is an access-log line format.
type Format string

// The access-log formats.
const (
	FormatJSON     Format = "json"     // one JSON object per line, stable field names
	FormatCombined Format = "combined" // Apache/nginx combined log format (DNS queries in its shape)
	FormatSquid    Format = "squid"    // Squid native access.log (SARG, Calamaris, lightsquid…; DNS queries in its shape)
)

// Config is the policy's access log (admin.log): `log: {format: json|combined|squid, path: FILE}`.
type Config struct {
	// Format is json, combined or squid; "" means json. Every format records HTTP
	// requests and DNS queries; combined and squid write a query in HTTP's shape
	// (query type as the method, dns://NAME/?rcode=…&proto=…&rule=… as the URL, the
	// rcode as an HTTP status), as docs/operations.md ("Access logs") describes.
	Format Format `yaml:"format"`
	// Path is the file appended to (created 0640); "" means standard output.
	// SIGUSR1 (AccessLog.Reopen) reopens it after logrotate moved it.
	Path string `yaml:"path"`
	// StripQuery drops the query string from logged URLs (Squid's strip_query_terms).
	StripQuery bool `yaml:"strip_query"`
	// Buffer is how many entries may wait for the writer before new ones are dropped
	// (and counted); 0 means 4096.
	Buffer int `yaml:"buffer"`
	// Off turns the access log off (nginx's access_log off): no lines are
	// formatted or written; metrics and the status page still count every request.
	Off bool `yaml:"off"`
}

func (c *Config) Validate() []field.Error {
	var errs []field.Error
	switch c.Format {
	case "", FormatJSON, FormatCombined, FormatSquid:
	default:
		errs = append(errs, field.Errorf("format", "unknown format %q (want json, combined or squid)", c.Format))
	}
	if c.Buffer < 0 {
		errs = append(errs, field.Errorf("buffer", "must not be negative, got %d", c.Buffer))
	}
	if c.Off && c.Path != "" {
		errs = append(errs, field.Errorf("off", "the log is off but a path is given (%q): remove one", c.Path))
	}
	return errs
}

func (c *Config) format() Format {
	if c.Format == "" {
		return FormatJSON
	}
	return c.Format
}

func (c *Config) buffer() int {
	if c.Buffer == 0 {
		return DefaultBuffer
	}
	return c.Buffer
}
