package msrp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
//	path, err := srv.Prepare(ctx, localURI)   // for each session: its a=path
//	t, err := srv.Complete(ctx, remotePath)   // once the peer's a=path is known
//
// A connection's first chunk decides where it goes: its To-Path must be one
// URI that Prepare registered (else 400 or 481), the session must not be
// bound yet (else 506), and its From-Path must be the path a Complete call
// gave (or, with UseSessmatch, carry the same session id; RFC 6714). The
// peer may connect before or after Complete is called. A connection that
// sends nothing valid in time (BindTimeout), or that no Complete claims in
// that time (481), is closed.
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
	locals    map[string]*expectedLocal  // by session id
	waiters   map[string][]*completeWaiter
	parked    map[string][]*parkedConn // by remote key
	wg        sync.WaitGroup
}

type serverListener struct {
	ln     net.Listener
	host   string
	port   int
	useTLS bool
}

type expectedLocal struct {
	uri    URI
	logger *Logger
	bound  bool
	parked []*parkedConn
}

// completeWaiter is a Complete call waiting for its peer.
type completeWaiter struct {
	remote []URI
	result chan serverResult // buffered: the connection's goroutine never blocks on it
}

type serverResult struct {
	t   *MSRPTransport
	err error
}

// parkedConn is a connection whose first chunk arrived before the Complete
// that names its From-Path.
type parkedConn struct {
	local *expectedLocal
	key   string
	wake  chan parkOutcome // buffered
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
		s.locals = map[string]*expectedLocal{}
		s.waiters = map[string][]*completeWaiter{}
		s.parked = map[string][]*parkedConn{}
	})
}

// Prepare registers localURI as an expected session and returns its full
// local path for SDP a=path, using the server's Logger for its transport.
// See PrepareWithLogger.
func (s *MSRPServer) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	return s.PrepareWithLogger(ctx, localURI, s.Logger)
}

// PrepareWithLogger registers localURI as an expected session whose
// transport logs to logger, and returns its full local path. Blanks in
// localURI are filled in as for AcceptorDirect. The first call for a host
// starts a listener there (TCP, or TLS for msrps, which needs a certificate
// in TLSConfig); a later call with the same host reuses it: with port 0 any
// listener of the same scheme on that host, else the one on that port. The
// returned path carries the real port.
func (s *MSRPServer) PrepareWithLogger(ctx context.Context, localURI URI, logger *Logger) ([]URI, error) {
	s.init()
	u, err := listenerURI(localURI, s.TLSConfig)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if _, dup := s.locals[u.SessionID]; dup {
		return nil, fmt.Errorf("msrp: session id %q is already expected", u.SessionID)
	}
	l, err := s.listenerFor(ctx, u)
	if err != nil {
		return nil, err
	}
	u.Port = l.port
	s.locals[u.SessionID] = &expectedLocal{uri: u, logger: logger}
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
	s.Logger.Event("listening", "addr", ln.Addr().String(), "tls", u.UseTLS)
	s.wg.Go(func() { s.acceptLoop(l) })
	return l, nil
}

func hasCertificate(cfg *tls.Config) bool {
	return cfg != nil && (len(cfg.Certificates) > 0 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil)
}

