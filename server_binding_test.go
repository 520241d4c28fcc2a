package msrp

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeGateListener wraps accepted connections so that the server's
// writes wait for the test: entered gets a value when a write starts, and
// the write goes on once open is closed.
type writeGateListener struct {
	net.Listener
	entered chan struct{}
	open    chan struct{}
}

type writeGateConn struct {
	net.Conn
	l *writeGateListener
}

func (l *writeGateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeGateConn{Conn: c, l: l}, nil
}

// gatedServer is a server whose connections' writes wait at gl's gate.
func gatedServer() (*writeGateListener, *MSRPServer) {
	gl := &writeGateListener{entered: make(chan struct{}, 1), open: make(chan struct{})}
	srv := &MSRPServer{ConnectConfig: ConnectConfig{
		BindTimeout: 5 * time.Second,
		Listen: func(ctx context.Context, network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			gl.Listener = ln
			return gl, err
		},
	}}
	return gl, srv
}

func (c *writeGateConn) Write(b []byte) (int, error) {
	select {
	case c.l.entered <- struct{}{}:
	default:
	}
	<-c.l.open
	return c.Conn.Write(b)
}

// Cleanup fails a Complete in progress even when a connection has claimed
// it and the server is writing its 200: a caller that cleans up to abandon
// the call (the SIP dialog was cancelled) gets no live connection back.
// Before, Complete returned a bound transport after Cleanup had returned,
// for a session the server had forgotten.
func TestServerCleanupDuringBindingFailsComplete(t *testing.T) {
	leakcheck.Check(t)
	gl, srv := gatedServer()
	defer srv.Close()
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peerURI := newPeerURI()
	done := completeLater(ctx, acc, []URI{peerURI})
	time.Sleep(50 * time.Millisecond) // Complete is waiting
	p, req, err := sendBinding(tcpDial, path, peerURI, "")
	require.NoError(t, err)
	defer p.t.Close()
	select {
	case <-gl.entered: // the server is writing the 200: the connection has claimed Complete
	case <-time.After(5 * time.Second):
		t.Fatal("the server never answered the binding")
	}
	require.NoError(t, acc.Cleanup())
	close(gl.open)
	r := <-done
	if r.t != nil {
		defer r.t.Close()
		resp, _ := p.response(req)
		t.Logf("the peer got %v", resp)
	}
	assert.Error(t, r.err, "Complete succeeded after Cleanup returned")
	assert.True(t, r.t == nil, "a transport handed out after Cleanup")
}

// Two connections from the right peer wait for Complete: the peer gave up
// on the first and connected again. Complete takes the latest. Before, it
// took the first, whose peer had gone, and refused the live one with 481
// "Invalid From-Path".
func TestServerTakesThePeersLatestConnection(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
	defer srv.Close()
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	defer acc.Cleanup()
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peerURI := newPeerURI()
	gone, _, err := sendBinding(tcpDial, path, peerURI, "")
	require.NoError(t, err)
	waitParked(t, srv, acc, 1)
	gone.t.Close() // the peer gives up on its first connection
	live, req, err := sendBinding(tcpDial, path, peerURI, "")
	require.NoError(t, err)
	defer live.t.Close()
	waitParked(t, srv, acc, 2)

	tr, err := acc.Complete(ctx, []URI{peerURI})
	if tr != nil {
		defer tr.Close()
	}
	resp, rerr := live.response(req)
	require.NoError(t, rerr)
	assert.Equal(t, 200, resp.Code, "the live connection from the right peer is refused: %d %s", resp.Code, resp.Comment)
	assert.NoError(t, err)
}

