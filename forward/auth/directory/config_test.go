package directory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewFileErrors: New names the field and the file of a password file that
// is missing or empty (an empty service password would be an unauthenticated
// bind) and of a CA file that holds no certificate.
func TestNewFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty, notPEM := filepath.Join(dir, "empty.pw"), filepath.Join(dir, "ca.txt")
	for p, c := range map[string]string{empty: "\n", notPEM: "hello\n"} {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := Config{URL: "ldap://127.0.0.1:1", BaseDN: "dc=school,dc=test", BindDN: "cn=svc,dc=school,dc=test"}
	for _, c := range []struct {
		pw, ca, field, says string
	}{
		{filepath.Join(dir, "missing.pw"), "", "bind_password_file", "cannot read " + filepath.Join(dir, "missing.pw") + ": no such file"},
		{empty, "", "bind_password_file", empty + ": is empty"},
	} {
		cfg := base
		cfg.BindPasswordFile, cfg.CAFile = c.pw, c.ca
		_, err := New(cfg)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.says) {
			t.Errorf("New(pw %s, ca %s) = %v, want a FileError at %s saying %q", c.pw, c.ca, err, c.field, c.says)
		}
	}
	cfg := Config{URL: "ldaps://127.0.0.1:1", BaseDN: "dc=school,dc=test", CAFile: notPEM}
	var fe *FileError
	if _, err := New(cfg); !errors.As(err, &fe) || fe.Field != "ca_file" || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New with a CA file holding no certificate: %v", err)
	}
}

// TestValidate: each rule of Validate, by the path it reports.
func TestValidate(t *testing.T) {
	ok := Config{URL: "ldaps://dc.school.example", BaseDN: "dc=school,dc=example", BindDN: "cn=svc,dc=school,dc=example", BindPasswordFile: "pw",
		UserFilter: "(sAMAccountName={user})", MemberOf: "memberOf", Groups: []string{"Teachers"}}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	for _, c := range []struct {
		edit func(*Config)
		path string
	}{
		{func(c *Config) { c.URL = "" }, "url"},
		{func(c *Config) { c.URL = "https://dc.school.example" }, "url"},
		{func(c *Config) { c.URL = "ldap:///" }, "url"},
		{func(c *Config) { c.URL = "ldap://dc/dc=school" }, "url"},
		{func(c *Config) { c.StartTLS = true }, "start_tls"},
		{func(c *Config) { c.BindPasswordFile = "" }, "bind_password_file"},
		{func(c *Config) { c.BindDN = "not a dn" }, "bind_dn"},
		{func(c *Config) { c.BaseDN = "" }, "base_dn"},
		{func(c *Config) { c.UserFilter = "(uid=alice)" }, "user_filter"},
		{func(c *Config) { c.UserFilter = "(uid={user}" }, "user_filter"},
		{func(c *Config) { c.GroupFilter = "(member={dn})" }, "member_of"},
		{func(c *Config) { c.MemberOf, c.GroupFilter = "", "(objectClass=group)" }, "group_filter"},
		{func(c *Config) { c.MemberOf = "" }, "groups"},
		{func(c *Config) { c.Groups = nil }, "groups"},
		{func(c *Config) { c.Groups = []string{"teachers", "Teachers"} }, "groups[1]"},
		{func(c *Config) { c.GroupAttribute = "c n" }, "group_attribute"},
		{func(c *Config) { c.CacheSize = -1 }, "cache_size"},
		{func(c *Config) { c.Timeout = -1 }, "timeout"},
	} {
		cfg := ok
		cfg.Groups = append([]string(nil), ok.Groups...)
		c.edit(&cfg)
		errs := cfg.Validate()
		if len(errs) != 1 || errs[0].Path != c.path {
			t.Errorf("%+v: %v, want one problem at %s", cfg, errs, c.path)
		}
	}
}
