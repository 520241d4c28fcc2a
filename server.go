package msrp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxPendingConnections bounds the connections an MSRPServer holds
// before they bind; more wait in the listen queue.
const DefaultMaxPendingConnections = 1024

// refusalTimeout bounds writing a refusal (400, 481, 506) to a peer.
const refusalTimeout = 2 * time.Second

// MSRPServer listens once and hands each incoming connection to the session
// that expects it, so that many sessions share one port (2855, or 2856 for
// msrps, say): msrplib's MSRPServer. It is safe for concurrent use.
//
// Each session is a ServerAcceptor, a Connector, with msrplib's lifecycle:
//
//	a := srv.Acceptor(msrp.ServerAcceptorConfig{})
//	defer a.Cleanup()
//	path, err := a.Prepare(ctx, localURI)   // its a=path, on the server's port
//	t, err := a.Complete(ctx, remotePath)   // once the peer's a=path is known
//
// A connection's first chunk decides where it goes: its To-Path must be one
// URI that a Prepare registered (else 400 or 481), checked as soon as its
// headers are read, before any body is kept; the session must not be bound
// yet (506); and its From-Path must be the path that session's Complete
// gives (481) or, with UseSessmatch, carry the same session id (RFC 6714).
// The peer may connect before or after Complete is called. A connection
// that sends nothing valid in time (BindTimeout), or that no Complete
// claims in that time (481), is closed.
//
// What an unbound connection may cost is bounded: its first chunk, headers
// and body, must fit in 32 KiB (bindingMaxChunk), and reads while binding
// use a 512-byte buffer, so that MaxPendingConnections connections that
// stall half-way hold about that many times 40 KiB. The one exception is
// a single connection per waiting Complete whose paths are the peer's that
// Complete names: its first chunk may be as large as the transport's own
// limit allows, for stacks that bind with a message rather than an empty
// SEND.
type MSRPServer struct {
	ConnectConfig
	// MaxPendingConnections bounds the accepted connections not yet bound;
	// 0 means DefaultMaxPendingConnections.
	MaxPendingConnections int

	initOnce  sync.Once
	mu        sync.Mutex
	closed    bool
	base      context.Context // ends on Close
	cancel    context.CancelFunc
	slots     chan struct{}
	listeners map[string]*serverListener // by "host:port" as Prepare asked, and as bound
	locals    map[string]*ServerAcceptor // by session id, from Prepare until Cleanup or the end of the session's transport
	wg        sync.WaitGroup
}

type serverListener struct {
	ln     net.Listener
	host   string
	port   int
	useTLS bool
}

// ServerAcceptorConfig configures one session on an MSRPServer. The zero
// value uses the server's settings.
type ServerAcceptorConfig struct {
	// Logger receives the session's connection events and traffic; nil
	// means the server's.
	Logger *Logger
}

// ServerAcceptor is the passive side of one session on an MSRPServer: a
// Connector whose Prepare registers its local URI with the server (and
// starts a listener if none serves that host yet), whose Complete waits for
// the connection that names this session and this peer, and whose Cleanup
// forgets the session. Make one with MSRPServer.Acceptor; each serves one
// session.
type ServerAcceptor struct {
	srv *MSRPServer
	cfg ServerAcceptorConfig

	// Guarded by srv.mu.
	uri      URI
	prepared bool
	cleaned  bool
	bound    bool
	lifted   bool            // a connection may send a first chunk over bindingMaxChunk
	waiter   *completeWaiter // the Complete in progress
	parked   []*parkedConn   // connections for this session that came before Complete
}

// completeWaiter is a Complete call waiting for its peer.
type completeWaiter struct {
	remote []URI
	key    string            // the peer's; "" takes any peer
	result chan serverResult // room for the one result it gets
}

// takes reports whether the waiter takes a connection from the peer whose
// key is key.
func (w *completeWaiter) takes(key string) bool { return w.key == "" || w.key == key }

type serverResult struct {
	t   *MSRPTransport
	err error
}

// parkedConn is a connection whose first chunk arrived before its
// session's Complete.
type parkedConn struct {
	key  string
	wake chan parkOutcome // room for the one outcome it gets
}

// parkOutcome ends a parked connection's wait: claimed by a Complete, or
// refused with a status code.
type parkOutcome struct {
	waiter *completeWaiter
	code   int
	reason string
}

func (s *MSRPServer) init() {
	s.initOnce.Do(func() {
		s.base, s.cancel = context.WithCancel(context.Background())
		n := s.MaxPendingConnections
		if n <= 0 {
			n = DefaultMaxPendingConnections
		}
		s.slots = make(chan struct{}, n)
		s.listeners = map[string]*serverListener{}
		s.locals = map[string]*ServerAcceptor{}
	})
}

