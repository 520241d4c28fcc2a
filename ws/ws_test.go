package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/ws"
)

// backend is a Go chat backend on loopback: an MSRPServer whose sessions
// browsers reach through ws.Handler at /msrp.
type backend struct {
	srv  *msrp.MSRPServer
	http *httptest.Server
	host string
	port int
}

func newBackend(t testing.TB, cfg msrp.ConnectConfig, useTLS bool) *backend {
	t.Helper()
	b := &backend{srv: &msrp.MSRPServer{ConnectConfig: cfg}}
	mux := http.NewServeMux()
	mux.Handle("/msrp", &ws.Handler{Server: b.srv})
	b.http = httptest.NewUnstartedServer(mux)
	if useTLS {
		b.http.StartTLS()
	} else {
		b.http.Start()
	}
	host, port, _ := net.SplitHostPort(b.http.Listener.Addr().String())
	b.host = host
	b.port, _ = strconv.Atoi(port)
	t.Cleanup(func() {
		b.http.Close()
		b.srv.Close()
	})
	return b
}

// expect prepares a session for a WebSocket client and returns its acceptor
// and a=path.
func (b *backend) expect(t testing.TB, useTLS bool) (*msrp.ServerAcceptor, []msrp.URI) {
	t.Helper()
	a := b.srv.Acceptor(msrp.ServerAcceptorConfig{})
	t.Cleanup(func() { a.Cleanup() })
	path, err := a.Prepare(context.Background(), msrp.URI{Host: b.host, Port: b.port, UseTLS: useTLS, Transport: "ws"})
	require.NoError(t, err)
	require.Equal(t, "ws", path[0].Transport)
	return a, path
}

func (b *backend) dialer() *ws.Dialer {
	return &ws.Dialer{Path: "/msrp", HTTPClient: b.http.Client()}
}

// pair starts a session at each end: a Go client that dials the backend
// over WebSocket, and the backend's.
func pair(t testing.TB, b *backend, useTLS bool) (client, server *msrp.MSRPSession) {
	return pairWith(t, b, useTLS, msrp.SessionConfig{})
}

// pairWith is pair with the server session's configuration.
func pairWith(t testing.TB, b *backend, useTLS bool, serverCfg msrp.SessionConfig) (client, server *msrp.MSRPSession) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, serverPath := b.expect(t, useTLS)
	c := &msrp.ConnectorDirect{ConnectConfig: msrp.ConnectConfig{DialMessage: b.dialer().DialMessage}}
	clientPath, err := c.Prepare(ctx, msrp.WebSocketClientURI(useTLS))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(clientPath[0].Host, ".invalid"))
	done := make(chan error, 1)
	go func() {
		var err error
		server, err = msrp.StartSession(ctx, a, clientPath, serverCfg)
		done <- err
	}()
	client, err = msrp.StartSession(ctx, c, serverPath, msrp.SessionConfig{})
	require.NoError(t, err)
	require.NoError(t, <-done)
	t.Cleanup(func() {
		client.Close()
		server.Close()
		<-client.Done()
		<-server.Done()
	})
	return client, server
}

func TestGoClientToGoServerOverWebSocket(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(useTLS), func(t *testing.T) {
			leakcheck.Check(t)
			b := newBackend(t, msrp.ConnectConfig{}, useTLS)
			client, server := pair(t, b, useTLS)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			require.NoError(t, client.Send(ctx, "text/plain", []byte("hello from Go over WebSocket"), msrp.MessageOptions{}))
			m, err := server.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, "hello from Go over WebSocket", string(m.Data))

			require.NoError(t, server.Send(ctx, "text/plain", []byte("hello back"), msrp.MessageOptions{}))
			m, err = client.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, "hello back", string(m.Data))

			// 1 MiB of binary in the default chunks, checked end to end.
			file := make([]byte, 1<<20)
			rand.Read(file)
			require.NoError(t, client.Send(ctx, "application/octet-stream", file, msrp.MessageOptions{}))
			m, err = server.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(file), sha256.Sum256(m.Data))

			require.NoError(t, client.Shutdown(ctx))
			<-server.Done()
			assert.NoError(t, server.Err())
		})
	}
}

// rawClient is a WebSocket peer that speaks MSRP by hand, as a browser's
// JavaScript does, so that a test can send what a Go session never would.
type rawClient struct {
	t    *testing.T
	c    *websocket.Conn
	self msrp.URI
	peer []msrp.URI
}

func dialRaw(t *testing.T, b *backend, header http.Header) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+b.http.Listener.Addr().String()+"/msrp", &websocket.DialOptions{
		Subprotocols: []string{ws.Subprotocol}, HTTPHeader: header,
	})
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return &rawClient{t: t, c: c, self: msrp.WebSocketClientURI(false)}
}

