package accept

// ConnBudget returns how many connections, each holding perConn file
// descriptors, fit under nofile descriptors once a reserve is set aside for
// everything else (listeners, logs, other doors, DNS sockets): a quarter of
// nofile, at most 256. It is at least 16, and 0 (unlimited) when nofile is
// 0 (unknown).
func ConnBudget(nofile uint64, perConn int) int {
	if nofile == 0 {
		return 0
	}
	perConn = max(perConn, 1)
	reserve := min(nofile/4, 256)
	return max(int((nofile-reserve)/uint64(perConn)), 16)
}
