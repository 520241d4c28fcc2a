// Package testrelay runs Kamailio 5.6 as an RFC 4976 MSRP relay on
// loopback, from the configuration in testdata/kamailio, for the interop
// tests, the examples' tests, and people (go run ./internal/cmd/testrelay).
package testrelay

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/go-msrp/msrp/internal/testcert"
)

// The relay's credentials: any username, and this password, in this realm
// (they are in testdata/kamailio/msrp-relay.cfg).
const (
	Username = "alice"
	Password = "xyz123"
	Realm    = "msrp-test"
)

// ErrNotInstalled is returned by Start when kamailio is not installed.
var ErrNotInstalled = errors.New("kamailio is not installed: apt-get install kamailio kamailio-tls-modules")

// ErrNoWebSocket is returned by StartWith for a WebSocket listener when
// kamailio's websocket module is not installed; it matches
// ErrNotInstalled, so that tests skip (or fail under CI) alike.
var ErrNoWebSocket error = notInstalled("kamailio's websocket module is not installed: apt-get install kamailio kamailio-tls-modules kamailio-websocket-modules")

// notInstalled is a missing part of kamailio, with its install hint.
type notInstalled string

func (e notInstalled) Error() string        { return string(e) }
func (e notInstalled) Is(target error) bool { return target == ErrNotInstalled }

// Options says which relay StartWith runs.
type Options struct {
	TLS  bool // msrps, with a fresh certificate for 127.0.0.1
	Port int  // the MSRP port; 0: a free one
	// WebSocket adds a listener for MSRP over WebSocket (RFC 7977) on
	// WSPort (0: a free one), any URL path, over TLS (wss) when TLS is set.
	// It needs kamailio-websocket-modules.
	WebSocket bool
	WSPort    int
	// SIP adds a stateless SIP proxy on SIPPort (0: a free one), UDP and
	// TCP, that forwards each request to its Request-URI and Record-Routes
	// INVITEs, so that a call's signalling and its MSRP can both go through
	// Kamailio (examples/sipchat). It needs nothing but kamailio.
	SIP     bool
	SIPPort int
}

// Relay is a running Kamailio relay.
type Relay struct {
	Port   int
	TLS    bool
	WSPort int            // the WebSocket listener's port; 0 without one
	Roots  *x509.CertPool // trusts the relay's certificate, for msrps
	CAFile string         // the same certificate, PEM, for tools' --relay-ca
	// SIPPort is the SIP proxy's port, UDP and TCP; 0 without one.
	SIPPort int
	// Fingerprint is the relay certificate's, as SDP a=fingerprint writes it.
	Fingerprint string

	dir  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

// URL is the relay as msrp.ParseRelaySettings reads it, credentials
// included.
func (r *Relay) URL() string {
	scheme := "msrp"
	if r.TLS {
		scheme = "msrps"
	}
	return fmt.Sprintf("%s://%s:%s@127.0.0.1:%d", scheme, Username, Password, r.Port)
}

// WSURL is the relay's WebSocket listener as msrp.ParseRelaySettings reads
// it (ws or wss), credentials included; "" without one.
func (r *Relay) WSURL() string {
	if r.WSPort == 0 {
		return ""
	}
	scheme := "ws"
	if r.TLS {
		scheme = "wss"
	}
	return fmt.Sprintf("%s://%s:%s@127.0.0.1:%d", scheme, Username, Password, r.WSPort)
}

// SIPAddr is the SIP proxy's address, host:port for UDP and TCP alike; ""
// without one.
func (r *Relay) SIPAddr() string {
	if r.SIPPort == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", r.SIPPort)
}

// Log returns what kamailio has written so far.
func (r *Relay) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func (r *Relay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}

// Done is closed when kamailio has exited.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Start runs a relay on a free loopback port (port 0) or the given one,
// over TLS with a fresh certificate for 127.0.0.1 when useTLS is set.
func Start(useTLS bool, port int) (*Relay, error) {
	return StartWith(Options{TLS: useTLS, Port: port})
}

// StartWith runs a relay as o says.
func StartWith(o Options) (*Relay, error) {
	useTLS, port := o.TLS, o.Port
	missing := ErrNotInstalled
	if o.WebSocket { // the hint names the websocket module too
		missing = notInstalled("kamailio is not installed: apt-get install kamailio kamailio-tls-modules kamailio-websocket-modules")
	}
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		return nil, missing
	}
	if useTLS && !hasModule("tls.so") {
		return nil, missing
	}
	if o.WebSocket && !hasModule("websocket.so") {
		return nil, ErrNoWebSocket
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	wsPort := 0
	if o.WebSocket {
		if wsPort = o.WSPort; wsPort == 0 {
			for wsPort == 0 || wsPort == port {
				if wsPort, err = freePort(); err != nil {
					return nil, err
				}
			}
		}
	}
	sipPort := 0
	if o.SIP {
		if sipPort = o.SIPPort; sipPort == 0 {
			if sipPort, err = freeSIPPort(port, wsPort); err != nil {
				return nil, err
			}
		}
	}
	dir, err := os.MkdirTemp("", "msrp-relay")
	if err != nil {
		return nil, err
	}
	r := &Relay{Port: port, TLS: useTLS, WSPort: wsPort, SIPPort: sipPort, dir: dir, done: make(chan struct{})}
	if err := r.configure(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := filepath.Join(dir, "msrp-relay.cfg")
	r.cmd = exec.Command(bin, "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-m", "64", "-M", "8")
	r.cmd.Stdout, r.cmd.Stderr = r, r
	endWithUs(r.cmd) // a test binary that dies takes its relay with it
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		r.cmd.Wait()
		close(r.done)
	}()
	for deadline := time.Now().Add(15 * time.Second); ; {
		err := r.probe()
		if err == nil && r.WSPort != 0 {
			err = r.probeWebSocket()
		}
		if err == nil && r.SIPPort != 0 {
			err = r.probeSIP()
		}
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			r.Stop()
			return nil, fmt.Errorf("kamailio exited: %s", r.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("kamailio did not listen on %d: %v\n%s", port, err, r.Log())
		}
	}
}

// moduleDirs are the patterns of the folders where kamailio's modules may
// be.
var moduleDirs = []string{"/usr/lib/*/kamailio/modules/", "/usr/lib*/kamailio/modules/", "/usr/local/lib*/kamailio/modules/"}

// hasModule tells whether kamailio's module (tls.so from
// kamailio-tls-modules, websocket.so from kamailio-websocket-modules) is
// installed, wherever the distribution keeps kamailio's modules.
func hasModule(name string) bool {
	for _, dir := range moduleDirs {
		if found, _ := filepath.Glob(dir + name); len(found) > 0 {
			return true
		}
	}
	return false
}

// probe asks the relay for an AUTH without credentials and expects its
// 401: a port that merely accepts connections may belong to anyone (the
// port was taken, or another program won the race for it after freePort),
// and then kamailio cannot bind and exits.
func (r *Relay) probe() error {
	addr := fmt.Sprintf("127.0.0.1:%d", r.Port)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	scheme := "msrp"
	if r.TLS {
		scheme = "msrps"
		cfg := r.ClientTLS()
		cfg.ServerName = "127.0.0.1"
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		conn = tc
	}
	const tid = "probe1234"
	auth := "MSRP " + tid + " AUTH\r\n" +
		"To-Path: " + scheme + "://" + addr + ";tcp\r\n" +
		"From-Path: " + scheme + "://127.0.0.1:2855/probe1234;tcp\r\n" +
		"-------" + tid + "$\r\n"
	if _, err := io.WriteString(conn, auth); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "MSRP "+tid+" 401") {
		return fmt.Errorf("not the relay on %s: it answered %q", addr, line)
	}
	return nil
}

