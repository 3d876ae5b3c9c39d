//go:build unix

package cli

import (
	"os"
	"syscall"
)

// controlSignals are the signals run acts on: SIGHUP reloads the policy,
// SIGUSR1 reopens the log files, SIGTERM and SIGINT drain and stop.
func controlSignals() []os.Signal {
	return []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT}
}

// isReload reports whether s asks for a policy reload.
func isReload(s os.Signal) bool { return s == syscall.SIGHUP }

// isReopenLogs reports whether s asks for the log files to be reopened.
func isReopenLogs(s os.Signal) bool { return s == syscall.SIGUSR1 }
