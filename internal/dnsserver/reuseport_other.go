//go:build !unix

package dnsserver

import "syscall"

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }

const haveReusePort = false
