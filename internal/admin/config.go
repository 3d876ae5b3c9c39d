package admin

import (
	"net"
	"strconv"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/config/field"
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
	Log accesslog.Config `yaml:"log"`
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
