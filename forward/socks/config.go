package socks

import (
	"github.com/portcullis/portcullis/internal/config/field"
)

// Sign-in modes of Config.Auth.
const (
	AuthNone     = "none"
	AuthPassword = "password"
)

// Config is the `forward.socks` section: SOCKS5 listeners of the forward door.
// Their connections are decided by the forward door's rules as CONNECTs are.
type Config struct {
	// Listen holds the addresses ("host:port") of the SOCKS5 listeners. Default
	// none (no SOCKS5 door).
	Listen []string `yaml:"listen"`
	// Auth is how SOCKS5 clients sign in: "password" (RFC 1929, checked against
	// forward.auth like the proxy's own sign-in) or "none". Default: "password"
	// when forward.auth is set, else "none".
	Auth string `yaml:"auth"`
}

// Validate reports an unknown auth mode, at paths relative to the section
// (the listen addresses are checked by the forward section, with its own).
// signIn says whether the forward door has a sign-in to check passwords
// against.
func (c *Config) Validate(signIn bool) []field.Error {
	switch c.Auth {
	case "", AuthNone:
	case AuthPassword:
		if !signIn {
			return []field.Error{field.Errorf("auth", "password needs forward.auth (the sign-in passwords are checked against)")}
		}
	default:
		return []field.Error{field.Errorf("auth", "%q is not none or password", c.Auth)}
	}
	return nil
}

// Mode returns the sign-in mode with its default applied.
func (c *Config) Mode(signIn bool) string {
	if c.Auth == "" {
		if signIn {
			return AuthPassword
		}
		return AuthNone
	}
	return c.Auth
}