func waitParked(t *testing.T, srv *MSRPServer, a *ServerAcceptor, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv.mu.Lock()
		got := len(a.parked)
		srv.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stranger that names the session but not the path Complete waits for is
// refused with 481 on its headers, before its body, on MSRPServer and on
// AcceptorDirect alike. Before, only the To-Path was checked at header
// time, and the stranger's body (up to 32 KiB) was read first.
func TestBindingRefusesAStrangersFromPathBeforeItsBody(t *testing.T) {
	send := func(t *testing.T, path []URI) (*MSRPTransport, net.Conn) {
		conn, err := net.Dial("tcp", path[0].HostPort())
		require.NoError(t, err)
		p := NewMSRPTransport(conn, newPeerURI()) // not the peer Complete waits for
		p.SetRemotePath(path)
		c := p.MakeSendRequest("", bytes.Repeat([]byte("x"), 20000), 1, 0)
		c.Headers.Set(HeaderContentType, "text/plain")
		raw, err := c.Encode(nil)
		require.NoError(t, err)
		head := raw[:bytes.Index(raw, []byte("\r\n\r\n"))+4]
		_, err = conn.Write(head)
		require.NoError(t, err)
		return p, conn
	}
	expect481 := func(t *testing.T, p *MSRPTransport) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := p.ReadChunk(ctx)
		if assert.NoError(t, err, "no refusal until the stranger sends its body") {
			assert.Equal(t, 481, resp.Code)
		}
	}
	t.Run("MSRPServer", func(t *testing.T) {
		srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
		defer srv.Close()
		acc := srv.Acceptor(ServerAcceptorConfig{})
		defer acc.Cleanup()
		path, err := acc.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := completeLater(ctx, acc, []URI{newPeerURI()})
		time.Sleep(50 * time.Millisecond)
		p, conn := send(t, path)
		defer conn.Close()
		expect481(t, p)
		cancel()
		<-done
	})
	t.Run("AcceptorDirect", func(t *testing.T) {
		acc := &AcceptorDirect{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
		defer acc.Cleanup()
		path, err := acc.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := completeLater(ctx, acc, []URI{newPeerURI()})
		p, conn := send(t, path)
		defer conn.Close()
		expect481(t, p)
		cancel()
		<-done
	})
}

// Complete, Cleanup, Close and peers (right, wrong, and
// connecting twice) at once, in random order: nothing hangs or panics,
// every Complete ends, and the server forgets every session once its
// transports are closed and its acceptor cleaned up. Run with -race
// -count=20.
func TestServerConcurrentLifecycle(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 300 * time.Millisecond}}
	ctx := context.Background()
	const sessions = 24
	var wg sync.WaitGroup
	var mu sync.Mutex
	var transports []*MSRPTransport
	keep := func(t *MSRPTransport) {
		if t != nil {
			mu.Lock()
			transports = append(transports, t)
			mu.Unlock()
		}
	}
	accs := make([]*ServerAcceptor, sessions)
	for i := range sessions {
		acc := srv.Acceptor(ServerAcceptorConfig{})
		accs[i] = acc
		path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		peerURI := newPeerURI()
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		jitter := func() { time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) }
		j1, j2, j3, j4 := rng.IntN(20), rng.IntN(20), rng.IntN(20), rng.IntN(4)
		wg.Go(func() {
			time.Sleep(time.Duration(j1) * time.Millisecond)
			tr, err := acc.Complete(ctx, []URI{peerURI})
			if err == nil {
				keep(tr)
			} else if tr != nil {
				t.Errorf("Complete returned a transport and %v", err)
			}
			_, err = acc.Complete(ctx, []URI{peerURI}) // again: refused, or another wait
			_ = err
		})
		for k := range j4 + 1 {
			who := peerURI
			if k%2 == 1 {
				who = newPeerURI()
			}
			wg.Go(func() {
				time.Sleep(time.Duration(j2+k) * time.Millisecond)
				p, _, err := dialPeer(t, tcpDial, path, who, "")
				if p != nil {
					p.t.Close()
				}
				_ = err
			})
		}
		wg.Go(func() {
			time.Sleep(time.Duration(j3) * time.Millisecond)
			jitter()
			acc.Cleanup()
		})
	}
	closed := make(chan struct{})
	closeAt := time.Duration(10+rand.IntN(60)) * time.Millisecond
	go func() {
		time.Sleep(closeAt)
		srv.Close()
		close(closed)
	}()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatal("Complete, Cleanup or a peer hangs")
	}
	<-closed
	for _, tr := range transports {
		tr.Close()
	}
	for _, a := range accs {
		a.Cleanup()
	}
	srv.mu.Lock()
	left := len(srv.locals)
	srv.mu.Unlock()
	assert.Zero(t, left)
	require.NoError(t, srv.Close())
}

