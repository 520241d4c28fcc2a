package msrp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/pipenet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peer is the far end of a session with an MSRPServer: a plain transport
// whose binding SEND we control.
type peer struct {
	t   *MSRPTransport
	uri URI
}

func newPeerURI() URI {
	return URI{Host: "127.0.0.1", Port: 2855, SessionID: NewSessionID(), Transport: "tcp"}
}

// dialPeer connects to the server's path with dial and sends the binding
// SEND, carrying body if not empty. It returns the peer and the response
// (nil if the server gave none before closing).
func dialPeer(t testing.TB, dial func(ctx context.Context, network, addr string) (net.Conn, error), serverPath []URI, uri URI, body string) (*peer, *Chunk, error) {
	p, req, err := sendBinding(dial, serverPath, uri, body)
	if err != nil {
		return p, nil, err
	}
	resp, err := p.response(req)
	return p, resp, err
}

// sendBinding connects and sends the binding SEND without waiting.
func sendBinding(dial func(ctx context.Context, network, addr string) (net.Conn, error), serverPath []URI, uri URI, body string) (*peer, *Chunk, error) {
	conn, err := dial(context.Background(), "tcp", serverPath[0].HostPort())
	if err != nil {
		return nil, nil, err
	}
	p := &peer{t: NewMSRPTransport(conn, uri), uri: uri}
	p.t.SetRemotePath(serverPath)
	req := p.t.MakeSendRequest("", []byte(body), 1, 0)
	if body != "" {
		req.Headers.Set(HeaderContentType, "text/plain")
	}
	return p, req, p.t.WriteChunk(context.Background(), req)
}

// response reads the response to req.
func (p *peer) response(req *Chunk) (*Chunk, error) {
	resp, err := p.t.ReadChunk(context.Background())
	if err != nil {
		return nil, err
	}
	if resp.TransactionID != req.TransactionID {
		return resp, fmt.Errorf("response to %s, not %s", resp.TransactionID, req.TransactionID)
	}
	return resp, nil
}

// completeLater runs Complete on a goroutine of its own; its result comes
// on the channel.
func completeLater(ctx context.Context, c Connector, remote []URI) <-chan serverResult {
	done := make(chan serverResult, 1)
	go func() {
		t, err := c.Complete(ctx, remote)
		done <- serverResult{t, err}
	}()
	return done
}

// bindOnServer prepares a session on srv and has a peer bind it over TCP:
// the server's transport, the peer's, and the session's path.
func bindOnServer(t testing.TB, srv *MSRPServer) (*MSRPTransport, *MSRPTransport, []URI) {
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peerURI := newPeerURI()
	done := completeLater(ctx, acc, []URI{peerURI})
	p, resp, err := dialPeer(t, tcpDial, path, peerURI, "")
	require.NoError(t, err)
	require.Equal(t, 200, resp.Code)
	r := <-done
	require.NoError(t, r.err)
	return r.t, p.t, path
}

func tcpDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func TestServerManySessions(t *testing.T) {
	leakcheck.Check(t)
	const sessions = 1000
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 20 * time.Second}}
	defer srv.Close()
	ctx := context.Background()

	type session struct {
		acc    *ServerAcceptor
		local  []URI
		peer   URI
		before bool // Complete is called before the peer connects
	}
	all := make([]session, sessions)
	for i := range all {
		acc := srv.Acceptor(ServerAcceptorConfig{})
		path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		all[i] = session{acc: acc, local: path, peer: newPeerURI(), before: i%2 == 0}
	}
	port := all[0].local[0].Port
	for _, s := range all {
		require.Equal(t, port, s.local[0].Port, "one port for every session")
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*sessions)
	for _, i := range rand.Perm(sessions) {
		s := all[i]
		wg.Go(func() {
			var complete sync.WaitGroup
			var tr *MSRPTransport
			var cerr error
			startComplete := func() {
				complete.Go(func() { tr, cerr = s.acc.Complete(ctx, []URI{s.peer}) })
			}
			if s.before {
				startComplete()
			}
			p, req, err := sendBinding(tcpDial, s.local, s.peer, "")
			if err != nil {
				errs <- err
				return
			}
			defer p.t.Close()
			if !s.before {
				time.Sleep(time.Millisecond) // let the connection park first, mostly
				startComplete()
			}
			resp, err := p.response(req)
			if err != nil || resp.Code != 200 {
				errs <- fmt.Errorf("session %d: %v %v", i, resp, err)
				return
			}
			complete.Wait()
			if cerr != nil {
				errs <- cerr
				return
			}
			defer tr.Close()
			// The transport is this session's: a chunk from this peer arrives on it.
			msg := p.t.MakeSendRequest("", []byte(s.peer.SessionID), 1, 0)
			msg.Headers.Set(HeaderContentType, "text/plain")
			if err := p.t.WriteChunk(ctx, msg); err != nil {
				errs <- err
				return
			}
			got, err := tr.ReadChunk(ctx)
			if err == nil {
				err = tr.CheckIncomingSENDChunk(got)
			}
			if err == nil && string(got.Data) != s.peer.SessionID {
				err = fmt.Errorf("session %d got another peer's chunk", i)
			}
			if err != nil {
				errs <- err
				return
			}
			// Mixed in: a second connection for the bound session (506), a
			// stranger naming no session (481), a Complete whose peer never
			// comes (its deadline).
			if i%10 == 0 {
				dup, resp, err := dialPeer(t, tcpDial, s.local, s.peer, "")
				if err != nil || resp.Code != 506 {
					errs <- fmt.Errorf("duplicate of session %d: %v %v", i, resp, err)
				}
				if dup != nil {
					dup.t.Close()
				}
			}
			if i%7 == 0 {
				unknown := s.local[0]
				unknown.SessionID = NewSessionID()
				stranger, resp, err := dialPeer(t, tcpDial, []URI{unknown}, newPeerURI(), "")
				if err != nil || resp.Code != 481 {
					errs <- fmt.Errorf("stranger: %v %v", resp, err)
				}
				if stranger != nil {
					stranger.t.Close()
				}
			}
			if i%13 == 0 {
				late, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				acc := srv.Acceptor(ServerAcceptorConfig{})
				defer acc.Cleanup()
				if _, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"}); err != nil {
					errs <- err
				}
				if _, err := acc.Complete(late, []URI{newPeerURI()}); !errors.Is(err, context.DeadlineExceeded) {
					errs <- fmt.Errorf("late Complete: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServerRefusals(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 500 * time.Millisecond}}
	defer srv.Close()
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	local, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	prepare := func() (*ServerAcceptor, []URI) {
		a := srv.Acceptor(ServerAcceptorConfig{})
		path, err := a.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		return a, path
	}

	codeOf := func(p *peer, resp *Chunk, err error) int {
		if p != nil {
			p.t.Close()
		}
		require.NoError(t, err)
		return resp.Code
	}

	t.Run("unknown To-Path", func(t *testing.T) {
		other := local[0]
		other.SessionID = "nobody"
		assert.Equal(t, 481, codeOf(dialPeer(t, tcpDial, []URI{other}, newPeerURI(), "")))
	})
	t.Run("To-Path of two URIs", func(t *testing.T) {
		two := []URI{local[0], local[0]}
		assert.Equal(t, 400, codeOf(dialPeer(t, tcpDial, two, newPeerURI(), "")))
	})
	t.Run("From-Path that no Complete names", func(t *testing.T) {
		start := time.Now()
		assert.Equal(t, 481, codeOf(dialPeer(t, tcpDial, local, newPeerURI(), "")))
		assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "refused at the deadline")
	})
	t.Run("already bound: 506", func(t *testing.T) {
		peerURI := newPeerURI()
		done := completeLater(ctx, acc, []URI{peerURI})
		assert.Equal(t, 200, codeOf(dialPeer(t, tcpDial, local, peerURI, "")))
		r := <-done
		require.NoError(t, r.err)
		defer r.t.Close()
		assert.Equal(t, 506, codeOf(dialPeer(t, tcpDial, local, peerURI, "")))
	})
	t.Run("Cleanup, then connect", func(t *testing.T) {
		a, path := prepare()
		require.NoError(t, a.Cleanup())
		assert.Equal(t, 481, codeOf(dialPeer(t, tcpDial, path, newPeerURI(), "")))
	})
	t.Run("Cleanup while the peer waits for its Complete", func(t *testing.T) {
		a, path := prepare()
		go func() { time.Sleep(50 * time.Millisecond); a.Cleanup() }()
		start := time.Now()
		assert.Equal(t, 481, codeOf(dialPeer(t, tcpDial, path, newPeerURI(), "")))
		assert.Less(t, time.Since(start), 400*time.Millisecond, "refused at Cleanup, not at the deadline")
	})
	t.Run("Complete with no peer times out", func(t *testing.T) {
		a, _ := prepare()
		_, err := a.Complete(ctx, []URI{newPeerURI()})
		assert.ErrorIs(t, err, ErrBindSessionTimeout)
	})
	t.Run("first SEND with a body is delivered and answered once", func(t *testing.T) {
		a, path := prepare()
		peerURI := newPeerURI()
		conn, err := net.Dial("tcp", path[0].HostPort())
		require.NoError(t, err)
		p := NewMSRPTransport(conn, peerURI)
		defer p.Close()
		p.SetRemotePath(path)
		first := p.MakeSendRequest("", []byte("hello at once"), 1, 0)
		first.Headers.Set(HeaderContentType, "text/plain")
		require.NoError(t, p.WriteChunk(ctx, first))
		tr, err := a.Complete(ctx, []URI{peerURI})
		require.NoError(t, err)
		defer tr.Close()
		got, err := tr.ReadChunk(ctx)
		require.NoError(t, err)
		assert.Equal(t, "hello at once", string(got.Data))
		require.NoError(t, tr.WriteResponse(ctx, got, 200, ""))
		assertAnsweredOnce(t, p, tr, first)
	})
}

func TestServerSilentAndSlowClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		srv := &MSRPServer{ConnectConfig: ConnectConfig{
			Listen: func(context.Context, string, string) (net.Listener, error) { return ln, nil },
		}}
		path, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)

		silent, err := ln.Dial(context.Background(), "tcp", "")
		require.NoError(t, err)
		slow, err := ln.Dial(context.Background(), "tcp", "")
		require.NoError(t, err)
		start := time.Now()
		stop := make(chan struct{})
		go func() { // one byte a second of a valid chunk, until stopped
			raw, _ := NewRequest("SEND", path, []URI{newPeerURI()}).Encode(nil)
			for i := 0; ; i = (i + 1) % len(raw) {
				if _, err := slow.Write(raw[i : i+1]); err != nil {
					return
				}
				select {
				case <-time.After(time.Second):
				case <-stop:
					return
				}
			}
		}()
		buf := make([]byte, 100)
		_, err = silent.Read(buf)
		assert.Error(t, err, "the silent client is dropped")
		assert.Equal(t, DefaultTimeout, time.Since(start))
		_, err = slow.Read(buf)
		assert.Error(t, err, "the slow client is dropped")
		assert.LessOrEqual(t, time.Since(start), DefaultTimeout+time.Second)
		close(stop)
		require.NoError(t, srv.Close())
		silent.Close()
		slow.Close()
		synctest.Wait()
	})
}

