package relay_test

import (
	"fmt"
	"net/http"

	"github.com/portcullis/portcullis/internal/relay"
)

func ExampleRemoveHopByHop() {
	h := http.Header{
		"Connection":          {"keep-alive, X-Hop"},
		"X-Hop":               {"only for the next hop"},
		"Proxy-Authorization": {"Basic YWxpY2U6c2VjcmV0"},
		"Te":                  {"trailers"},
		"Accept":              {"*/*"},
	}
	relay.RemoveHopByHop(h)
	fmt.Println(h)
	// Output: map[Accept:[*/*] Te:[trailers]]
}
