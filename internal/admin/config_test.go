package admin

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/accesslog"
)

func TestConfigValidate(t *testing.T) {
	c := Config{Listen: "localhost", Log: accesslog.Config{Format: "xml", Buffer: -1}}
	errs := c.Validate()
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	if strings.Join(paths, ",") != "listen,log.format,log.buffer" {
		t.Errorf("got %v", errs)
	}
	good := Config{Listen: "[::1]:9090", Log: accesslog.Config{Format: accesslog.FormatCombined}}
	if errs := good.Validate(); len(errs) != 0 {
		t.Errorf("good config: %v", errs)
	}
	for _, c := range []Config{{}, {Listen: ListenOff}, {Log: accesslog.Config{Path: "access.log"}}} {
		if c.Enabled() {
			t.Errorf("%+v: admin listener enabled without admin.listen", c)
		}
	}
	if !good.Enabled() {
		t.Error("admin listener disabled with admin.listen set")
	}
}