func TestServerCloseWhileCompletesWait(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{}
	ctx := context.Background()
	path, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	// A connection parked for its Complete, and Completes waiting for peers.
	conn, err := net.Dial("tcp", path[0].HostPort())
	require.NoError(t, err)
	defer conn.Close()
	parked := NewMSRPTransport(conn, newPeerURI())
	parked.SetRemotePath(path)
	require.NoError(t, parked.WriteChunk(ctx, parked.MakeSendRequest("", nil, 1, 0)))

	errs := make(chan error, 3)
	for range 3 {
		acc := srv.Acceptor(ServerAcceptorConfig{})
		_, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		go func() {
			_, err := acc.Complete(ctx, []URI{newPeerURI()})
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, srv.Close())
	for range 3 {
		assert.ErrorIs(t, <-errs, ErrServerClosed)
	}
	_, err = parked.ReadChunk(ctx)
	assert.Error(t, err, "the half-bound connection is closed")
	late := srv.Acceptor(ServerAcceptorConfig{})
	_, err = late.Prepare(ctx, URI{Host: "127.0.0.1"})
	assert.ErrorIs(t, err, ErrServerClosed)
	_, err = late.Complete(ctx, []URI{newPeerURI()})
	assert.ErrorIs(t, err, ErrServerClosed)
	require.NoError(t, srv.Close(), "twice is fine")
}

func TestServerTLSAndPlainSideBySide(t *testing.T) {
	leakcheck.Check(t)
	serverTLS, clientTLS := tlsConfigs("127.0.0.1")
	srv := &MSRPServer{ConnectConfig: ConnectConfig{TLSConfig: serverTLS}}
	defer srv.Close()
	ctx := context.Background()
	plainAcc, tlsAcc := srv.Acceptor(ServerAcceptorConfig{}), srv.Acceptor(ServerAcceptorConfig{})
	plainPath, err := plainAcc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	tlsPath, err := tlsAcc.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: true})
	require.NoError(t, err)
	assert.NotEqual(t, plainPath[0].Port, tlsPath[0].Port)
	assert.Len(t, srv.Addrs(), 2)

	// A second session of each kind shares its kind's port.
	plain2, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	assert.Equal(t, plainPath[0].Port, plain2[0].Port)
	explicit, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1", Port: tlsPath[0].Port, UseTLS: true})
	require.NoError(t, err)
	assert.Equal(t, tlsPath[0].Port, explicit[0].Port)
	_, err = srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1", Port: tlsPath[0].Port})
	assert.ErrorContains(t, err, "already listens for msrps")

	for _, c := range []struct {
		acc  *ServerAcceptor
		path []URI
		dial func(ctx context.Context, network, addr string) (net.Conn, error)
	}{
		{plainAcc, plainPath, tcpDial},
		{tlsAcc, tlsPath, (&tlsDialer{cfg: clientTLS}).dial},
	} {
		peerURI := newPeerURI()
		done := completeLater(ctx, c.acc, []URI{peerURI})
		p, resp, err := dialPeer(t, c.dial, c.path, peerURI, "")
		require.NoError(t, err)
		defer p.t.Close()
		assert.Equal(t, 200, resp.Code)
		r := <-done
		require.NoError(t, r.err)
		defer r.t.Close()
		exchange(t, p.t, r.t)
	}
}

