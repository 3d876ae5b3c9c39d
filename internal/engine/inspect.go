package engine

import (
	"crypto/tls"
	"net/http"

	"github.com/portcullis/portcullis/forward"
)

// useInspection loads the inspection CA st names (forward.ca_cert/ca_key) into st,
// keeping the leaf-certificate cache across reloads while the CA stays the same.
func (e *Engine) useInspection(st *state) error {
	cfg := st.file.Policy.Forward
	if cfg == nil || cfg.CACert == "" {
		return nil
	}
	certPath, keyPath := st.file.Resolve(cfg.CACert), st.file.Resolve(cfg.CAKey)
	ca, err := forward.LoadCA(certPath, keyPath)
	if err != nil {
		return err
	}
	s := e.shared
	s.mu.Lock()
	leaves, key, size := s.leaves, certPath+"|"+keyPath, cfg.WithDefaults().LeafCacheSize
	if leaves == nil || s.leavesKey != key || s.leavesSize != size {
		leaves = forward.NewLeaves(size)
		st.stage.leaves, st.stage.leavesKey, st.stage.leavesSize = leaves, key, size
	}
	s.mu.Unlock()
	st.ca, st.leaves = ca, leaves
	return nil
}

// upstreamTLS returns the TLS settings forward mode verifies origins with: the
// system roots, or the bundle in forward.upstream_ca_file.
func upstreamTLS(st *state, cfg *forward.Config) (*tls.Config, error) {
	if cfg == nil || cfg.UpstreamCAFile == "" {
		return nil, nil
	}
	pool, err := forward.LoadRootCAs(st.file.Resolve(cfg.UpstreamCAFile))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// caDownload serves the inspection CA certificate with short install instructions,
// for the admin listener's /ca.pem and /ca.
func caDownload(ca *forward.CA) (pem, page http.Handler) {
	pem = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="portcullis-ca.pem"`)
		w.Write(ca.CertPEM())
	})
	page = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(caPage))
	})
	return pem, page
}

const caPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Portcullis inspection CA</title>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;line-height:1.5">
<h1>Install the Portcullis certificate</h1>
<p>This network inspects some HTTPS traffic (for example to show you why a page is blocked). Your
browser must trust the network's certificate authority for that to work without warnings.</p>
<p><a href="/ca.pem">Download the certificate (portcullis-ca.pem)</a></p>
<ul>
<li><b>Windows</b>: open the file, choose <i>Install Certificate</i>, <i>Local Machine</i>, and place it in
<i>Trusted Root Certification Authorities</i>.</li>
<li><b>macOS</b>: open it in Keychain Access, add it to <i>System</i>, then set <i>Always Trust</i>.</li>
<li><b>Linux</b>: copy it to <code>/usr/local/share/ca-certificates/portcullis-ca.crt</code> and run
<code>update-ca-certificates</code>; Firefox: Settings, Certificates, Import.</li>
<li><b>Android / iOS</b>: install it from the downloaded file under Security settings, then enable full trust.</li>
</ul></body></html>`