// Acceptor returns the passive side of a new session on the server:
// msrplib's MSRPServer.prepare, complete and cleanup, for that session.
func (s *MSRPServer) Acceptor(cfg ServerAcceptorConfig) *ServerAcceptor {
	s.init()
	if cfg.Logger == nil {
		cfg.Logger = s.Logger
	}
	return &ServerAcceptor{srv: s, cfg: cfg}
}

// Prepare registers localURI as the session's and returns its full local
// path for SDP a=path. Blanks in localURI are filled in as for
// AcceptorDirect. The first session on a host starts a listener there (TCP,
// or TLS for msrps, which needs a certificate in the server's TLSConfig); a
// later one with the same host shares it: with port 0 any listener of the
// same scheme on that host, else the one on that port. The returned path
// carries the real port.
//
// A URI whose transport is "ws" names a session reached over WebSocket
// (RFC 7977): no listener is started; its host and port must be those of
// the HTTP server where a handler (ws.Handler) passes connections to
// ServeMessageConn, and msrps means that server serves wss.
func (a *ServerAcceptor) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	s := a.srv
	var u URI
	var err error
	if localURI.IsWebSocket() {
		u = completeLocalURI(localURI)
		if localURI.Host == "" || localURI.Port == 0 {
			return nil, errors.New("msrp: a WebSocket session's URI needs the host and port of the HTTP server that accepts it")
		}
	} else if u, err = listenerURI(localURI, s.TLSConfig); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrServerClosed
	case a.cleaned:
		return nil, errCleanedUp
	case a.prepared:
		return nil, errors.New("msrp: ServerAcceptor already prepared")
	}
	if _, dup := s.locals[u.SessionID]; dup {
		return nil, fmt.Errorf("msrp: session id %q is already expected", u.SessionID)
	}
	if !u.IsWebSocket() {
		l, err := s.listenerFor(ctx, u)
		if err != nil {
			return nil, err
		}
		u.Port = l.port
	}
	a.uri, a.prepared = u, true
	s.locals[u.SessionID] = a
	return []URI{u}, nil
}

// listenerFor finds or starts the listener for u. Called with s.mu held.
func (s *MSRPServer) listenerFor(ctx context.Context, u URI) (*serverListener, error) {
	if u.Port == 0 {
		for _, l := range s.listeners {
			if strings.EqualFold(l.host, u.Host) && l.useTLS == u.UseTLS {
				return l, nil
			}
		}
	} else if l, ok := s.listeners[net.JoinHostPort(u.Host, strconv.Itoa(u.Port))]; ok {
		if l.useTLS != u.UseTLS {
			return nil, fmt.Errorf("msrp: %s already listens for %s", u.HostPort(), URI{UseTLS: l.useTLS}.Scheme())
		}
		return l, nil
	}
	ln, err := s.listen(ctx, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	if err != nil {
		return nil, fmt.Errorf("msrp: listen: %w", err)
	}
	l := &serverListener{ln: ln, host: u.Host, port: u.Port, useTLS: u.UseTLS}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		l.port = tcp.Port
	}
	s.listeners[net.JoinHostPort(u.Host, strconv.Itoa(l.port))] = l
	s.Logger.event("listening", "addr", ln.Addr().String(), "tls", u.UseTLS)
	s.wg.Go(func() { s.acceptLoop(l) })
	return l, nil
}

func hasCertificate(cfg *tls.Config) bool {
	return cfg != nil && (len(cfg.Certificates) > 0 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil)
}