type tlsDialer struct{ cfg *tls.Config }

func (d *tlsDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg := d.cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	td := tls.Dialer{Config: cfg}
	return td.DialContext(ctx, network, addr)
}

func TestServerSessmatch(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{UseSessmatch: true}}
	defer srv.Close()
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	// The peer's a=path as SDP carried it, rewritten by an ALG...
	sdpPeer := URI{Host: "203.0.113.9", Port: 40000, SessionID: "peer-sess-1", Transport: "tcp"}
	// ...and the From-Path the peer really sends.
	realPeer := URI{Host: "10.1.2.3", Port: 2855, SessionID: "peer-sess-1", Transport: "tcp"}
	// The peer, too, knows our path only as rewritten.
	rewritten := path[0]
	rewritten.Host = "198.51.100.7"
	done := completeLater(ctx, acc, []URI{sdpPeer})
	conn, err := net.Dial("tcp", path[0].HostPort())
	require.NoError(t, err)
	p := NewMSRPTransport(conn, realPeer)
	defer p.Close()
	p.SetRemotePath([]URI{rewritten})
	require.NoError(t, p.Bind(ctx, []URI{rewritten}))
	r := <-done
	require.NoError(t, r.err)
	r.t.Close()
}

func TestServerPrepareChecks(t *testing.T) {
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	prepare := func(u URI) error {
		_, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, u)
		return err
	}
	assert.ErrorContains(t, prepare(URI{Host: "127.0.0.1", UseTLS: true}), "certificate")
	require.NoError(t, prepare(URI{Host: "127.0.0.1", SessionID: "fixed"}))
	assert.ErrorContains(t, prepare(URI{Host: "127.0.0.1", SessionID: "fixed"}), "already expected")
	a := srv.Acceptor(ServerAcceptorConfig{})
	_, err := a.Complete(ctx, nil)
	assert.Error(t, err)
	_, err = a.Complete(ctx, []URI{newPeerURI()})
	assert.ErrorContains(t, err, "before Prepare")
	assert.NoError(t, a.Cleanup(), "a session never prepared")
	_, err = a.Prepare(ctx, URI{Host: "127.0.0.1"})
	assert.ErrorIs(t, err, errCleanedUp)
	var zero MSRPServer
	assert.NoError(t, zero.Close(), "the zero value closes cleanly")
	assert.True(t, errors.Is(ErrServerClosed, ErrServerClosed))
}