// probeWebSocket asks the WebSocket listener for a handshake with the msrp
// subprotocol and expects 101, then leaves.
func (r *Relay) probeWebSocket() error {
	addr := fmt.Sprintf("127.0.0.1:%d", r.WSPort)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if r.TLS {
		cfg := r.ClientTLS()
		cfg.ServerName = "127.0.0.1"
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		conn = tc
	}
	req := "GET / HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: msrp\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		return fmt.Errorf("no WebSocket relay on %s: it answered %q", addr, line)
	}
	return nil
}

// probeSIP sends the SIP proxy an OPTIONS for itself over UDP and expects
// its 200: the UDP port, unlike the TCP ones, answers nothing that does not
// ask, so this is the way to know that kamailio, not another program,
// has it.
func (r *Relay) probeSIP() error {
	conn, err := net.Dial("udp", r.SIPAddr())
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	local := conn.LocalAddr().String()
	options := "OPTIONS sip:" + r.SIPAddr() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-probe" + strconv.FormatInt(time.Now().UnixNano(), 36) + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@" + local + ">;tag=probe\r\n" +
		"To: <sip:" + r.SIPAddr() + ">\r\n" +
		"Call-ID: probe-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, options); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if line, _, _ := strings.Cut(string(buf[:n]), "\r\n"); !strings.HasPrefix(line, "SIP/2.0 200") {
		return fmt.Errorf("no SIP proxy on %s: it answered %q", r.SIPAddr(), line)
	}
	return nil
}

// configure writes kamailio's configuration, and for TLS its certificate.
func (r *Relay) configure() error {
	templates, err := templateDir()
	if err != nil {
		return err
	}
	scheme := "msrp"
	if r.TLS {
		scheme = "msrps"
		cert, pool := testcert.New("127.0.0.1", "localhost")
		r.Roots = pool
		sum := sha256.Sum256(cert.Certificate[0])
		r.Fingerprint = "sha-256 " + colonHex(sum[:])
		r.CAFile = filepath.Join(r.dir, "relay.crt")
		if err := writePEM(r.CAFile, "CERTIFICATE", cert.Certificate[0]); err != nil {
			return err
		}
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(r.dir, "relay.key"), "PRIVATE KEY", key); err != nil {
			return err
		}
		if err := render(filepath.Join(templates, "tls.cfg"), filepath.Join(r.dir, "tls.cfg"), map[string]any{"RunDir": r.dir}); err != nil {
			return err
		}
	}
	return render(filepath.Join(templates, "msrp-relay.cfg"), filepath.Join(r.dir, "msrp-relay.cfg"), map[string]any{
		"Port": r.Port, "RunDir": r.dir, "TLS": r.TLS, "Scheme": scheme,
		"WebSocket": r.WSPort != 0, "WSPort": r.WSPort,
		"SIP": r.SIPPort != 0, "SIPPort": r.SIPPort,
	})
}

// ClientTLS returns a TLS configuration that trusts the relay.
func (r *Relay) ClientTLS() *tls.Config { return &tls.Config{RootCAs: r.Roots} }

// Stop ends kamailio and removes its files.
func (r *Relay) Stop() error {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	return os.RemoveAll(r.dir)
}

// templateDir finds testdata/kamailio from this file's place in the module.
func templateDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find testdata/kamailio")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "kamailio"), nil
}

func render(from, to string, data map[string]any) error {
	tmpl, err := template.ParseFiles(from)
	if err != nil {
		return err
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	defer f.Close()
	return tmpl.Execute(f, data)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeSIPPort returns a port free for both TCP and UDP on loopback, and
// not one of taken: SIP listens on both.
func freeSIPPort(taken ...int) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		if !slices.Contains(taken, port) {
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
}

func colonHex(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}
