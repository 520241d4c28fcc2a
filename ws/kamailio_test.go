package ws_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/interop"
	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/testrelay"
	"github.com/go-msrp/msrp/ws"
)

// TestMain says which interop tests were skipped.
func TestMain(m *testing.M) { os.Exit(interop.Main(m, "msrp/ws")) }

// wsRelay is a Kamailio 5.6 MSRP relay with a WebSocket listener besides
// its MSRP one (testdata/kamailio/msrp-relay.cfg).
type wsRelay struct{ *testrelay.Relay }

// startKamailioWS runs the relay until the test ends. Without kamailio or
// its websocket module the test is skipped, unless CI is set, where that
// is a failure.
func startKamailioWS(t *testing.T, useTLS bool) wsRelay {
	t.Helper()
	r := testrelay.ForTestWith(t, testrelay.Options{TLS: useTLS, WebSocket: true}, func(err error) {
		interop.Skipped("the Kamailio WebSocket relay tests", err.Error())
	})
	return wsRelay{r}
}

// tcpSettings reaches the relay over MSRP on TCP (or TLS).
func (k wsRelay) tcpSettings() msrp.MSRPRelaySettings {
	return msrp.MSRPRelaySettings{
		Domain: "127.0.0.1", Host: "127.0.0.1", Port: k.Port, DisableTLS: !k.TLS,
		Username: testrelay.Username, Password: testrelay.Password, TLSConfig: k.ClientTLS(),
	}
}

// wsConfig reaches the relay over WebSocket (ws, or wss with TLS): its
// settings, from the relay's ws[s]:// URL, and the ConnectConfig whose
// DialMessage dials it.
func (k wsRelay) wsConfig(t *testing.T, password string, log *slog.Logger) (msrp.MSRPRelaySettings, msrp.ConnectConfig) {
	t.Helper()
	settings, err := msrp.ParseRelaySettings(k.WSURL())
	require.NoError(t, err)
	require.True(t, settings.WebSocket)
	settings.Password = password
	settings.TLSConfig = k.ClientTLS()
	dialer := &ws.Dialer{Path: "/msrp"}
	if k.TLS {
		dialer.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: k.ClientTLS()}}
	}
	cfg := msrp.ConnectConfig{DialMessage: dialer.DialMessage}
	if log != nil {
		cfg.Logger = &msrp.Logger{Slog: log}
	}
	return *settings, cfg
}

// authLog records, through a connector's log, the AUTH requests it sends
// and the responses it gets.
type authLog struct {
	mu    sync.Mutex
	steps []string
}

func (a *authLog) Enabled(context.Context, slog.Level) bool { return true }
func (a *authLog) Handle(_ context.Context, r slog.Record) error {
	var method, code string
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "method":
			method = at.Value.String()
		case "code":
			code = at.Value.String()
		}
		return true
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case strings.HasSuffix(r.Message, "sent chunk") && method == msrp.MethodAUTH:
		a.steps = append(a.steps, method)
	case strings.HasSuffix(r.Message, "received chunk") && code != "":
		a.steps = append(a.steps, code)
	}
	return nil
}
func (a *authLog) WithAttrs([]slog.Attr) slog.Handler { return a }
func (a *authLog) WithGroup(string) slog.Handler      { return a }

func (a *authLog) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.steps)
}

// TestKamailioWebSocket runs Go clients through a real Kamailio 5.6 relay
// with one on WebSocket (RFC 7977) and the other on MSRP over TCP (or, with
// tls, wss and msrps): AUTH over the WebSocket, and a session each way
// round, with text and a 1 MiB message in both directions.
func TestKamailioWebSocket(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "ws-tcp"
		if useTLS {
			name = "wss-tls"
		}
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t) // its cleanup runs last, after the relay's
			k := startKamailioWS(t, useTLS)

			t.Run("AUTH over WebSocket: 401 then 200 with Use-Path", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				log := &authLog{}
				settings, cfg := k.wsConfig(t, testrelay.Password, slog.New(log))
				c := &msrp.ConnectorRelay{Relay: settings, ConnectConfig: cfg}
				defer c.Cleanup()
				path, err := c.Prepare(ctx, msrp.URI{})
				require.NoError(t, err)
				assert.Equal(t, []string{"AUTH", "401", "AUTH", "200"}, log.got())
				require.Len(t, path, 2, "the relay's Use-Path, then us")
				// The Use-Path names the relay's MSRP side, where peers reach it.
				assert.Equal(t, k.Port, path[0].Port)
				assert.Equal(t, "tcp", path[0].Transport)
				assert.Equal(t, useTLS, path[0].UseTLS)
				assert.NotEmpty(t, path[0].SessionID, "the relay's session id")
				// We are a WebSocket client (RFC 7977 Appendix A).
				assert.True(t, strings.HasSuffix(path[1].Host, ".invalid"), path[1].Host)
				assert.Equal(t, "ws", path[1].Transport)
				assert.Equal(t, useTLS, path[1].UseTLS)
			})
			t.Run("AUTH over WebSocket with a wrong password: 401", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				settings, cfg := k.wsConfig(t, "wrong", nil)
				c := &msrp.ConnectorRelay{Relay: settings, ConnectConfig: cfg}
				defer c.Cleanup()
				_, err := c.Prepare(ctx, msrp.URI{})
				var te *msrp.TransactionError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, 401, te.Code)
			})
			t.Run("WebSocket client connects to TCP client", func(t *testing.T) {
				wsSettings, wsCfg := k.wsConfig(t, testrelay.Password, nil)
				wsEnd := &msrp.ConnectorRelay{Relay: wsSettings, ConnectConfig: wsCfg}
				tcpEnd := &msrp.AcceptorRelay{Relay: k.tcpSettings()}
				wsSession, tcpSession := sessionThroughRelay(t, wsEnd, tcpEnd, useTLS, true)
				exchange(t, wsSession, tcpSession)
			})
			t.Run("TCP client connects to WebSocket client", func(t *testing.T) {
				wsSettings, wsCfg := k.wsConfig(t, testrelay.Password, nil)
				wsEnd := &msrp.AcceptorRelay{Relay: wsSettings, ConnectConfig: wsCfg}
				tcpEnd := &msrp.ConnectorRelay{Relay: k.tcpSettings()}
				tcpSession, wsSession := sessionThroughRelay(t, tcpEnd, wsEnd, useTLS, false)
				exchange(t, wsSession, tcpSession)
			})
			assert.Contains(t, k.Log(), "WebSocket handshake for /msrp", "the WebSocket clients went through the relay's WebSocket listener")
		})
	}
}

