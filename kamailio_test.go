package msrp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/interop"
	"github.com/go-msrp/msrp/internal/testrelay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kamailioRelay is a Kamailio 5.6 MSRP relay run by a test.
type kamailioRelay struct {
	port   int
	useTLS bool
	roots  *x509.CertPool
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
	r := testrelay.ForTest(t, useTLS, func(err error) { interop.Skipped("the Kamailio relay tests", err.Error()) })
	return &kamailioRelay{port: r.Port, useTLS: useTLS, roots: r.Roots}
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

// Through a relay an end may offer actpass (RFC 6135 §4.5): the relay
// connection it prepared takes the passive part when the answer is active.
func TestKamailioNegotiatedRoles(t *testing.T) {
	k := startKamailio(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice := &ConnectorRelay{Relay: k.settings("xyz123")}
	defer alice.Cleanup()
	alicePath, err := alice.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	offer := &SDPMedia{AcceptTypes: []string{"text/plain"}, Setup: SetupActPass}
	offer.UsePath(alicePath)

	bob := &AcceptorRelay{Relay: k.settings("xyz123")}
	defer bob.Cleanup()
	bobPath, err := bob.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	ours := &SDPMedia{AcceptTypes: []string{"text/plain"}, Setup: SetupActive} // Bob sends the first SEND
	ours.UsePath(bobPath)
	answer, err := AnswerSDP(offer, ours)
	require.NoError(t, err)
	aliceNeg, err := NegotiateSDP(offer, answer, true)
	require.NoError(t, err)
	bobNeg, err := NegotiateSDP(answer, offer, false)
	require.NoError(t, err)
	require.False(t, aliceNeg.Active)
	require.True(t, bobNeg.Active)

	done := make(chan *MSRPTransport, 1)
	go func() {
		tr, err := bobNeg.Complete(ctx, bob)
		assert.NoError(t, err)
		done <- tr
	}()
	ta, err := aliceNeg.Complete(ctx, alice)
	require.NoError(t, err)
	tb := <-done
	require.NotNil(t, tb)
	a := NewMSRPSession(ta, SessionConfig{})
	b := NewMSRPSession(tb, SessionConfig{})
	defer a.Close()
	defer b.Close()
	require.NoError(t, b.Send(ctx, "text/plain", []byte("from the active end"), MessageOptions{}))
	m, err := a.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "from the active end", string(m.Data))
}