// Misuse of a ServerAcceptor gives errors, not hangs.
func TestServerAcceptorMisuse(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 2 * time.Second}}
	defer srv.Close()
	ctx := context.Background()
	a := srv.Acceptor(ServerAcceptorConfig{})
	_, err := a.Complete(ctx, []URI{newPeerURI()})
	assert.Error(t, err, "Complete before Prepare")
	_, err = a.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	_, err = a.Prepare(ctx, URI{Host: "127.0.0.1"})
	assert.Error(t, err, "Prepare twice")
	first := completeLater(ctx, a, []URI{newPeerURI()})
	time.Sleep(20 * time.Millisecond)
	_, err = a.Complete(ctx, []URI{newPeerURI()})
	assert.Error(t, err, "Complete while another waits")
	start := time.Now()
	require.NoError(t, a.Cleanup())
	r := <-first
	assert.True(t, errors.Is(r.err, errCleanedUp), "%v", r.err)
	assert.Less(t, time.Since(start), time.Second)
	require.NoError(t, a.Cleanup(), "twice")
	_, err = a.Prepare(ctx, URI{Host: "127.0.0.1"})
	assert.Error(t, err)
	// Another acceptor may not take a session id in use.
	b := srv.Acceptor(ServerAcceptorConfig{})
	path, err := b.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	c := srv.Acceptor(ServerAcceptorConfig{})
	_, err = c.Prepare(ctx, path[0])
	assert.Error(t, err)
	b.Cleanup()
}

// A first chunk larger than an unbound connection may send (32 KiB) is
// taken when its paths are those the waiting Complete expects: the peer is
// known, and some stacks bind with their first message rather than an
// empty SEND. Before, it got 413 and the binding failed. A connection that
// comes before Complete, whose peer nobody can vouch for yet, still has
// the 32 KiB bound.
func TestBindingTakesALargeFirstChunkFromTheExpectedPeer(t *testing.T) {
	body := strings.Repeat("x", 100<<10)
	bind := func(t *testing.T, c Connector, path []URI) {
		ctx := context.Background()
		peerURI := newPeerURI()
		done := completeLater(ctx, c, []URI{peerURI})
		time.Sleep(50 * time.Millisecond) // Complete is waiting
		p, _, err := sendBinding(tcpDial, path, peerURI, body)
		require.NoError(t, err)
		defer p.t.Close()
		var r serverResult
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Complete did not return")
		}
		require.NoError(t, r.err)
		defer r.t.Close()
		// A first chunk with content is the session's to read and answer.
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		got, err := r.t.ReadChunk(rctx)
		require.NoError(t, err)
		assert.Equal(t, body, string(got.Data))
	}
	onServer := func(t *testing.T) (*ServerAcceptor, []URI) {
		srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
		t.Cleanup(func() { srv.Close() })
		acc := srv.Acceptor(ServerAcceptorConfig{})
		t.Cleanup(func() { acc.Cleanup() })
		path, err := acc.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		return acc, path
	}
	t.Run("MSRPServer", func(t *testing.T) {
		leakcheck.Check(t)
		acc, path := onServer(t)
		bind(t, acc, path)
	})
	t.Run("AcceptorDirect", func(t *testing.T) {
		leakcheck.Check(t)
		acc := &AcceptorDirect{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
		defer acc.Cleanup()
		path, err := acc.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		bind(t, acc, path)
	})
	t.Run("before Complete", func(t *testing.T) {
		leakcheck.Check(t)
		_, path := onServer(t)
		p, resp, err := dialPeer(t, tcpDial, path, newPeerURI(), body)
		require.NoError(t, err)
		defer p.t.Close()
		assert.Equal(t, 413, resp.Code)
	})
}