// sessionThroughRelay prepares both ends, each at the relay, and starts a
// session from active to passive. activeWS says which end is the
// WebSocket client, whose a=path must end in its .invalid URI.
func sessionThroughRelay(t *testing.T, active, passive msrp.Connector, useTLS, activeWS bool) (a, p *msrp.MSRPSession) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	t.Cleanup(func() { active.Cleanup(); passive.Cleanup() })
	wsLocal := msrp.URI{} // no host: the connector makes up a WebSocket client's URI
	tcpLocal := msrp.URI{Host: "127.0.0.1", UseTLS: useTLS}
	activeLocal, passiveLocal := tcpLocal, wsLocal
	if activeWS {
		activeLocal, passiveLocal = wsLocal, tcpLocal
	}
	activePath, err := active.Prepare(ctx, activeLocal)
	require.NoError(t, err)
	passivePath, err := passive.Prepare(ctx, passiveLocal)
	require.NoError(t, err)
	require.Len(t, activePath, 2)
	require.Len(t, passivePath, 2)
	wsPath := passivePath
	if activeWS {
		wsPath = activePath
	}
	require.True(t, strings.HasSuffix(wsPath[1].Host, ".invalid"), "the WebSocket client's URI: %s", wsPath[1])

	// The chunks that reach Kamailio must stay below its 16,383-byte
	// WebSocket buffer and its ~10 KB body limit: 8 KiB each.
	cfg := msrp.SessionConfig{MessageConfig: msrp.MessageConfig{ChunkSize: 8 << 10}}
	done := make(chan error, 1)
	go func() {
		var err error
		p, err = msrp.StartSession(ctx, passive, activePath, cfg)
		done <- err
	}()
	a, err = msrp.StartSession(ctx, active, passivePath, cfg)
	require.NoError(t, err)
	require.NoError(t, <-done)
	t.Cleanup(func() {
		a.Close()
		p.Close()
		<-a.Done()
		<-p.Done()
	})
	return a, p
}

// exchange sends text from the WebSocket end to the TCP end and back, then
// 1 MiB of random bytes each way, checked by SHA-256.
func exchange(t *testing.T, wsSession, tcpSession *msrp.MSRPSession) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	send := func(from, to *msrp.MSRPSession, contentType string, body []byte) *msrp.IncomingMessage {
		t.Helper()
		require.NoError(t, from.Send(ctx, contentType, body, msrp.MessageOptions{}))
		m, err := to.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, contentType, m.ContentType)
		return m
	}

	m := send(wsSession, tcpSession, "text/plain", []byte("hello TCP, from WebSocket through Kamailio"))
	assert.Equal(t, "hello TCP, from WebSocket through Kamailio", string(m.Data))
	m = send(tcpSession, wsSession, "text/plain", []byte("hello WebSocket, from TCP through Kamailio"))
	assert.Equal(t, "hello WebSocket, from TCP through Kamailio", string(m.Data))

	for i, dir := range []struct{ from, to *msrp.MSRPSession }{{wsSession, tcpSession}, {tcpSession, wsSession}} {
		file := make([]byte, 1<<20)
		rand.Read(file)
		m = send(dir.from, dir.to, "application/octet-stream", file)
		require.Len(t, m.Data, len(file), "message %d", i)
		assert.Equal(t, sha256.Sum256(file), sha256.Sum256(m.Data), "message %d", i)
	}
}
