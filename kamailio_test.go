package msrp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/go-msrp/msrp/internal/testcert"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kamailioRelay is a Kamailio 5.6 MSRP relay run by a test.
type kamailioRelay struct {
	port   int
	useTLS bool
	roots  *x509.CertPool
	log    *bytes.Buffer
}

// settings returns relay settings with the test credentials.
func (k *kamailioRelay) settings(password string) MSRPRelaySettings {
	return MSRPRelaySettings{
		Domain: "127.0.0.1", Host: "127.0.0.1", Port: k.port, DisableTLS: !k.useTLS,
		Username: "alice", Password: password, TLSConfig: &tls.Config{RootCAs: k.roots},
	}
}

// startKamailio runs the relay of testdata/kamailio on a free loopback
// port until the test ends. Without kamailio installed the test is skipped,
// unless CI is set, where that is a failure.
func startKamailio(t *testing.T, useTLS bool) *kamailioRelay {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kamailio is not installed, and CI needs the relay interop tests: see .ci/run")
		}
		t.Skip("kamailio is not installed; to run the relay interop tests: apt-get install kamailio kamailio-tls-modules")
	}
	dir := t.TempDir()
	port := freePort(t)
	k := &kamailioRelay{port: port, useTLS: useTLS, log: &bytes.Buffer{}}
	scheme := "msrp"
	if useTLS {
		scheme = "msrps"
		cert, pool := testcert.New("127.0.0.1", "localhost")
		k.roots = pool
		writePEM(t, filepath.Join(dir, "relay.crt"), "CERTIFICATE", cert.Certificate[0])
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		require.NoError(t, err)
		writePEM(t, filepath.Join(dir, "relay.key"), "PRIVATE KEY", key)
		renderTemplate(t, "testdata/kamailio/tls.cfg", filepath.Join(dir, "tls.cfg"), map[string]any{"RunDir": dir})
	}
	cfg := filepath.Join(dir, "msrp-relay.cfg")
	renderTemplate(t, "testdata/kamailio/msrp-relay.cfg", cfg, map[string]any{
		"Port": port, "RunDir": dir, "TLS": useTLS, "Scheme": scheme,
	})

	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-m", "64", "-M", "8")
	var mu sync.Mutex
	cmd.Stdout = lockedWriter{&mu, k.log}
	cmd.Stderr = lockedWriter{&mu, k.log}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("kamailio log:\n%s", k.log.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return k
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("kamailio did not start listening on %d: %v\n%s", port, err, k.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

func renderTemplate(t *testing.T, from, to string, data map[string]any) {
	tmpl, err := template.ParseFiles(from)
	require.NoError(t, err)
	f, err := os.Create(to)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, tmpl.Execute(f, data))
}

// authCounter counts the AUTH requests a connector sends, through its log.
type authCounter struct {
	mu sync.Mutex
	n  int
}

func (a *authCounter) Enabled(context.Context, slog.Level) bool { return true }
func (a *authCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(at slog.Attr) bool {
		if at.Key == "method" && at.Value.String() == MethodAUTH && strings.HasSuffix(r.Message, "sent chunk") {
			a.mu.Lock()
			a.n++
			a.mu.Unlock()
		}
		return true
	})
	return nil
}
func (a *authCounter) WithAttrs([]slog.Attr) slog.Handler { return a }
func (a *authCounter) WithGroup(string) slog.Handler      { return a }