func (r *rawClient) chunk(tid, body string) []byte {
	c := &msrp.Chunk{TransactionID: tid, Method: msrp.MethodSEND, ContFlag: msrp.FlagEnd, Headers: msrp.Header{
		{Name: msrp.HeaderToPath, Value: msrp.FormatPath(r.peer)},
		{Name: msrp.HeaderFromPath, Value: r.self.String()},
		{Name: msrp.HeaderMessageID, Value: "m" + tid},
	}}
	if body != "" {
		c.Headers.Add(msrp.HeaderByteRange, "1-"+strconv.Itoa(len(body))+"/"+strconv.Itoa(len(body)))
		c.Headers.Add(msrp.HeaderContentType, "text/plain")
		c.Data = []byte(body)
	}
	b, err := c.Encode(nil)
	require.NoError(r.t, err)
	return b
}

func (r *rawClient) send(msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(r.t, r.c.Write(ctx, websocket.MessageText, msg))
}

// next reads one message and checks that it holds exactly one chunk.
func (r *rawClient) next() *msrp.Chunk {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, msg, err := r.c.Read(ctx)
	require.NoError(r.t, err)
	var p msrp.Parser
	c, n, err := p.Feed(msg)
	require.NoError(r.t, err)
	require.NotNil(r.t, c, "a message holds a whole chunk: %q", msg)
	require.Equal(r.t, len(msg), n, "a message holds one chunk only: %q", msg)
	return c
}

// bind prepares a session at the backend for this client, binds with an
// empty SEND and returns the backend's session.
func (r *rawClient) bind(b *backend) *msrp.MSRPSession {
	r.t.Helper()
	a, path := b.expect(r.t, false)
	r.peer = path
	type result struct {
		s   *msrp.MSRPSession
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := msrp.StartSession(context.Background(), a, []msrp.URI{r.self}, msrp.SessionConfig{})
		done <- result{s, err}
	}()
	r.send(r.chunk("bind0001", ""))
	resp := r.next()
	require.Equal(r.t, 200, resp.Code)
	res := <-done
	require.NoError(r.t, res.err)
	r.t.Cleanup(func() { res.s.Close() })
	return res.s
}

// A message that holds half a chunk, or two, breaks RFC 7977 §5.1: the
// request is answered 400 and not delivered, and the connection carries on.
func TestMessageFramingErrors(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	r := dialRaw(t, b, nil)
	s := r.bind(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	whole := r.chunk("half0001", "the first half and the second")
	r.send(whole[:len(whole)/2])
	resp := r.next()
	assert.Equal(t, "half0001", resp.TransactionID)
	assert.Equal(t, 400, resp.Code)

	two := append(r.chunk("twoa0001", "first"), r.chunk("twob0001", "second")...)
	r.send(two)
	first, second := r.next(), r.next()
	assert.Equal(t, [2]string{"twoa0001", "twob0001"}, [2]string{first.TransactionID, second.TransactionID})
	assert.Equal(t, [2]int{200, 400}, [2]int{first.Code, second.Code})

	r.send(r.chunk("good0001", "still working"))
	assert.Equal(t, 200, r.next().Code)

	for _, want := range []string{"first", "still working"} {
		m, err := s.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(m.Data))
	}
}

// The session's writer batches what is queued into one write over TCP;
// over WebSocket every chunk must go in a message of its own.
func TestOneChunkPerMessage(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	r := dialRaw(t, b, nil)
	r.bind(b)
	var burst []byte
	for i := range 50 {
		burst = append(burst, r.chunk("burst"+strconv.Itoa(1000+i), "x")...)
	}
	// Sent as one message, all but the first are refused: the 50 answers
	// come back-to-back, which a stream transport would batch.
	r.send(burst)
	for i := range 50 {
		resp := r.next()
		assert.Equal(t, "burst"+strconv.Itoa(1000+i), resp.TransactionID)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	url := "ws://" + b.http.Listener.Addr().String() + "/msrp"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for name, opts := range map[string]*websocket.DialOptions{
		"no subprotocol":  {},
		"sip only":        {Subprotocols: []string{"sip"}},
		"foreign origin":  {Subprotocols: []string{"msrp"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}},
		"origin, no port": {Subprotocols: []string{"msrp"}, HTTPHeader: http.Header{"Origin": {"http://127.0.0.2"}}},
	} {
		c, resp, err := websocket.Dial(ctx, url, opts)
		if !assert.Error(t, err, name) {
			c.CloseNow()
			continue
		}
		require.NotNil(t, resp, name)
		want := http.StatusBadRequest
		if strings.Contains(name, "origin") {
			want = http.StatusForbidden
		}
		assert.Equal(t, want, resp.StatusCode, name)
	}

	// The Dialer says why.
	d := &ws.Dialer{URL: "ws://" + b.http.Listener.Addr().String() + "/elsewhere"}
	_, err := d.DialMessage(ctx, msrp.URI{})
	assert.ErrorContains(t, err, "404")
}

// A connection that upgrades and then says nothing is closed after the
// server's BindTimeout, as over TCP.
func TestSilentConnectionDropped(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 200 * time.Millisecond}, false)
	r := dialRaw(t, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err := r.c.Read(ctx)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 4*time.Second)
}

