package anonymize_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/tunnel"
	"github.com/portcullis/portcullis/rules"
)

// httpsDoor starts the forward door with every CONNECT given the action, relaying
// to the TLS origin (verified as example.com) and signing leaves with ca.
func httpsDoor(t *testing.T, p *Profile, origin *httptest.Server, action rules.Action, ca *certs.CA) *url.URL {
	t.Helper()
	upstream := x509.NewCertPool()
	upstream.AddCert(origin.Certificate())
	dial := originDial(origin.Listener.Addr().String())
	tunnels := tunnel.NewSet()
	t.Cleanup(func() { tunnels.Shutdown(context.Background()) })
	tr := forward.NewTransport(forward.TransportConfig{
		Dial:            dial,
		TLSClientConfig: &tls.Config{RootCAs: upstream, ServerName: "example.com"},
	})
	t.Cleanup(tr.CloseIdleConnections)
	door, err := forward.New(forward.Options{
		Policy: rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
			if f.Method == http.MethodConnect {
				return rules.Verdict{Action: action, Rule: "connect"}
			}
			return rules.Verdict{Action: rules.ActionAllow, Rule: "inner"}
		}),
		Anonymizer: func(string) forward.Anonymizer { return p },
		Dial:       dial,
		Transport:  tr,
		Tunnels:    tunnels,
		CA:         ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	return serveOnIPv6(t, door)
}

// TestLeaksInspected runs the leak cases over HTTPS that the forward door
// inspects: there the profile applies exactly as over plain HTTP.
func TestLeaksInspected(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: TLS through the door for every case")
	}
	checkGoroutines(t)
	origin, seen := startRecordingOrigin(t, true)
	dir := t.TempDir()
	caPEM := filepath.Join(dir, "ca.pem")
	ca, err := certs.CreateCA(caPEM, filepath.Join(dir, "ca.key"), certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	tc := &trust{roots: roots, pemFile: caPEM}
	for _, c := range leakCases(t) {
		if c.httpOnly {
			continue
		}
		proxy := httpsDoor(t, c.profile, origin, rules.ActionInspect, ca)
		for _, client := range []leakClient{goClient(), curlClient()} {
			t.Run(c.name+"/"+client.name, func(t *testing.T) {
				resp := client.send(t, proxy, leakTargetTLS, leakRequest(c.referer, c.fetchSite), tc)
				c := c.forTarget(true)
				c.wantHeader = c.wantHeader.Clone()
				for i, v := range c.wantHeader["Via"] {
					c.wantHeader["Via"][i] = strings.Replace(v, "1.1 "+ViaPseudonym, client.viaHTTPS+" "+ViaPseudonym, 1)
				}
				expectArrived(t, c, seen, resp)
			})
		}
	}
}

// TestTunnelIsOpaque proves the threat model's limit: through a CONNECT tunnel
// that is not inspected, even the privacy profile changes nothing the origin sees
// but the connecting address.
func TestTunnelIsOpaque(t *testing.T) {
	checkGoroutines(t)
	origin, seen := startRecordingOrigin(t, true)
	roots := x509.NewCertPool()
	roots.AddCert(origin.Certificate())
	proxy := httpsDoor(t, Privacy(), origin, rules.ActionTunnel, nil)
	sent := leakRequest(crossReferer, "cross-site")
	resp := goClient().send(t, proxy, leakTargetTLS, sent, &trust{roots: roots, serverName: "example.com"})
	var got recorded
	select {
	case got = <-seen:
	default:
		t.Fatal("the origin recorded nothing")
	}
	checkArrived(t, leakCase{
		profile:    Transparent(), // skips the secret scan: everything is expected to arrive
		wantHeader: sent,
		wantURI:    leakURI,
		wantResp: http.Header{
			"Server": {"Apache/2.4.58 (Ubuntu)"}, "X-Powered-By": {"PHP/8.3.6"},
			"Via": {"1.1 varnish-edge"}, "Set-Cookie": {originSetCook},
		},
	}, got, resp)
	if got.remote != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("origin saw %v", got.remote)
	}
}