// Complete returns the transport of the session once its peer, whose path
// is fullRemotePath, has connected and sent its first request; the peer may
// have done so already. A connection for this session from another peer is
// refused with 481. With an empty fullRemotePath, the first peer that names
// the session is taken and its path learnt from its From-Path, as
// AcceptorDirect does. It fails with ErrBindSessionTimeout after
// BindTimeout, with ErrServerClosed when the server closes, or with ctx's
// error.
func (a *ServerAcceptor) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	s := a.srv
	w := &completeWaiter{remote: fullRemotePath, result: make(chan serverResult, 1)}
	if len(fullRemotePath) > 0 {
		w.key = s.remoteKey(fullRemotePath)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, ErrServerClosed
	case a.cleaned:
		s.mu.Unlock()
		return nil, errCleanedUp
	case !a.prepared:
		s.mu.Unlock()
		return nil, errors.New("msrp: Complete called before Prepare")
	case a.bound || a.waiter != nil:
		s.mu.Unlock()
		return nil, errors.New("msrp: Complete already called")
	}
	// The latest connection from this peer is taken: a peer that connects
	// again has given up on its earlier connections, which may be dead.
	// Those get 506, and connections from anyone else 481.
	var claimed *parkedConn
	for _, p := range slices.Backward(a.parked) {
		switch {
		case !w.takes(p.key):
			p.wake <- parkOutcome{code: 481, reason: "Invalid From-Path"}
		case claimed == nil:
			claimed = p
		default:
			p.wake <- parkOutcome{code: 506}
		}
	}
	a.parked = nil
	if claimed != nil {
		a.bound = true
		claimed.wake <- parkOutcome{waiter: w}
	} else {
		a.waiter = w
	}
	s.mu.Unlock()

	waitCtx, stop := withStage(ctx, s.bindTimeout(), ErrBindSessionTimeout)
	defer stop()
	select {
	case r := <-w.result:
		return r.t, r.err
	case <-waitCtx.Done():
	case <-s.base.Done():
	}
	s.mu.Lock()
	waiting := a.waiter == w
	if waiting {
		a.waiter = nil
	}
	s.mu.Unlock()
	if !waiting { // a connection claimed this call just now: take what it brings
		r := <-w.result
		return r.t, r.err
	}
	if s.base.Err() != nil {
		return nil, ErrServerClosed
	}
	return nil, stageError(ctx, waitCtx, ErrBindSessionTimeout, nil)
}

// Cleanup forgets the session: connections for it are refused with 481 from
// now on, including any waiting for their Complete, and a Complete in
// progress fails. A transport already handed out is not closed. It is safe
// to call more than once.
func (a *ServerAcceptor) Cleanup() error {
	s := a.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	a.cleaned = true
	s.forgetLocked(a)
	for _, p := range a.parked {
		p.wake <- parkOutcome{code: 481, reason: "Session cleaned up"}
	}
	a.parked = nil
	if a.waiter != nil {
		a.waiter.result <- serverResult{err: errCleanedUp}
		a.waiter = nil
	}
	return nil
}

// forgetLocked removes a session from those the server expects.
func (s *MSRPServer) forgetLocked(a *ServerAcceptor) {
	if a.prepared && s.locals[a.uri.SessionID] == a {
		delete(s.locals, a.uri.SessionID)
	}
}

// ---- Incoming connections -----------------------------------------------------------

func (s *MSRPServer) acceptLoop(l *serverListener) {
	for {
		// The slot is taken once a connection is there, so that an idle
		// listener holds none: ServeMessageConn's connections share them.
		// One accepted connection per listener may wait for a slot.
		conn, err := l.ln.Accept()
		if err == nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.base.Done():
				conn.Close()
				return
			}
		}
		if err != nil {
			if s.base.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.Logger.event("accept failed", "addr", l.ln.Addr().String(), "error", err.Error())
			select { // a transient failure such as running out of descriptors
			case <-time.After(50 * time.Millisecond):
			case <-s.base.Done():
				return
			}
			continue
		}
		s.wg.Go(func() {
			defer func() { <-s.slots }()
			s.serve(conn, l.useTLS)
		})
	}
}

// ServeMessageConn takes a message-framed connection accepted elsewhere (a
// WebSocket that ws.Handler accepts) to the session it names, as the
// server does with the TCP connections it accepts: within BindTimeout, its
// first chunk must name a session whose Prepare used a "ws" URI (else
// 481), and the same rules, limits and refusals apply.
//
// accept accepts the connection (the WebSocket upgrade) and is called
// once the server has room for it: when MaxPendingConnections connections
// are binding already, or the server is closed, ServeMessageConn returns
// ErrServerBusy or ErrServerClosed at once without calling accept, so that
// the caller can turn the connection away before accepting it (with 503).
// It returns accept's error, or nil once the connection is bound and
// handed to its session's Complete, or the refusal once it is refused and
// closed.
func (s *MSRPServer) ServeMessageConn(ctx context.Context, accept func() (MessageConn, error)) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.mu.Unlock()
		return ErrServerBusy
	}
	s.wg.Add(1) // Close waits for it, as for the connections it accepts
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() { <-s.slots }()
	mc, err := accept()
	if err != nil {
		return err
	}
	return s.bindConn(ctx, s.newMessageTransport(mc, URI{}))
}

// ErrServerBusy is returned by ServeMessageConn when MaxPendingConnections
// connections are binding already.
var ErrServerBusy = errors.New("msrp: server busy: too many connections binding")

