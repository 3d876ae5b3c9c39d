package filter_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/portcullis/portcullis/filter"
)

func ExampleDomainSet() {
	var b filter.DomainSetBuilder
	for _, d := range []string{"example.com", "m.example.com", "ads.example.net"} {
		if err := b.Add(d); err != nil {
			fmt.Println(err)
		}
	}
	set := b.Build()
	fmt.Println(set.Match("www.example.com"), set.Match("xample.com"), set.MatchExact("www.example.com"))
	// Output: true false false
}

func ExampleLoadList() {
	dir, err := os.MkdirTemp("", "filter-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "blocked.txt")
	content := "# school blocklist\nexample.com\nnot a domain\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	list, err := filter.LoadList(filter.FormatDomains, path)
	if err != nil {
		fmt.Println(err) // only a missing or unreadable file is an error
		return
	}
	fmt.Println(list.Len(), list.Match("games.example.com"))
	for _, p := range list.Problems {
		fmt.Println(filepath.Base(p.File), p.Line, p.Msg)
	}
	// Output:
	// 1 true
	// blocked.txt 3 expected one domain, got "not a domain"
}

func ExampleGlobSet() {
	set, err := filter.NewGlobSet([]string{"*.tiktok.*", "**.example.com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Match("www.tiktok.com"), set.Match("example.com"), set.Match("a.b.example.com"), set.Match("tiktok.com"))
	_, err = filter.NewGlobSet([]string{"{a,b"})
	fmt.Println(err)
	// Output:
	// true true true false
	// bad glob "{a,b": glob: syntax error at 4: unclosed `{`
}

func ExampleNormalizeHost() {
	for _, h := range []string{"WWW.Example.COM.:443", "bücher.de", "[2001:DB8::1]:8080", "127.1"} {
		n, err := filter.NormalizeHost(h)
		fmt.Printf("%q %v\n", n, err != nil)
	}
	// Output:
	// "www.example.com" false
	// "xn--bcher-kva.de" false
	// "2001:db8::1" false
	// "" true
}

func ExampleCIDRSet() {
	set, err := filter.ParseCIDRSet([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Match(netip.MustParseAddr("10.1.2.3")), set.Match(netip.MustParseAddr("::ffff:10.1.2.3")), set.Match(netip.MustParseAddr("192.0.2.1")))
	// Output: true true false
}
