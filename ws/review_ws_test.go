package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
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

// Over TCP, a peer's Close ends our session cleanly (Err nil: EOF at a
// chunk boundary, nothing lost). Over WebSocket, Session.Close uses
// CloseNow (no close frame), which the peer's ws.Conn reports as
// io.ErrUnexpectedEOF: the same idle Close now looks like a failure.
func TestReviewPeerCloseIsCleanLikeTCP(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	for name, mk := range map[string]func() (*msrp.MSRPSession, *msrp.MSRPSession){
		"tcp": func() (*msrp.MSRPSession, *msrp.MSRPSession) { return tcpPair(t, b, msrp.SessionConfig{}) },
		"ws":  func() (*msrp.MSRPSession, *msrp.MSRPSession) { return pair(t, b, false) },
	} {
		client, server := mk()
		require.NoError(t, client.Close())
		select {
		case <-server.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the server session did not end", name)
		}
		assert.NoError(t, server.Err(), "%s: idle peer Close", name)
	}
}

// A WebSocket peer that does not answer a close frame (a stuck or hostile
// client) holds MSRPServer.Close for coder/websocket's 5 s close
// handshake: the parked connection is closed with t.Close() (graceful).
// Over TCP the same is immediate.
func TestReviewServerCloseWithParkedSilentPeer(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 30 * time.Second}, false)
	r := dialRaw(t, b, nil)
	_, path := b.expect(t, false) // no Complete: the connection parks
	r.peer = path
	r.send(r.chunk("park0001", ""))
	time.Sleep(200 * time.Millisecond) // parked
	start := time.Now()
	require.NoError(t, b.srv.Close())
	assert.Less(t, time.Since(start), time.Second, "MSRPServer.Close waited on a peer's close frame")
}

// A refused connection is closed gracefully too: a peer that never reads
// holds a MaxPendingConnections slot (and a goroutine) for 5 s after its
// refusal, so one such client per slot blocks everyone else.
func TestReviewRefusalHoldsSlot(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 10 * time.Second}, false)
	b.srv.MaxPendingConnections = 1
	bad := dialRaw(t, b, nil)
	bad.peer = []msrp.URI{{Host: b.host, Port: b.port, SessionID: "nosuchsession", Transport: "ws"}}
	bad.send(bad.chunk("nope0001", "")) // 481, then a close handshake it never answers
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a2, path2 := b.expect(t, false)
	good2 := dialRaw(t, b, nil)
	good2.peer = path2
	done := make(chan error, 1)
	go func() {
		tr, err := a2.Complete(ctx, []msrp.URI{good2.self})
		done <- err
		if tr != nil {
			go tr.Close() // graceful: would wait for good2's close frame
		}
	}()
	good2.send(good2.chunk("good0002", ""))
	require.NoError(t, <-done)
	assert.Less(t, time.Since(start), 2*time.Second, "a refused, silent peer held the only binding slot")
}

// A chunk over MaxChunkSize in its header section followed, in the same
// WebSocket message, by a second chunk: the second is delivered to the
// application (it should be refused 400, RFC 7977 §5.1).
func TestReviewOversizedThenSecondChunkDelivered(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{Limits: msrp.Limits{MaxChunkSize: 8 << 10}}, false)
	r := dialRaw(t, b, nil)
	s := r.bind(b)
	over := &msrp.Chunk{TransactionID: "over0001", Method: msrp.MethodSEND, ContFlag: msrp.FlagEnd, Headers: msrp.Header{
		{Name: msrp.HeaderToPath, Value: msrp.FormatPath(r.peer)},
		{Name: msrp.HeaderFromPath, Value: r.self.String()},
		{Name: msrp.HeaderMessageID, Value: "mover0001"},
		{Name: "X-Pad", Value: strings.Repeat("p", 9<<10)},
	}}
	ob, err := over.Encode(nil)
	require.NoError(t, err)
	r.send(append(ob, r.chunk("smug0001", "smuggled")...))
	first, second := r.next(), r.next()
	assert.Equal(t, [2]int{413, 400}, [2]int{first.Code, second.Code}, "%s %s", first.TransactionID, second.TransactionID)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	m, err := s.Receive(ctx)
	if err == nil {
		t.Errorf("delivered: %q", m.Data)
	}
}