func TestKamailio(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			k := startKamailio(t, useTLS)
			ctx := context.Background()

			t.Run("401 then 200 with Use-Path", func(t *testing.T) {
				counter := &authCounter{}
				c := &ConnectorRelay{Relay: k.settings("xyz123"), ConnectConfig: ConnectConfig{Logger: &Logger{Slog: slog.New(counter)}}}
				defer c.Cleanup()
				path, err := c.Prepare(ctx, URI{Host: "127.0.0.1"})
				require.NoError(t, err)
				require.Len(t, path, 2)
				assert.Equal(t, k.port, path[0].Port)
				assert.Equal(t, useTLS, path[0].UseTLS)
				assert.NotEmpty(t, path[0].SessionID, "the relay's session id")
				assert.Equal(t, 2, counter.n, "AUTH, 401, AUTH with credentials, 200")
			})
			t.Run("423 then success", func(t *testing.T) {
				settings := k.settings("xyz123")
				settings.Expires = 10 // below the relay's Min-Expires of 60
				counter := &authCounter{}
				c := &ConnectorRelay{Relay: settings, ConnectConfig: ConnectConfig{Logger: &Logger{Slog: slog.New(counter)}}}
				defer c.Cleanup()
				_, err := c.Prepare(ctx, URI{Host: "127.0.0.1"})
				require.NoError(t, err)
				assert.Equal(t, 3, counter.n, "AUTH, 401, AUTH Expires 10, 423 Min-Expires 60, AUTH Expires 60, 200")
			})
			t.Run("wrong password: the relay's 401", func(t *testing.T) {
				c := &ConnectorRelay{Relay: k.settings("wrong")}
				defer c.Cleanup()
				_, err := c.Prepare(ctx, URI{Host: "127.0.0.1"})
				var te *TransactionError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, 401, te.Code)
			})
			t.Run("A via the relay to B direct, and back", func(t *testing.T) {
				var accCfg ConnectConfig
				if useTLS { // the relay reaches B with the scheme of B's URI
					accCfg.TLSConfig, _ = tlsConfigs("127.0.0.1")
				}
				a := &ConnectorRelay{Relay: k.settings("xyz123")}
				b := &AcceptorDirect{ConnectConfig: accCfg}
				relayPair(t, a, b, useTLS, 0)
			})
			t.Run("A and B both via the relay", func(t *testing.T) {
				a := &ConnectorRelay{Relay: k.settings("xyz123")}
				b := &AcceptorRelay{Relay: k.settings("xyz123")}
				relayPair(t, a, b, useTLS, 1<<20)
			})
			t.Run("unknown relay session: 481", func(t *testing.T) {
				c := &ConnectorRelay{Relay: k.settings("xyz123")}
				defer c.Cleanup()
				path, err := c.Prepare(ctx, URI{Host: "127.0.0.1"})
				require.NoError(t, err)
				// A peer that reaches the relay naming a session it does not hold.
				unknown := path[0]
				unknown.SessionID = "nosuchsession"
				stranger := &ConnectorDirect{ConnectConfig: ConnectConfig{TLSConfig: &tls.Config{RootCAs: k.roots}}}
				defer stranger.Cleanup()
				_, err = stranger.Prepare(ctx, URI{Host: "127.0.0.1"})
				require.NoError(t, err)
				_, err = stranger.Complete(ctx, []URI{unknown, path[1]})
				var te *TransactionError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, 481, te.Code)
			})
		})
	}
}

// relayPair sets up a session from a (active) to b (passive), exchanges
// text both ways, and, if size > 0, sends a message of that many bytes from
// a to b, chunked for the relay, and checks its SHA-256 at b.
func relayPair(t *testing.T, a, b Connector, useTLS bool, size int) {
	ctx := context.Background()
	defer a.Cleanup()
	defer b.Cleanup()
	aPath, err := a.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: useTLS})
	require.NoError(t, err)
	bPath, err := b.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: useTLS})
	require.NoError(t, err)
	done := completeLater(ctx, b, aPath)
	ta, err := a.Complete(ctx, bPath)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)

	recA, recB := newRecorder(), newRecorder()
	hash := sha256.New()
	sa := NewMSRPSession(ta, SessionConfig{OnIncoming: recA.onChunk})
	sb := NewMSRPSession(r.t, SessionConfig{OnIncoming: recB.onChunk, MessageConfig: MessageConfig{
		OnMessage: recB.onMessage,
		MessageWriter: func(_ *MSRPSession, m *IncomingMessage) io.Writer {
			if m.ContentType == "application/octet-stream" {
				return hash // the large message; text stays in memory
			}
			return nil
		},
	}})
	defer sa.Close()
	defer sb.Close()

	resp, err := sa.DeliverChunk(ctx, textSend(ta, "hello B, via the relay"))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)
	recB.waitFor(t, "B to get A's text", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) >= 1 })

	resp, err = sb.DeliverChunk(ctx, textSend(r.t, "hello A, back"))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)
	recA.waitFor(t, "A to get B's text", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) >= 1 })
	chunks, _ := recA.snapshot()
	assert.Equal(t, "hello A, back", string(chunks[0].Data))

	if size == 0 {
		return
	}
	src := sha256.New()
	m, err := sa.SendMessage(io.TeeReader(io.LimitReader(newPatternReader(), int64(size)), src), int64(size), "application/octet-stream", MessageOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Wait(ctx))
	var got *IncomingMessage
	recB.waitFor(t, "the message through the relay", func(_ []*Chunk, ms []*IncomingMessage) bool {
		for _, im := range ms {
			if im.MessageID == m.ID {
				got = im
			}
		}
		return got != nil
	})
	require.NoError(t, got.Err)
	assert.Equal(t, src.Sum(nil), hash.Sum(nil))
}
