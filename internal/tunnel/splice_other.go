//go:build !linux

package tunnel

import (
	"errors"
	"net"
	"syscall"
)

// splicePipe is unused off Linux: directions copy with io.Copy.
type splicePipe struct{}

func newSplicePipe() (*splicePipe, error) { return nil, errors.ErrUnsupported }

func (*splicePipe) close() {}

// spliceConn is nil off Linux: no direction splices through a pipe of its own.
func spliceConn(net.Conn) syscall.RawConn { return nil }

func spliceCopy(_, _ syscall.RawConn, _ *splicePipe) (int64, error) { return 0, errors.ErrUnsupported }
