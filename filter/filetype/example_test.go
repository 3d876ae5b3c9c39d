package filetype_test

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/portcullis/portcullis/filter/filetype"
)

func ExampleChecker_Check() {
	chk, err := filetype.New(filetype.Config{
		BlockMIME:       []string{"application/x-msdownload"},
		BlockExtensions: []string{".exe", ".msi"},
		MaxBytes:        100 << 20,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := &http.Request{URL: &url.URL{Path: "/download"}}
	resp := &http.Response{Header: http.Header{
		"Content-Type":        {"application/octet-stream"},
		"Content-Disposition": {`attachment; filename="Setup.EXE"`},
	}}
	fmt.Println(chk.Check(req, resp))
	resp.Header.Del("Content-Disposition")
	fmt.Println(chk.Check(req, resp))
	// Output:
	// true file extension .exe is blocked (attachment "Setup.EXE")
	// false
}