// End to end, bodies the application keeps are not touched by the reused
// read buffer of ws.Conn: many messages of mixed sizes, checked after all
// have arrived.
func TestReviewKeptBodiesSurviveLaterMessages(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	client, server := pair(t, b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(7, 8))
	var sent [][]byte
	recvd := make(chan [][]byte, 1)
	go func() {
		var got [][]byte
		for range 40 {
			m, err := server.Receive(ctx)
			if err != nil {
				break
			}
			got = append(got, m.Data)
		}
		recvd <- got
	}()
	for i := range 40 {
		size := []int{1, 100, 5000, 9000, 40000, 300 << 10}[i%6]
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + rng.IntN(26))
		}
		sent = append(sent, body)
		require.NoError(t, client.Send(ctx, "text/plain", body, msrp.MessageOptions{}))
	}
	got := <-recvd
	require.Len(t, got, len(sent))
	for i := range sent {
		assert.True(t, bytes.Equal(sent[i], got[i]), "message %d (%d bytes) changed after later reads", i, len(sent[i]))
	}
}

// A WebSocket's messages are read with ws.Conn directly: the slice from
// ReadMessage is only valid until the next call — check that a message
// that is kept (as the doc warns) is overwritten, i.e. the doc matters,
// and that the limit error is reported.
func TestReviewConnBufferReuseIsReal(t *testing.T) {
	leakcheck.Check(t)
	srvDone := make(chan [2][]byte, 1)
	hs := http.NewServeMux()
	hs.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"msrp"}})
		if err != nil {
			return
		}
		conn := ws.NewConn(c, nil, nil)
		defer conn.CloseNow()
		m1, _ := conn.ReadMessage(r.Context())
		m1Copy := bytes.Clone(m1)
		_, _ = conn.ReadMessage(r.Context())
		srvDone <- [2][]byte{m1Copy, m1}
	})
	srv := newHTTP(t, hs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+srv+"/", &websocket.DialOptions{Subprotocols: []string{"msrp"}})
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("first message")))
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("SECOND MESSAGE")))
	res := <-srvDone
	assert.NotEqual(t, string(res[0]), string(res[1]), "the buffer is reused: anything keeping it sees the next message")
}

func newHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &http.Server{Handler: h}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// A plain TCP connection to the server's TCP listener binds a session that
// was prepared for WebSocket (its To-Path just says ";ws"); ServeMessageConn
// documents that ws sessions are for message-framed connections.
func TestReviewTCPBindsWebSocketSession(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: time.Second}, false)
	// A TCP session starts the server's TCP listener.
	tcpA := b.srv.Acceptor(msrp.ServerAcceptorConfig{})
	defer tcpA.Cleanup()
	tcpPath, err := tcpA.Prepare(context.Background(), msrp.URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	wsA, wsPath := b.expect(t, false)
	peer := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: "tcppeer1", Transport: "tcp"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		tr, err := wsA.Complete(ctx, []msrp.URI{peer})
		if tr != nil {
			tr.Close()
		}
		done <- err
	}()
	conn, err := net.Dial("tcp", tcpPath[0].HostPort())
	require.NoError(t, err)
	defer conn.Close()
	req := msrp.NewRequest(msrp.MethodSEND, wsPath, []msrp.URI{peer})
	req.TransactionID = "tcpbind1"
	req.Headers.Set(msrp.HeaderMessageID, "msg00001")
	raw, err := req.Encode(nil)
	require.NoError(t, err)
	_, err = conn.Write(raw)
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	assert.NotContains(t, line, " 200", "a TCP connection bound the WebSocket session: %q", line)
	assert.Error(t, <-done)
}

