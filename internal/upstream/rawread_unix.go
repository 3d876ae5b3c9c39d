//go:build unix

package upstream

import "github.com/portcullis/portcullis/internal/sockio"

// canDeferWrite: connReader may write a pending head inside RawConn.Read's
// callback and read the socket itself (readFD).
const canDeferWrite = true

// readFD reads from a socket descriptor (without telling the scheduler: see
// internal/sockio).
func readFD(fd uintptr, p []byte) (int, error) { return sockio.ReadFD(fd, p) }