// serve takes one accepted connection to its session, or refuses it.
func (s *MSRPServer) serve(conn net.Conn, useTLS bool) {
	ctx, cancel := context.WithTimeout(s.base, s.bindTimeout())
	defer cancel()
	if useTLS {
		tc := tls.Server(conn, cloneTLS(s.TLSConfig))
		if err := tc.HandshakeContext(ctx); err != nil {
			s.Logger.event("TLS handshake failed", "from", conn.RemoteAddr().String(), "error", err.Error())
			conn.Close()
			return
		}
		conn = tc
	}
	s.bindConn(ctx, s.newTransport(conn, URI{}))
}

// bindConn binds a connection's transport within the bind timeout, or
// closes it and says why.
func (s *MSRPServer) bindConn(ctx context.Context, t *MSRPTransport) error {
	ctx, cancel := context.WithTimeout(ctx, s.bindTimeout())
	defer cancel()
	stop := context.AfterFunc(s.base, cancel) // Close ends the wait
	defer stop()
	err := s.bindIncoming(ctx, t)
	if err != nil {
		s.Logger.event("refused connection", "from", t.RemoteAddr().String(), "error", err.Error())
		if t.framed {
			// A WebSocket's closing handshake would wait up to 5 s for a
			// peer that may never answer, holding a slot; the refusal is
			// written already.
			t.closeNow()
		} else {
			t.Close()
		}
	}
	return err
}

// bindIncoming reads the first chunk and binds the connection, or returns
// why not (after answering the peer where an answer is due).
func (s *MSRPServer) bindIncoming(ctx context.Context, t *MSRPTransport) (err error) {
	var lifted *ServerAcceptor // the session whose lift this connection holds
	defer func() {
		if lifted != nil && err != nil {
			s.mu.Lock()
			lifted.lifted = false // another connection may have its turn
			s.mu.Unlock()
		}
	}()
	done := t.bindingLimits(func(c *Chunk) (bool, error) { return s.vetHead(c, &lifted) })
	first, err := t.readBindingChunk(ctx)
	if err != nil {
		return err
	}
	if !first.IsRequest() {
		return errors.New("msrp: first chunk is a response")
	}
	refuse := func(code int, reason string) error {
		err := &TransactionError{Code: code, Comment: reason}
		// The binding deadline may be what ends the wait: the refusal gets
		// a moment of its own.
		wctx, cancel := context.WithTimeout(s.base, refusalTimeout)
		defer cancel()
		if werr := t.WriteResponse(wctx, first, code, reason); werr != nil {
			return errors.Join(err, werr)
		}
		return err
	}
	a, from, err := s.sessionFor(first) // again: its state may have changed meanwhile
	if err != nil {
		te := err.(*TransactionError)
		return refuse(te.Code, te.Comment)
	}
	if t.framed != a.uri.IsWebSocket() { // the To-Path is the peer's word; the link is not
		return refuse(481, "Session not reachable over this transport")
	}
	key := s.remoteKey(from)

	s.mu.Lock()
	t.setLocalURI(a.uri)
	t.Logger = a.cfg.Logger
	var w *completeWaiter
	var p *parkedConn
	switch {
	case a.cleaned || s.closed:
		s.mu.Unlock()
		return refuse(481, "Unknown To-Path")
	case a.bound:
		s.mu.Unlock()
		return refuse(506, "")
	case a.waiter != nil && !a.waiter.takes(key):
		s.mu.Unlock()
		return refuse(481, "Invalid From-Path")
	case a.waiter != nil:
		w, a.waiter = a.waiter, nil
		a.bound = true
		for _, other := range a.parked {
			other.wake <- parkOutcome{code: 506}
		}
		a.parked = nil
	default:
		p = &parkedConn{key: key, wake: make(chan parkOutcome, 1)}
		a.parked = append(a.parked, p)
	}
	s.mu.Unlock()

	if p != nil { // wait for the session's Complete
		var out parkOutcome
		select {
		case out = <-p.wake:
		case <-ctx.Done():
			s.mu.Lock()
			i := indexOf(a.parked, p)
			if i >= 0 {
				a.parked = append(a.parked[:i:i], a.parked[i+1:]...)
			}
			s.mu.Unlock()
			switch {
			case i < 0:
				out = <-p.wake // claimed or refused just now
			case s.base.Err() != nil:
				return ErrServerClosed
			default:
				out = parkOutcome{code: 481, reason: "Invalid From-Path"}
			}
		}
		if out.waiter == nil {
			return refuse(out.code, out.reason)
		}
		w = out.waiter
	}
	return s.finishBinding(ctx, t, first, a, w, done)
}

