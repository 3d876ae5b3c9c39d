//go:build !unix

package upstream

// canDeferWrite: elsewhere connReader always reads through the connection.
const canDeferWrite = false