func (s *MSRPServer) acceptLoop(l *serverListener) {
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.base.Done():
			return
		}
		conn, err := l.ln.Accept()
		if err != nil {
			<-s.slots
			if s.base.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.Logger.Event("accept failed", "addr", l.ln.Addr().String(), "error", err.Error())
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

// serve takes one accepted connection to its session, or refuses it.
func (s *MSRPServer) serve(conn net.Conn, useTLS bool) {
	ctx, cancel := context.WithTimeout(s.base, s.bindTimeout())
	defer cancel()
	if useTLS {
		tc := tls.Server(conn, cloneTLS(s.TLSConfig))
		if err := tc.HandshakeContext(ctx); err != nil {
			s.Logger.Event("TLS handshake failed", "from", conn.RemoteAddr().String(), "error", err.Error())
			conn.Close()
			return
		}
		conn = tc
	}
	t := s.newTransport(conn, URI{})
	if err := s.bindIncoming(ctx, t); err != nil {
		s.Logger.Event("refused connection", "from", conn.RemoteAddr().String(), "error", err.Error())
		t.Close()
	}
}

// bindIncoming reads the first chunk and binds the connection, or returns
// why not (after answering the peer where an answer is due).
func (s *MSRPServer) bindIncoming(ctx context.Context, t *MSRPTransport) error {
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
	to, err := first.ToPath()
	if err != nil || len(to) != 1 {
		return refuse(400, "Invalid To-Path")
	}
	from, err := first.FromPath()
	if err != nil {
		return refuse(400, "Invalid From-Path")
	}
	key := s.remoteKey(from)

	s.mu.Lock()
	local, ok := s.locals[to[0].SessionID]
	if ok && !s.UseSessmatch && !to[0].Equal(local.uri) {
		ok = false
	}
	switch {
	case !ok:
		s.mu.Unlock()
		return refuse(481, "Unknown To-Path")
	case local.bound:
		s.mu.Unlock()
		return refuse(506, "")
	}
	t.setLocalURI(local.uri)
	t.Logger = local.logger
	w := s.takeWaiter(key)
	var p *parkedConn
	if w != nil {
		local.bound = true
		s.refuseOthers(local, 506, "")
	} else {
		p = &parkedConn{local: local, key: key, wake: make(chan parkOutcome, 1)}
		s.parked[key] = append(s.parked[key], p)
		local.parked = append(local.parked, p)
	}
	s.mu.Unlock()

	if p != nil { // wait for the Complete that names this From-Path
		var out parkOutcome
		select {
		case out = <-p.wake:
		case <-ctx.Done():
			if !s.unpark(p) {
				out = <-p.wake // claimed or refused just now
			} else if s.base.Err() != nil {
				return ErrServerClosed
			} else {
				out = parkOutcome{code: 481, reason: "Invalid From-Path"}
			}
		}
		if out.waiter == nil {
			return refuse(out.code, out.reason)
		}
		w = out.waiter
	}
	return s.finishBinding(ctx, t, first, w)
}

// finishBinding answers the peer's first request and hands the transport to
// the Complete call w. The session is marked bound already.
func (s *MSRPServer) finishBinding(ctx context.Context, t *MSRPTransport, first *Chunk, w *completeWaiter) error {
	t.SetRemotePath(w.remote)
	if err := t.bindWith(ctx, first); err != nil {
		s.mu.Lock()
		if l, ok := s.locals[t.LocalURI().SessionID]; ok {
			l.bound = false
		}
		s.mu.Unlock()
		w.result <- serverResult{err: err}
		return err
	}
	w.result <- serverResult{t: t}
	return nil
}

// takeWaiter removes and returns a Complete waiting for key, or nil.
// Called with s.mu held.
func (s *MSRPServer) takeWaiter(key string) *completeWaiter {
	ws := s.waiters[key]
	if len(ws) == 0 {
		return nil
	}
	w := ws[0]
	if len(ws) == 1 {
		delete(s.waiters, key)
	} else {
		s.waiters[key] = ws[1:]
	}
	return w
}

// unpark removes p from the waiting lists, reporting whether it was still
// there (and so nobody else will wake it).
func (s *MSRPServer) unpark(p *parkedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeParked(p)
}

// removeParked is unpark with s.mu held.
func (s *MSRPServer) removeParked(p *parkedConn) bool {
	list := s.parked[p.key]
	i := indexOf(list, p)
	if i < 0 {
		return false
	}
	if len(list) == 1 {
		delete(s.parked, p.key)
	} else {
		s.parked[p.key] = append(list[:i:i], list[i+1:]...)
	}
	if j := indexOf(p.local.parked, p); j >= 0 {
		p.local.parked = append(p.local.parked[:j:j], p.local.parked[j+1:]...)
	}
	return true
}

func indexOf[T comparable](list []T, x T) int {
	for i, y := range list {
		if y == x {
			return i
		}
	}
	return -1
}

// Complete returns the transport of the session whose peer has the given
// path, once that peer has connected and sent its first request; the peer
// may have done so already. It fails with ErrBindSessionTimeout after
// BindTimeout, with ErrServerClosed when the server closes, or with ctx's
// error.
func (s *MSRPServer) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	s.init()
	if len(fullRemotePath) == 0 {
		return nil, errors.New("msrp: empty remote path")
	}
	w := &completeWaiter{remote: fullRemotePath, result: make(chan serverResult, 1)}
	key := s.remoteKey(fullRemotePath)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrServerClosed
	}
	if p := s.claimParked(key); p != nil {
		p.wake <- parkOutcome{waiter: w}
	} else {
		s.waiters[key] = append(s.waiters[key], w)
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
	if s.dropWaiter(key, w) {
		if s.base.Err() != nil {
			return nil, ErrServerClosed
		}
		return nil, stageError(ctx, waitCtx, ErrBindSessionTimeout, nil)
	}
	// A connection claimed this call just now: take what it brings.
	r := <-w.result
	return r.t, r.err
}

// claimParked removes and returns a parked connection for key whose session
// is not bound, marking the session bound. Called with s.mu held.
func (s *MSRPServer) claimParked(key string) *parkedConn {
	for _, p := range s.parked[key] {
		if !p.local.bound {
			s.removeParked(p)
			p.local.bound = true
			s.refuseOthers(p.local, 506, "")
			return p
		}
	}
	return nil
}

// refuseOthers wakes the other connections parked for a session with a
// refusal. Called with s.mu held.
func (s *MSRPServer) refuseOthers(l *expectedLocal, code int, reason string) {
	for _, p := range append([]*parkedConn(nil), l.parked...) {
		s.removeParked(p)
		p.wake <- parkOutcome{code: code, reason: reason}
	}
}

// dropWaiter removes w, reporting whether it was still waiting.
func (s *MSRPServer) dropWaiter(key string, w *completeWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[key]
	i := indexOf(ws, w)
	if i < 0 {
		return false
	}
	if len(ws) == 1 {
		delete(s.waiters, key)
	} else {
		s.waiters[key] = append(ws[:i:i], ws[i+1:]...)
	}
	return true
}

// Cleanup forgets an expected local URI: connections for it are refused
// with 481 from now on, including any waiting for their Complete. A
// transport already handed out is not closed.
func (s *MSRPServer) Cleanup(localURI URI) error {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locals[localURI.SessionID]
	if !ok {
		return nil
	}
	delete(s.locals, localURI.SessionID)
	s.refuseOthers(l, 481, "Session cleaned up")
	return nil
}

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