// An idle bound session costs little: no goroutine, and a few KiB for both
// ends (the benchmark BenchmarkIdleSessions holds 10,000).
func TestServerIdleSessionMemory(t *testing.T) {
	perSession, goroutines := holdIdleSessions(t, 1000, true)
	t.Logf("%.0f bytes and %.2f goroutines per idle bound session, both ends", perSession, goroutines)
	assert.Less(t, perSession, float64(64<<10))
	assert.Less(t, goroutines, 0.01)
}

// Complete is keyed by its session: a connection that names session Y with
// the From-Path that X's Complete waits for is not X's, and does not bind Y
// either. Before, any connection from that path was handed to X's Complete,
// and Y marked bound.
func TestServerCompleteIsKeyedBySession(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 5 * time.Second}}
	defer srv.Close()
	ctx := context.Background()
	x, y := srv.Acceptor(ServerAcceptorConfig{}), srv.Acceptor(ServerAcceptorConfig{})
	xPath, err := x.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	yPath, err := y.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peerURI := newPeerURI()
	done := completeLater(ctx, x, []URI{peerURI})

	// The peer's path, the other session: it waits for Y's Complete.
	wrong, req, err := sendBinding(tcpDial, yPath, peerURI, "")
	require.NoError(t, err)
	defer wrong.t.Close()
	// The right connection still binds X, and is X's.
	right, resp, err := dialPeer(t, tcpDial, xPath, peerURI, "")
	require.NoError(t, err)
	defer right.t.Close()
	assert.Equal(t, 200, resp.Code)
	r := <-done
	require.NoError(t, r.err)
	defer r.t.Close()
	assert.Equal(t, xPath[0].String(), r.t.LocalURI().String())
	// Y is not bound: its Complete takes the connection that waited for it.
	ty, err := y.Complete(ctx, []URI{peerURI})
	require.NoError(t, err)
	defer ty.Close()
	resp, err = wrong.response(req)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)
	assert.Equal(t, yPath[0].String(), ty.LocalURI().String())
}

// A session is forgotten when its transport closes, so that a server that
// serves sessions one after another does not grow. Before, only Cleanup
// forgot one, and the examples never called it.
func TestServerForgetsEndedSessions(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	var paths [][]URI
	for range 50 {
		ours, theirs, path := bindOnServer(t, srv)
		a, b := NewMSRPSession(ours, SessionConfig{KeepaliveInterval: -1}), NewMSRPSession(theirs, SessionConfig{KeepaliveInterval: -1})
		require.NoError(t, a.Shutdown(ctx))
		b.Close()
		paths = append(paths, path)
	}
	srv.mu.Lock()
	left := len(srv.locals)
	srv.mu.Unlock()
	assert.Zero(t, left, "sessions still expected after they ended")
	p, resp, err := dialPeer(t, tcpDial, paths[0], newPeerURI(), "")
	require.NoError(t, err)
	defer p.t.Close()
	assert.Equal(t, 481, resp.Code, "an ended session is unknown")
}