// A binding request whose From-Path does not parse gets its 400 (RFC 4975
// §7.3), on an AcceptorDirect that does not know the peer yet (msrpcat
// listen without --peer) and on an MSRPServer, although neither transport
// knows a path to put in the answer: it names unknown.invalid. Before, the
// answer could not be built and the connection was just closed.
func TestBindingAnswersAnUnparsableFromPath(t *testing.T) {
	t.Run("AcceptorDirect", func(t *testing.T) {
		acc := &AcceptorDirect{ConnectConfig: ConnectConfig{BindTimeout: 3 * time.Second}}
		defer acc.Cleanup()
		unparsableFromPath(t, acc, nil)
	})
	t.Run("MSRPServer", func(t *testing.T) {
		srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 3 * time.Second}}
		defer srv.Close()
		acc := srv.Acceptor(ServerAcceptorConfig{})
		defer acc.Cleanup()
		unparsableFromPath(t, acc, []URI{newPeerURI()})
	})
}

func unparsableFromPath(t *testing.T, acc Connector, remote []URI) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	done := completeLater(ctx, acc, remote)
	defer func() {
		cancel()
		if r := <-done; r.t != nil {
			r.t.Close()
		}
	}()

	conn, err := net.Dial("tcp", path[0].HostPort())
	require.NoError(t, err)
	peer := NewMSRPTransport(conn, newPeerURI())
	defer peer.Close()
	req := NewRequest(MethodSEND, path, []URI{newPeerURI()})
	req.Headers.Set(HeaderFromPath, "msrp://[::1/s;tcp")
	_, err = conn.Write(encodeUnchecked(req))
	require.NoError(t, err)
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	resp, err := peer.ReadChunk(rctx)
	if assert.NoError(t, err, "no answer before the connection ended") {
		assert.Equal(t, 400, resp.Code)
	}
}

// Unbound connections stay within their bound while a Complete waits:
// anyone who knows the session may write the expected peer's path in
// From-Path, so only one connection per session at a time may send a
// first chunk over 32 KiB. Before, every such connection was lifted to the
// transport's 4 MiB cap: 64 connections that stopped half-way through a
// 1 MiB first chunk held about 512 KiB each.
func TestServerUnboundConnectionsBoundedWhileCompleteWaits(t *testing.T) {
	n := 64
	if testing.Short() || raceEnabled {
		n = 16
	}
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: time.Minute}}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	defer acc.Cleanup()
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	expected := newPeerURI() // the peer's a=path, as SDP gave it
	done := completeLater(ctx, acc, []URI{expected})
	time.Sleep(50 * time.Millisecond) // Complete waits

	growth := halfOpenGrowth(t, path, expected, n)
	t.Logf("%d half-open connections naming the expected peer: heap grew %d KiB, %d KiB each", n, growth>>10, growth/int64(n)>>10)
	// README: MaxPendingConnections x about 40 KiB, plus one chunk per
	// waiting Complete (here half of 1 MiB is sent).
	assert.Less(t, growth, int64(n)*64<<10+1<<20, "64 KiB per unbound connection, and one first chunk")
	cancel()
	<-done
}

// Close while the server writes the binding's 200 fails Complete,
// closes the connection and leaves no goroutine behind.
func TestServerCloseDuringBinding(t *testing.T) {
	leakcheck.Check(t)
	gl, srv := gatedServer()
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	defer acc.Cleanup()
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peerURI := newPeerURI()
	done := completeLater(ctx, acc, []URI{peerURI})
	time.Sleep(50 * time.Millisecond)
	p, _, err := sendBinding(tcpDial, path, peerURI, "")
	require.NoError(t, err)
	defer p.t.Close()
	select {
	case <-gl.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never answered the binding")
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(gl.open)
	require.NoError(t, <-closed)
	r := <-done
	if r.t != nil {
		r.t.Close()
	}
	assert.Error(t, r.err)
	assert.Nil(t, r.t)
	// The peer's connection ends.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if _, err := p.t.ReadChunk(rctx); err != nil {
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "the server left the connection open")
			break
		}
	}
}
