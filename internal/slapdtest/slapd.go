// Package slapdtest runs a real OpenLDAP slapd on loopback for tests: its own
// configuration in a temporary folder (mdb backend, memberof overlay), a test
// CA and server certificate for ldaps:// and StartTLS, and a small school
// directory loaded with ldapadd. Tests skip when slapd or ldapadd is missing,
// and fail instead when CI=true.
package slapdtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The directory every Server holds.
const (
	BaseDN        = "dc=school,dc=test"
	PeopleDN      = "ou=people," + BaseDN
	GroupsDN      = "ou=groups," + BaseDN
	BindDN        = "cn=portcullis,ou=services," + BaseDN
	BindPassword  = "service-pw"
	adminDN       = "cn=admin," + BaseDN
	adminPassword = "admin-pw"
)

// Users are the people in the directory: name → password. alice is in
// Teachers (spelt so: group names are compared without case), bob in
// students, carol in no group.
var Users = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT (StartTLS is offered), LDAPS is
	// ldaps://127.0.0.1:PORT.
	URL, LDAPS string
	// CAFile is the PEM CA that signed the server's certificate (for
	// 127.0.0.1), BindPasswordFile holds BindPassword.
	CAFile, BindPasswordFile string

	dir, conf string
	mu        sync.Mutex
	cmd       *exec.Cmd
	out       *bytes.Buffer
	done      chan struct{}
}

// tool returns the path of an outside program, or skips (fails under CI=true).
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if p2 := "/usr/sbin/" + name; fileExists(p2) {
			return p2
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (Debian packages slapd ldap-utils)", name)
		}
		t.Skipf("%s not installed (Debian packages slapd ldap-utils); skipping the directory test", name)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Start configures and starts a slapd with the school directory, and stops it
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	slapd := tool(t, "slapd")
	tool(t, "ldapadd")
	dir := t.TempDir()
	s := &Server{dir: dir, conf: filepath.Join(dir, "slapd.conf"), CAFile: filepath.Join(dir, "ca.pem"), BindPasswordFile: filepath.Join(dir, "bind.pw")}
	writeCerts(t, dir)
	write(t, s.BindPasswordFile, BindPassword+"\n")
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	var last error
	for range 5 { // a port picked free may be taken before slapd binds it
		ldapPort, ldapsPort := freePort(t), freePort(t)
		s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
		s.LDAPS = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
		write(t, s.conf, conf(dir))
		if last = s.start(slapd); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("slapd: %v", last)
	}
	t.Cleanup(s.Stop)
	s.ldap(t, "ldapadd", school())
	return s
}

// conf is the slapd.conf of a server in dir.
func conf(dir string) string {
	return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ` + filepath.Join(dir, "slapd.pid") + `
TLSCACertificateFile ` + filepath.Join(dir, "ca.pem") + `
TLSCertificateFile ` + filepath.Join(dir, "server.pem") + `
TLSCertificateKeyFile ` + filepath.Join(dir, "server.key") + `
database mdb
suffix "` + BaseDN + `"
rootdn "` + adminDN + `"
rootpw ` + adminPassword + `
directory ` + filepath.Join(dir, "db") + `
maxsize 10485760
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`
}

// school is the LDIF of the directory: people, a service account, groups.
func school() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n\n", BaseDN)
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, BaseDN, ou)
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: person\ncn: portcullis\nsn: service\nuserPassword: %s\n\n", BindDN, BindPassword)
	for _, u := range []string{"alice", "bob", "carol"} {
		fmt.Fprintf(&b, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n", u, PeopleDN, u, u, u, Users[u])
	}
	fmt.Fprintf(&b, "dn: cn=Teachers,%s\nobjectClass: groupOfNames\ncn: Teachers\nmember: uid=alice,%s\n\n", GroupsDN, PeopleDN)
	fmt.Fprintf(&b, "dn: cn=students,%s\nobjectClass: groupOfNames\ncn: students\nmember: uid=bob,%s\n\n", GroupsDN, PeopleDN)
	return b.String()
}

// start runs slapd in the foreground and waits until both ports accept.
func (s *Server) start(slapd string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(slapd, "-d", "0", "-f", s.conf, "-h", s.URL+"/ "+s.LDAPS+"/")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // ends with slapd, which Stop ends
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range []string{s.URL, s.LDAPS} {
		addr := strings.TrimPrefix(strings.TrimPrefix(u, "ldaps://"), "ldap://")
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				return fmt.Errorf("slapd exited: %s", out)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-done
				return fmt.Errorf("slapd not listening on %s after 30s: %s", addr, out)
			}
		}
	}
	s.cmd, s.out, s.done = cmd, out, done
	return nil
}

// Stop stops slapd (the directory is kept for Restart).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts slapd again on the same ports with the same directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	slapd := tool(t, "slapd")
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for { // the port may linger a moment after Stop
		if err = s.start(slapd); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart slapd: %v", err)
	}
}

// SetPassword changes the password of user (as the directory's admin).
func (s *Server) SetPassword(t testing.TB, user, pass string) {
	t.Helper()
	s.ldap(t, "ldapmodify", fmt.Sprintf("dn: uid=%s,%s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n", user, PeopleDN, pass))
}

// ldap runs ldapadd or ldapmodify as the admin with ldif on stdin.
func (s *Server) ldap(t testing.TB, prog, ldif string) {
	t.Helper()
	cmd := exec.Command(tool(t, prog), "-x", "-H", s.URL, "-D", adminDN, "-w", adminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCerts writes ca.pem, server.pem and server.key (for 127.0.0.1) in dir.
func writeCerts(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slapdtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	write(t, filepath.Join(dir, "server.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, filepath.Join(dir, "server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
}