// A connection's paths are checked as soon as its headers are in: one that
// names no session gets 481 before it has sent any of its body.
func TestServerChecksPathsBeforeTheBody(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	path, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	stranger := path[0]
	stranger.SessionID = "nobody-expects-me"
	conn, err := net.Dial("tcp", path[0].HostPort())
	require.NoError(t, err)
	defer conn.Close()
	p := NewMSRPTransport(conn, newPeerURI())
	p.SetRemotePath([]URI{stranger})
	c := p.MakeSendRequest("", []byte("x"), 1, 0)
	c.Headers.Set(HeaderContentType, "text/plain")
	raw, err := c.Encode(nil)
	require.NoError(t, err)
	head := raw[:bytes.Index(raw, []byte("\r\n\r\n"))+4]
	_, err = conn.Write(head) // the headers, and not a byte of the body
	require.NoError(t, err)
	resp, err := p.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, 481, resp.Code)
}

// Connections that never bind cost a bounded amount each, whatever they
// send: here the worst, 1,024 connections (MaxPendingConnections) naming a
// real session and sending a large first chunk slowly, stopped half-way.
// Each holds at most the 32 KiB a first chunk may have, so all of them,
// with their goroutines and buffers, stay under 64 MiB. Before, each could
// hold MaxChunkSize, 4 MiB: 64 such connections grew the heap by 252 MiB.
func TestServerHalfOpenConnectionsAreBounded(t *testing.T) {
	n := 1024
	if testing.Short() || raceEnabled {
		n = 256
	}
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: time.Minute}}
	defer srv.Close()
	path, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(context.Background(), URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	growth := halfOpenGrowth(t, path, newPeerURI(), n)
	t.Logf("%d half-open connections: heap and stacks grew %d KiB, %d KiB each", n, growth>>10, growth/int64(n)>>10)
	assert.Less(t, growth, int64(n)*64<<10, "64 KiB per connection at most")
}

// halfOpenGrowth opens n connections to path that each send the headers
// and half the body of a 1 MiB first SEND from the peer from, then stall,
// and returns how much the heap and stacks grew once they held still. The
// connections close when the test ends.
func halfOpenGrowth(t *testing.T, path []URI, from URI, n int) int64 {
	c := NewRequest(MethodSEND, path, []URI{from})
	c.Headers.Add(HeaderMessageID, NewMessageID())
	c.Headers.Add(HeaderByteRange, "1-*/1048576")
	c.Headers.Add(HeaderContentType, "application/octet-stream")
	c.Data = bytes.Repeat([]byte("b"), 1<<20)
	raw, err := c.Encode(nil)
	require.NoError(t, err)
	half := raw[:len(raw)/2] // headers and 512 KiB of body, then silence

	base := heapInUse()
	for range n {
		conn, err := net.Dial("tcp", path[0].HostPort())
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		go conn.Write(half) // blocks once the server stops reading it
	}
	// The server reads what it takes, then holds still: measure once the
	// heap has stopped growing.
	var growth int64
	for prev, still := int64(-1), 0; still < 3; {
		time.Sleep(100 * time.Millisecond)
		growth = int64(heapInUse()) - int64(base)
		if growth-prev < 256<<10 {
			still++
		} else {
			still = 0
		}
		prev = growth
	}
	return growth
}

// With no path, Complete takes the first peer that names the session,
// whether it came before Complete or after, and learns its path; a second
// peer then gets 506.
func TestServerCompleteWithoutPathTakesTheFirstPeer(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	for _, before := range []bool{true, false} {
		acc := srv.Acceptor(ServerAcceptorConfig{})
		path, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		peerURI := newPeerURI()
		var done <-chan serverResult
		if before {
			done = completeLater(ctx, acc, nil)
		}
		p, req, err := sendBinding(tcpDial, path, peerURI, "")
		require.NoError(t, err)
		if !before {
			done = completeLater(ctx, acc, nil)
		}
		resp, err := p.response(req)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.Code)
		r := <-done
		require.NoError(t, r.err)
		assert.True(t, pathEqual([]URI{peerURI}, r.t.FullRemotePath()), "the path is learnt: %v", r.t.FullRemotePath())

		late, resp, err := dialPeer(t, tcpDial, path, newPeerURI(), "")
		require.NoError(t, err)
		assert.Equal(t, 506, resp.Code, "the session is bound")
		late.t.Close()
		p.t.Close()
		r.t.Close()
	}
}
