package admin

import (
	"net"
	"strconv"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Default values used when a Config field is left at its zero value.
const (
	DefaultLogBuffer = 4096 // access-log entries queued before lines are dropped
)

// Format is an access-log line format.
type Format string

// The access-log formats.
const (
	FormatJSON     Format = "json"     // one JSON object per line, stable field names
	FormatCombined Format = "combined" // Apache/nginx combined log format (DNS queries in its shape)
	FormatSquid    Format = "squid"    // Squid native access.log (SARG, Calamaris, lightsquid…; DNS queries in its shape)
)

// Config is the policy file's `admin` section.
type Config struct {
	// Listen is the admin listener's address (127.0.0.1:9090 in the examples; never
	// a proxy port). "" or "off" means no admin listener: an admin section that only
	// sets the access log opens no port (status page, metrics and pprof included).
	Listen string `yaml:"listen"`
	// Token, when set, is required on every route but /healthz and /readyz, as
	// "Authorization: Bearer TOKEN" (Prometheus) or as the password of HTTP basic
	// authentication (browsers; any user name).
	Token string `yaml:"token"`
	// Log is the access log.
	Log LogConfig `yaml:"log"`
}

// LogConfig is the access log: `log: {format: json|combined|squid, path: FILE}`.
type LogConfig struct {
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

// ListenOff as Config.Listen keeps the admin section (the access log) without an
// admin listener, as leaving Listen out does.
const ListenOff = "off"

// Enabled reports whether the admin listener should run: only when Listen names
// an address.
func (c *Config) Enabled() bool { return c.Listen != "" && c.Listen != ListenOff }

// Validate reports every problem with c; paths are relative to the admin section.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	if c.Listen != "" && c.Listen != ListenOff {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, field.Errorf("listen", "want host:port, got %q", c.Listen))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, field.Errorf("listen", "bad port %q", port))
		}
	}
	errs = append(errs, field.Prefix("log", c.Log.Validate())...)
	return errs
}

// Validate reports every problem with c; paths are relative to the log section.
func (c *LogConfig) Validate() []field.Error {
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

func (c *LogConfig) format() Format {
	if c.Format == "" {
		return FormatJSON
	}
	return c.Format
}

func (c *LogConfig) buffer() int {
	if c.Buffer == 0 {
		return DefaultLogBuffer
	}
	return c.Buffer
}
