//go:build unix

package upstream

// canDeferWrite: connReader may write a pending head inside the read's
// callback (sockio.Conn.ReadAfter).
const canDeferWrite = true