// Pings alone do not keep an unbound connection: BindTimeout still ends it.
func TestReviewPingOnlyStreamDropped(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 300 * time.Millisecond}, false)
	r := dialRaw(t, b, nil)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := r.c.Read(context.Background()) // answers the server's control frames
		readErr <- err
	}()
	stop := time.After(3 * time.Second)
	for {
		select {
		case err := <-readErr:
			require.Error(t, err)
			return
		case <-stop:
			t.Fatal("pings kept an unbound WebSocket alive past BindTimeout")
		case <-time.After(20 * time.Millisecond):
			pctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_ = r.c.Ping(pctx)
			cancel()
		}
	}
}

// Shutdown over WebSocket against a peer that does not answer the close
// frame: how long does it block beyond its ctx?
func TestReviewShutdownSilentPeer(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{}, false)
	r := dialRaw(t, b, nil)
	s := r.bind(b) // r never reads again
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = s.Shutdown(ctx)
	assert.Less(t, time.Since(start), 2*time.Second, "Shutdown outlived its ctx (%v)", time.Since(start))
	// And Close is immediate.
	r2 := dialRaw(t, b, nil)
	s2 := r2.bind(b)
	start = time.Now()
	s2.Close()
	<-s2.Done()
	assert.Less(t, time.Since(start), time.Second)
}

// ws.Conn drops a read buffer over keptReadBuffer only once the NEXT
// message has begun: an idle connection keeps the whole buffer of the last
// large message (up to twice MaxChunkSize) for as long as it stays idle.
func TestReviewIdleConnKeepsLargeBuffer(t *testing.T) {
	leakcheck.Check(t)
	const conns, size = 8, 3 << 20
	blocked := make(chan struct{}, conns)
	release := make(chan struct{})
	hs := http.NewServeMux()
	hs.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"msrp"}})
		if err != nil {
			return
		}
		conn := ws.NewConn(c, nil, nil)
		conn.SetReadLimit(4 << 20)
		defer conn.CloseNow()
		if _, err := conn.ReadMessage(r.Context()); err != nil {
			return
		}
		blocked <- struct{}{}
		ctx, cancel := context.WithCancel(r.Context())
		go func() { <-release; cancel() }()
		conn.ReadMessage(ctx) // idle: waits for the next message
	})
	addr := newHTTP(t, hs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc
	big := bytes.Repeat([]byte("z"), size)
	var clients []*websocket.Conn
	for range conns {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{Subprotocols: []string{"msrp"}})
		require.NoError(t, err)
		clients = append(clients, c)
		require.NoError(t, c.Write(ctx, websocket.MessageBinary, big))
		<-blocked
	}
	big = nil
	runtime.GC()
	runtime.ReadMemStats(&m)
	held := int64(m.HeapAlloc) - int64(before)
	close(release)
	for _, c := range clients {
		c.CloseNow()
	}
	// Retention would be conns*size (24 MiB); the race detector and the
	// client's buffers make a few MiB of noise.
	assert.Less(t, held, int64(conns*size/2), "idle connections hold %d MiB", held>>20)
}

// Over WebSocket a ReadChunk that its ctx ends closes the connection
// (coder/websocket closes on ctx), as ReadChunk documents: the next call
// says so at once instead of waiting on a dead connection.
func TestReviewReadChunkTimeoutKillsWebSocket(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 5 * time.Second}, false)
	_, path := b.expect(t, false)
	mc, err := b.dialer().DialMessage(context.Background(), path[0])
	require.NoError(t, err)
	tr := msrp.NewMessageTransport(mc, msrp.WebSocketClientURI(false))
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = tr.ReadChunk(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { _, err := tr.ReadChunk(context.Background()); done <- err }()
	select {
	case err := <-done:
		assert.Error(t, err, "the connection is closed")
	case <-time.After(5 * time.Second):
		t.Fatal("ReadChunk waits on a connection its timeout closed")
	}
}
