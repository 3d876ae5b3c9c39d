// Command portcullis is the Portcullis proxy: forward (browser and school) proxy,
// reverse proxy with load balancing and caching, and DNS, from one policy file.
// See `portcullis help`.
package main

import (
	"os"

	"github.com/portcullis/portcullis/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