// sessionFor finds the session a connection's first request names: its
// To-Path must be one URI of a session the server expects and that is not
// bound yet, and its From-Path a path. Refusals are *TransactionErrors.
// The server calls it as soon as the request's headers are read, and again
// once it is whole.
func (s *MSRPServer) sessionFor(c *Chunk) (*ServerAcceptor, []URI, error) {
	to, err := c.ToPath()
	if err != nil || len(to) != 1 {
		return nil, nil, &TransactionError{Code: 400, Comment: "Invalid To-Path"}
	}
	from, err := c.FromPath()
	if err != nil {
		return nil, nil, &TransactionError{Code: 400, Comment: "Invalid From-Path"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.locals[to[0].SessionID]
	switch {
	case !ok || (!s.UseSessmatch && !to[0].Equal(a.uri)):
		return nil, nil, &TransactionError{Code: 481, Comment: "Unknown To-Path"}
	case a.bound:
		return nil, nil, &TransactionError{Code: 506, Comment: StatusText(506)}
	}
	return a, from, nil
}

// vetHead checks a connection's chunk on its headers, before its body is
// read: it must name a session the server expects and, once that session's
// Complete has said who the peer is, come from that peer. Such a
// connection may then send a first chunk of any size, but one per session
// at a time (*lifted records which): anyone who knows the session may
// write the peer's path in From-Path, and unbound connections must stay
// within their stated cost plus one chunk per waiting Complete.
func (s *MSRPServer) vetHead(c *Chunk, lifted **ServerAcceptor) (lift bool, err error) {
	a, from, err := s.sessionFor(c)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case a.waiter == nil:
		return false, nil
	case a.waiter.key != s.remoteKey(from):
		return false, &TransactionError{Code: 481, Comment: "Invalid From-Path"}
	case *lifted == a:
		return true, nil
	case !a.lifted:
		a.lifted, *lifted = true, a
		return true, nil
	}
	return false, nil
}

// finishBinding answers the peer's first request and hands the transport to
// the Complete call w. The session is marked bound already; it is forgotten
// when the transport closes.
func (s *MSRPServer) finishBinding(ctx context.Context, t *MSRPTransport, first *Chunk, a *ServerAcceptor, w *completeWaiter, bindingDone func()) error {
	t.SetRemotePath(w.remote)
	if len(w.remote) == 0 {
		t.learnRemotePath(first)
	}
	if err := t.bindWith(ctx, first); err != nil {
		s.mu.Lock()
		a.bound = false
		s.mu.Unlock()
		w.result <- serverResult{err: err}
		return err
	}
	bindingDone()
	s.mu.Lock()
	var gone error // Cleanup or Close came while the binding was answered
	switch {
	case a.cleaned:
		gone = errCleanedUp
	case s.closed:
		gone = ErrServerClosed
	default:
		t.onClose = func() {
			s.mu.Lock()
			s.forgetLocked(a)
			s.mu.Unlock()
		}
	}
	s.mu.Unlock()
	if gone != nil {
		w.result <- serverResult{err: gone}
		return gone
	}
	w.result <- serverResult{t: t}
	return nil
}

func indexOf[T comparable](list []T, x T) int {
	for i, y := range list {
		if y == x {
			return i
		}
	}
	return -1
}

// ---- Closing ----------------------------------------------------------------------

// Close stops the listeners, fails waiting Complete calls with
// ErrServerClosed, closes connections that have not bound, and returns once
// every goroutine of the server has ended. Transports already handed out
// stay open. It is safe to call more than once.
func (s *MSRPServer) Close() error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.cancel()
	var errs []error
	for _, l := range s.listeners {
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}

// Addrs returns the addresses the server listens on.
func (s *MSRPServer) Addrs() []net.Addr {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		addrs = append(addrs, l.ln.Addr())
	}
	return addrs
}

// remoteKey identifies a peer path for matching: the whole path under the
// RFC 4975 §6.1 comparison rules, or only the peer's session id with
// UseSessmatch.
func (s *MSRPServer) remoteKey(path []URI) string {
	if s.UseSessmatch {
		return path[len(path)-1].SessionID
	}
	var b strings.Builder
	for _, u := range path {
		fmt.Fprintf(&b, "%s://%s:%d/%s;%s ", u.Scheme(), normalHost(u.Host), u.portOrDefault(), u.SessionID, strings.ToLower(u.transportOrDefault()))
	}
	return b.String()
}

// setLocalURI sets our URI once the server knows which session a
// connection belongs to.
func (t *MSRPTransport) setLocalURI(u URI) {
	t.pathMu.Lock()
	defer t.pathMu.Unlock()
	t.localURI = u
}
