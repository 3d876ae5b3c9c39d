//go:build !unix

package cli

import "os"

// controlSignals are the signals run acts on where there is no SIGHUP or
// SIGUSR1 (reload with --watch instead):
// an interrupt drains and stops.
func controlSignals() []os.Signal { return []os.Signal{os.Interrupt} }

// isReload reports whether s asks for a policy reload: never here.
func isReload(os.Signal) bool { return false }

// isReopenLogs reports whether s asks for the log files to be reopened: never here.
func isReopenLogs(os.Signal) bool { return false }
