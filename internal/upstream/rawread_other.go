//go:build !unix

package upstream

import "errors"

// canDeferWrite: elsewhere connReader always reads through the connection.
const canDeferWrite = false

func readFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
