//go:build !unix

package accept

// DescriptorLimit returns 0 (unknown) where there is no RLIMIT_NOFILE.
func DescriptorLimit() uint64 { return 0 }