// The transport's MaxChunkSize bounds messages: a chunk a little over it is
// answered 413 and the connection carries on; a message far over it closes
// the connection (1009) without being read whole.
func TestOversizedMessages(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{Limits: msrp.Limits{MaxChunkSize: 8 << 10}}, false)
	r := dialRaw(t, b, nil)
	r.bind(b)
	r.send(r.chunk("over0001", strings.Repeat("y", 9<<10)))
	resp := r.next()
	assert.Equal(t, "over0001", resp.TransactionID)
	assert.Equal(t, 413, resp.Code)
	r.send(r.chunk("fine0001", "small"))
	assert.Equal(t, 200, r.next().Code)

	// The server stops reading and closes: the write itself may fail.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("z"), 1<<20))
	_, _, err := r.c.Read(ctx)
	require.Error(t, err)
	if status := websocket.CloseStatus(err); status != -1 { // the close frame may be lost with the reset
		assert.Equal(t, websocket.StatusMessageTooBig, status, "%v", err)
	}
}

// One MSRPServer serves sessions over TCP and over WebSocket at once.
func TestTCPAndWebSocketOnOneServer(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	wsClient, wsServer := pair(t, b, false)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := b.srv.Acceptor(msrp.ServerAcceptorConfig{})
	defer a.Cleanup()
	tcpPath, err := a.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	c := msrp.GetConnector(nil, msrp.ConnectConfig{})
	clientPath, err := c.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	done := make(chan *msrp.MSRPSession, 1)
	go func() {
		s, err := msrp.StartSession(ctx, a, clientPath, msrp.SessionConfig{})
		assert.NoError(t, err)
		done <- s
	}()
	tcpClient, err := msrp.StartSession(ctx, c, tcpPath, msrp.SessionConfig{})
	require.NoError(t, err)
	tcpServer := <-done
	require.NotNil(t, tcpServer)
	defer tcpClient.Close()
	defer tcpServer.Close()

	require.NoError(t, wsClient.Send(ctx, "text/plain", []byte("via ws"), msrp.MessageOptions{}))
	require.NoError(t, tcpClient.Send(ctx, "text/plain", []byte("via tcp"), msrp.MessageOptions{}))
	m, err := wsServer.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "via ws", string(m.Data))
	m, err = tcpServer.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "via tcp", string(m.Data))
}

func TestURL(t *testing.T) {
	for _, tc := range []struct {
		uri  msrp.URI
		path string
		want string
	}{
		{msrp.URI{Host: "relay.example", Port: 8080, Transport: "ws"}, "", "ws://relay.example:8080/"},
		{msrp.URI{Host: "relay.example", UseTLS: true, Transport: "ws"}, "msrp", "wss://relay.example:443/msrp"},
		{msrp.URI{Host: "::1", Port: 80, Transport: "ws"}, "/x", "ws://[::1]:80/x"},
	} {
		assert.Equal(t, tc.want, ws.URL(tc.uri, tc.path))
	}
}

var _ = tls.VersionTLS12

// A browser's close() with no code sends a close frame without a status
// (read as 1005): a clean end, like 1000, not a lost connection. Written by
// hand, as coder/websocket does not send such a frame.
func TestCloseWithoutStatusIsClean(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	a, path := b.expect(t, false)
	self := msrp.WebSocketClientURI(false)
	conn, err := net.Dial("tcp", b.http.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /msrp HTTP/1.1\r\nHost: " + b.http.Listener.Addr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: msrp\r\n\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

	done := make(chan *msrp.MSRPSession, 1)
	go func() {
		s, err := msrp.StartSession(context.Background(), a, []msrp.URI{self}, msrp.SessionConfig{})
		assert.NoError(t, err)
		done <- s
	}()
	r := &rawClient{t: t, self: self, peer: path}
	writeMaskedFrame(t, conn, 0x81, r.chunk("bind0001", "")) // FIN + text
	var first [2]byte
	_, err = io.ReadFull(br, first[:])
	require.NoError(t, err)
	require.Equal(t, byte(0x81), first[0], "the 200 comes as one text frame")
	n := int(first[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		_, err = io.ReadFull(br, ext[:])
		require.NoError(t, err)
		n = int(ext[0])<<8 | int(ext[1])
	}
	body := make([]byte, n)
	_, err = io.ReadFull(br, body)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(body), "MSRP bind0001 200"), "%q", body)
	s := <-done
	require.NotNil(t, s)
	defer s.Close()

	writeMaskedFrame(t, conn, 0x88, nil) // FIN + close, no status code
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
	assert.NoError(t, s.Err(), "a close without a code is a clean end")
}

// writeMaskedFrame writes one frame as a client must: masked, with a
// payload under 126 bytes or a 16-bit length.
func writeMaskedFrame(t *testing.T, w io.Writer, first byte, payload []byte) {
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{first}
	if len(payload) < 126 {
		frame = append(frame, 0x80|byte(len(payload)))
	} else {
		frame = append(frame, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	frame = append(frame, mask[:]...)
	for i, c := range payload {
		frame = append(frame, c^mask[i%4])
	}
	_, err := w.Write(frame)
	require.NoError(t, err)
}
