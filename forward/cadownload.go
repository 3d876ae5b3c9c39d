package forward

import (
	"crypto/sha256"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/internal/certs"
)

// CA download paths, served on the door's own port (relative URLs) to allowed
// clients without sign-in, like the PAC file, and on the admin listener.
const (
	CAPagePath = "/ca"     // install instructions per system and browser
	CAPEMPath  = "/ca.pem" // the certificate, PEM (Linux, macOS, iOS, Firefox, ChromeOS)
	CACRTPath  = "/ca.crt" // the certificate, DER (Windows, Android)
)

// CAHandler serves the inspection CA for installation: CAPagePath (an HTML
// page with the certificate's SHA-256 fingerprint and the steps for Windows,
// macOS, ChromeOS, iOS, Android, Firefox and Linux), CAPEMPath and CACRTPath.
// Any other path gets 404. It never serves the key.
func CAHandler(ca *certs.CA) http.Handler {
	sum := sha256.Sum256(ca.Certificate().Raw)
	var fp strings.Builder
	for i, b := range sum {
		if i > 0 {
			fp.WriteByte(':')
		}
		fmt.Fprintf(&fp, "%02X", b)
	}
	var page strings.Builder
	_ = caPageTemplate.Execute(&page, struct{ Subject, Fingerprint string }{ca.Certificate().Subject.CommonName, fp.String()})
	pemBytes, html := ca.CertPEM(), page.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case CAPagePath:
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
			_, _ = w.Write([]byte(html))
		case CAPEMPath:
			h.Set("Content-Type", "application/x-pem-file")
			h.Set("Content-Disposition", `attachment; filename="portcullis-ca.pem"`)
			_, _ = w.Write(pemBytes)
		case CACRTPath:
			h.Set("Content-Type", "application/x-x509-ca-cert")
			h.Set("Content-Disposition", `attachment; filename="portcullis-ca.crt"`)
			_, _ = w.Write(ca.Certificate().Raw)
		default:
			http.NotFound(w, r)
		}
	})
}

// caPaths reports whether path is one CAHandler serves.
func caPaths(path string) bool {
	return path == CAPagePath || path == CAPEMPath || path == CACRTPath
}

var caPageTemplate = template.Must(template.New("ca").Parse(`<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Install the network's certificate</title>
<body style="font-family:system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;line-height:1.5">
<h1>Install the network's certificate</h1>
<p>This network's proxy inspects some HTTPS traffic, for example to show you why a page is blocked
instead of a browser error. For that to work without warnings, your device must trust the network's
certificate authority, <b>{{.Subject}}</b>. Install it only on a device you use on this network, and
only if your school or organisation asked you to.</p>
<p>Check, before you trust it, that its SHA-256 fingerprint is the one your IT team published:<br>
<code style="word-break:break-all">{{.Fingerprint}}</code></p>
<p><a href="/ca.pem">Download portcullis-ca.pem</a> (most systems) &middot;
<a href="/ca.crt">Download portcullis-ca.crt</a> (Windows, Android)</p>
<h2>Windows</h2>
<p>Open <code>portcullis-ca.crt</code>, choose <i>Install Certificate</i>, <i>Local Machine</i>, then
<i>Place all certificates in the following store</i>: <i>Trusted Root Certification Authorities</i>.
Edge and Chrome use it at once; restart them if they were open.</p>
<h2>macOS</h2>
<p>Open <code>portcullis-ca.pem</code>: Keychain Access adds it to the <i>login</i> or <i>System</i>
keychain. Double-click it there, open <i>Trust</i> and set <i>When using this certificate</i> to
<i>Always Trust</i>. Safari and Chrome use it.</p>
<h2>ChromeOS</h2>
<p>Settings, <i>Privacy and security</i>, <i>Security</i>, <i>Manage certificates</i>,
<i>Authorities</i>, <i>Import</i>: choose <code>portcullis-ca.pem</code> and tick <i>Trust this
certificate for identifying websites</i>. Managed Chromebooks get it from the admin console instead.</p>
<h2>iPhone and iPad (iOS, iPadOS)</h2>
<p>Open this page in Safari and download <code>portcullis-ca.pem</code>; allow the profile. Then
Settings, <i>Profile Downloaded</i>, <i>Install</i>. Finally Settings, <i>General</i>, <i>About</i>,
<i>Certificate Trust Settings</i>: turn on full trust for the certificate.</p>
<h2>Android</h2>
<p>Download <code>portcullis-ca.crt</code>, then Settings, <i>Security</i> (or <i>Security and
privacy</i>), <i>More security settings</i>, <i>Encryption and credentials</i>, <i>Install a
certificate</i>, <i>CA certificate</i>. Chrome trusts it; many apps do not, by design.</p>
<h2>Firefox (every system)</h2>
<p>Firefox keeps its own list: Settings, <i>Privacy &amp; Security</i>, <i>Certificates</i>,
<i>View Certificates</i>, <i>Authorities</i>, <i>Import</i>: choose <code>portcullis-ca.pem</code> and
tick <i>Trust this CA to identify websites</i>. (Or set <code>security.enterprise_roots.enabled</code>
to use the system's certificates on Windows and macOS.)</p>
<h2>Linux</h2>
<p>Debian, Ubuntu: <code>sudo cp portcullis-ca.pem /usr/local/share/ca-certificates/portcullis-ca.crt
&amp;&amp; sudo update-ca-certificates</code>. Fedora: copy it to
<code>/etc/pki/ca-trust/source/anchors/</code> and run <code>sudo update-ca-trust</code>. Chrome and
Chromium on Linux read their own store: Settings, <i>Privacy and security</i>, <i>Security</i>,
<i>Manage certificates</i>, <i>Authorities</i>, <i>Import</i>.</p>
</body></html>
`))
