package filetype

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var schoolConfig = Config{
	BlockMIME:       []string{"application/x-msdownload", "Application/X-MSI", "video/*"},
	BlockExtensions: []string{".exe", ".MSI", ".bat", ".scr", ".tar.gz"},
	MaxBytes:        1000,
}

// TestCheckOverHTTP serves responses from a real loopback server, fetches them
// with a real client and checks the headers the client received.
func TestCheckOverHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range testHeaders[r.URL.Query().Get("case")] {
			w.Header().Set(k, v)
		}
		size := 10
		if r.URL.Query().Get("big") != "" {
			size = 1001
		}
		if r.URL.Query().Get("chunked") != "" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, strings.Repeat("x", size))
	}))
	defer srv.Close()
	chk, err := New(schoolConfig)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path    string
		blocked bool
		reason  string
	}{
		{"/index.html?case=html", false, ""},
		{"/get?case=exe-mime", true, "file type application/x-msdownload is blocked"},
		{"/get?case=msi-mime-params", true, "file type application/x-msi is blocked"},
		{"/get?case=video", true, "file type video/mp4 is blocked"},
		{"/get?case=attachment", true, `file extension .exe is blocked (attachment "Setup.EXE")`},
		{"/get?case=attachment-star", true, `file extension .msi is blocked (attachment "instal€.msi")`},
		{"/get?case=attachment-path", true, `file extension .bat is blocked (attachment "run.bat")`},
		{"/get?case=attachment-sloppy", true, `file extension .scr is blocked (attachment "screen saver.scr")`},
		{"/get?case=attachment-ok", false, ""},
		{"/files/Tool.Exe?case=html", true, "file extension .exe is blocked (Tool.Exe)"},
		{"/files/backup.TAR.GZ?case=octet", true, "file extension .tar.gz is blocked (backup.TAR.GZ)"},
		{"/files/trailing.exe.?case=octet", true, "file extension .exe is blocked (trailing.exe.)"},
		{"/files/notes.txt?case=octet", false, ""},
		{"/files/.exe?case=octet", false, ""},
		{"/files/exe?case=octet", false, ""},
		{"/files/setup.exe/?case=octet", true, "file extension .exe is blocked (setup.exe)"},
		{"/big?case=html&big=1", true, "download of 1001 bytes exceeds the limit of 1000 bytes"},
		{"/big?case=html&big=1&chunked=1", false, ""},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		blocked, reason := chk.Check(resp.Request, resp)
		if blocked != c.blocked || reason != c.reason {
			t.Errorf("%s: Check = %v, %q; want %v, %q", c.path, blocked, reason, c.blocked, c.reason)
		}
		if b2, r2 := chk.Check(nil, resp); b2 != blocked || r2 != reason {
			t.Errorf("%s: Check(nil, resp) differs from Check(resp.Request, resp)", c.path)
		}
	}
}

var testHeaders = map[string]map[string]string{
	"html":              {"Content-Type": "text/html; charset=utf-8"},
	"octet":             {"Content-Type": "application/octet-stream"},
	"exe-mime":          {"Content-Type": "application/x-msdownload"},
	"msi-mime-params":   {"Content-Type": `APPLICATION/X-MSI; name="a.msi"`},
	"video":             {"Content-Type": "Video/MP4"},
	"attachment":        {"Content-Type": "application/octet-stream", "Content-Disposition": `attachment; filename="Setup.EXE"`},
	"attachment-star":   {"Content-Type": "application/octet-stream", "Content-Disposition": `attachment; filename="install.txt"; filename*=UTF-8''instal%E2%82%AC.msi`},
	"attachment-path":   {"Content-Type": "application/octet-stream", "Content-Disposition": `attachment; filename="C:\\temp\\run.bat"`},
	"attachment-sloppy": {"Content-Type": "application/octet-stream", "Content-Disposition": `attachment; filename=screen saver.scr; size=3`},
	"attachment-ok":     {"Content-Type": "application/pdf", "Content-Disposition": `inline; filename="exe.pdf"`},
}

func TestZeroConfigBlocksNothing(t *testing.T) {
	chk, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{Header: http.Header{"Content-Type": {"application/x-msdownload"}}, ContentLength: 1 << 40}
	if b, r := chk.Check(nil, resp); b {
		t.Fatalf("zero config blocked: %s", r)
	}
	var nilChecker *Checker
	if b, _ := nilChecker.Check(nil, resp); b {
		t.Fatal("nil Checker blocked")
	}
}

func TestContentLengthHeaderOnly(t *testing.T) {
	chk, _ := New(Config{MaxBytes: 100})
	resp := &http.Response{Header: http.Header{"Content-Length": {"101"}}, ContentLength: -1}
	if b, _ := chk.Check(nil, resp); !b {
		t.Fatal("Content-Length header over the limit not blocked")
	}
}

func TestValidate(t *testing.T) {
	c := Config{
		BlockMIME:       []string{"application/x-msdownload", "text", "*/*", "a/b; q=1", "video/*"},
		BlockExtensions: []string{".exe", "exe", ".", "*.exe", ".tar.gz"},
		MaxBytes:        -1,
	}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Path)
	}
	want := "block_mime[1] block_mime[2] block_mime[3] block_extensions[1] block_extensions[2] block_extensions[3] max_bytes"
	if strings.Join(got, " ") != want {
		t.Fatalf("Validate paths = %v\nwant %s", got, want)
	}
	if _, err := New(c); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	if errs := schoolConfig.Validate(); len(errs) != 0 {
		t.Fatalf("valid config rejected: %v", errs)
	}
}

func TestLimitBody(t *testing.T) {
	chk, _ := New(Config{MaxBytes: 100})
	for _, c := range []struct {
		size    int
		tooBig  bool
		wantLen int
	}{{99, false, 99}, {100, false, 100}, {101, true, 100}, {100000, true, 100}} {
		body := chk.LimitBody(io.NopCloser(strings.NewReader(strings.Repeat("x", c.size))))
		got, err := io.ReadAll(body)
		var tl *TooLargeError
		if errors.As(err, &tl) != c.tooBig || len(got) != c.wantLen {
			t.Errorf("size %d: %d bytes, err %v; want %d bytes, too large %v", c.size, len(got), err, c.wantLen, c.tooBig)
		}
	}
	unlimited, _ := New(Config{})
	body := io.NopCloser(strings.NewReader("x"))
	if unlimited.LimitBody(body) != body {
		t.Error("LimitBody without MaxBytes wrapped the body")
	}
}
