package msrp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is msrplib's timeout for connecting, for waiting for an
// incoming connection, and for binding a session.
const DefaultTimeout = 30 * time.Second

// maxPendingAccepts bounds the connections an AcceptorDirect binds at once;
// further ones wait in the listen queue.
const maxPendingAccepts = 16

// Connector is the Prepare / Complete / Cleanup lifecycle that
// ConnectorDirect and AcceptorDirect (and the relay kinds) share:
//
//	path, err := c.Prepare(ctx, localURI)     // put FormatPath(path) in SDP a=path
//	defer c.Cleanup()
//	// ... exchange SDP over SIP, parse the peer's a=path with ParsePath ...
//	t, err := c.Complete(ctx, remotePath)     // a bound transport
//
// Each value is used for one session.
type Connector interface {
	// Prepare returns the full local path to advertise in SDP a=path.
	Prepare(ctx context.Context, localURI URI) ([]URI, error)
	// Complete connects and binds the session, returning the transport.
	Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error)
	// Cleanup releases what Prepare and a failed Complete left behind. It
	// does not close a transport that Complete returned.
	Cleanup() error
}

// ConnectConfig holds the settings every connector kind shares. The zero
// value works: msrplib's 30 s timeouts, certificate verification on, no log.
type ConnectConfig struct {
	// Logger receives connection events and is passed to the transport.
	Logger *Logger
	// TLSConfig is used for msrps URIs, never modified (it is cloned). For
	// a client it holds the verification settings (see VerifyFingerprint
	// for peers that prove self-signed certificates with SDP a=fingerprint);
	// for a listener it must hold a certificate. TLS 1.2 is the minimum.
	TLSConfig *tls.Config
	// UseSessmatch checks incoming paths by session id only (RFC 6714).
	UseSessmatch bool
	// ConnectTimeout bounds an outgoing connection, or the wait for an
	// incoming one that binds; 0 means DefaultTimeout.
	ConnectTimeout time.Duration
	// BindTimeout bounds the binding exchange on a connection; 0 means
	// DefaultTimeout.
	BindTimeout time.Duration
	// Limits bound incoming chunks on the transport; the zero value is
	// msrplib's (4 MiB chunks, 16 KiB lines, 64 headers).
	Limits
	// Dial opens outgoing connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Listen opens listeners; nil uses a net.ListenConfig.
	Listen func(ctx context.Context, network, addr string) (net.Listener, error)
	// DialMessage opens a message-framed connection to a URI whose
	// transport is "ws" (RFC 7977): a peer or a relay reached over
	// WebSocket. ws.Dialer's DialMessage is one; nil means such URIs
	// cannot be reached.
	DialMessage func(ctx context.Context, to URI) (MessageConn, error)
}

// dialMessage opens a message-framed connection to a "ws" URI.
func (c *ConnectConfig) dialMessage(ctx context.Context, to URI) (MessageConn, error) {
	if c.DialMessage == nil {
		return nil, fmt.Errorf("msrp: %s is a WebSocket URI: set ConnectConfig.DialMessage (ws.Dialer)", to)
	}
	return c.DialMessage(ctx, to)
}

// open connects to a peer or relay at to (TLS with tlsCfg for msrps,
// WebSocket for "ws") and returns a transport with this configuration's
// settings.
func (c *ConnectConfig) open(ctx context.Context, to, local URI, tlsCfg *tls.Config) (*MSRPTransport, error) {
	if to.IsWebSocket() {
		mc, err := c.dialMessage(ctx, to)
		if err != nil {
			return nil, err
		}
		return c.newMessageTransport(mc, local), nil
	}
	conn, err := c.dial(ctx, to.HostPort())
	if err != nil {
		return nil, err
	}
	if !to.UseTLS {
		return c.newTransport(conn, local), nil
	}
	tc := tls.Client(conn, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c.newTransport(tc, local), nil
}

func (c *ConnectConfig) connectTimeout() time.Duration { return durationOr(c.ConnectTimeout) }
func (c *ConnectConfig) bindTimeout() time.Duration    { return durationOr(c.BindTimeout) }

func durationOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

func (c *ConnectConfig) dial(ctx context.Context, addr string) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (c *ConnectConfig) listen(ctx context.Context, addr string) (net.Listener, error) {
	if c.Listen != nil {
		return c.Listen(ctx, "tcp", addr)
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// newTransport wraps a connection with this configuration's settings.
func (c *ConnectConfig) newTransport(conn net.Conn, local URI) *MSRPTransport {
	return c.configure(NewMSRPTransport(conn, local))
}

// newMessageTransport is newTransport for a message-framed connection.
func (c *ConnectConfig) newMessageTransport(mc MessageConn, local URI) *MSRPTransport {
	return c.configure(NewMessageTransport(mc, local))
}

// configure gives a new transport this configuration's settings.
func (c *ConnectConfig) configure(t *MSRPTransport) *MSRPTransport {
	t.Logger = c.Logger
	t.UseSessmatch = c.UseSessmatch
	t.SetLimits(c.Limits)
	return t
}

// clientTLS returns the TLS configuration to dial host with.
func (c *ConnectConfig) clientTLS(host string) *tls.Config {
	cfg := cloneTLS(c.TLSConfig)
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

func cloneTLS(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12 // RFC 8996
	}
	return cfg
}

// withStage bounds ctx by the timeout of one stage of connection set-up.
func withStage(ctx context.Context, d time.Duration, timeoutErr error) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, timeoutErr)
}

// stageError picks the error to report after a stage failed with err (which
// may be nil): the caller's own context error if the caller's context ended;
// timeoutErr if the stage's time ran out; else err. Deadlines are compared
// with the clock, not with ctx.Err(), because a connection deadline and the
// context's timer that fire together may be noticed in either order.
func stageError(parent, stage context.Context, timeoutErr, err error) error {
	if expired(parent) {
		if perr := parent.Err(); perr != nil {
			return perr
		}
		return context.DeadlineExceeded
	}
	if !expired(stage) {
		return err
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || isTimeout(err) {
		return timeoutErr
	}
	return fmt.Errorf("%w: %w", timeoutErr, err)
}

// expired reports whether ctx has ended or its deadline has passed.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// GetConnector returns the connector for the active side of a session: a
// *ConnectorDirect when relay is nil, else a *ConnectorRelay using it.
// msrplib's get_connector.
func GetConnector(relay *MSRPRelaySettings, cfg ConnectConfig) Connector {
	if relay == nil {
		return &ConnectorDirect{ConnectConfig: cfg}
	}
	return &ConnectorRelay{ConnectConfig: cfg, Relay: *relay}
}

// GetAcceptor returns the connector for the passive side of a session: an
// *AcceptorDirect when relay is nil, else an *AcceptorRelay using it.
// msrplib's get_acceptor.
func GetAcceptor(relay *MSRPRelaySettings, cfg ConnectConfig) Connector {
	if relay == nil {
		return &AcceptorDirect{ConnectConfig: cfg}
	}
	return &AcceptorRelay{ConnectConfig: cfg, Relay: *relay}
}

// completeLocalURI fills in what a local URI may leave out: a host (the
// first non-loopback IPv4 address of this machine, else 127.0.0.1), a
// session id and the transport.
func completeLocalURI(u URI) URI {
	if u.Host == "" {
		u.Host = defaultHost()
	}
	if u.SessionID == "" {
		u.SessionID = NewSessionID()
	}
	if u.Transport == "" {
		u.Transport = "tcp"
	}
	return u
}

// listenerURI completes the local URI of a listener and checks that an
// msrps one has a certificate to present.
func listenerURI(localURI URI, cfg *tls.Config) (URI, error) {
	u := completeLocalURI(localURI)
	if u.UseTLS && !hasCertificate(cfg) {
		return URI{}, errors.New("msrp: msrps listener needs a certificate in TLSConfig")
	}
	return u, nil
}

func defaultHost() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// ---- ConnectorDirect ---------------------------------------------------------

// ConnectorDirect is the active side of a session without relays: Complete
// connects to the first URI of the peer's path and binds the session by
// sending an empty SEND (RFC 4975 §5.4). msrplib's DirectConnector.
type ConnectorDirect struct {
	ConnectConfig

	mu      sync.Mutex
	local   URI
	cancel  context.CancelFunc // of a Complete in progress
	cleaned bool
}

// Prepare returns [localURI] with its blanks filled in (see ConnectConfig):
// the connector does not listen, so a zero port becomes DefaultPort, a
// placeholder that peers only compare.
func (c *ConnectorDirect) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u := completeLocalURI(localURI)
	if u.Port == 0 {
		u.Port = DefaultPort
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cleaned {
		return nil, errCleanedUp
	}
	c.local = u
	return []URI{u}, nil
}

var errCleanedUp = errors.New("msrp: connector already cleaned up")

// Complete connects to fullRemotePath[0] (TLS for msrps) within
// ConnectTimeout, then binds within BindTimeout, and returns the bound
// transport. Timeouts are ErrConnectTimeout and ErrBindSessionTimeout; a
// peer that refuses the binding gives its *TransactionError (e.g. 481).
func (c *ConnectorDirect) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	if len(fullRemotePath) == 0 {
		return nil, errors.New("msrp: empty remote path")
	}
	c.mu.Lock()
	if c.cleaned {
		c.mu.Unlock()
		return nil, errCleanedUp
	}
	if c.local.Host == "" {
		c.mu.Unlock()
		return nil, errors.New("msrp: Complete called before Prepare")
	}
	ctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	local := c.local
	c.mu.Unlock()
	defer cancel()

	first := fullRemotePath[0]
	dialCtx, stopDial := withStage(ctx, c.connectTimeout(), ErrConnectTimeout)
	defer stopDial()
	c.Logger.event("connecting", "to", first.HostPort())
	t, err := c.open(dialCtx, first, local, c.clientTLS(first.Host))
	if err != nil {
		return nil, stageError(ctx, dialCtx, ErrConnectTimeout, fmt.Errorf("msrp: connect to %s: %w", first.HostPort(), err))
	}
	c.Logger.event("connected", "local", t.LocalAddr().String(), "remote", t.RemoteAddr().String())

	bindCtx, stop := withStage(ctx, c.bindTimeout(), ErrBindSessionTimeout)
	defer stop()
	if err := t.Bind(bindCtx, fullRemotePath); err != nil {
		t.Close()
		return nil, stageError(ctx, bindCtx, ErrBindSessionTimeout, err)
	}
	return t, nil
}

// Cleanup abandons a Complete in progress. It is safe to call more than
// once and does not close a transport Complete returned.
func (c *ConnectorDirect) Cleanup() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleaned = true
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

// ---- AcceptorDirect ----------------------------------------------------------

// AcceptorDirect is the passive side of a session without relays: Prepare
// listens, Complete waits for the peer to connect and bind. msrplib's
// DirectAcceptor, except that a connection with the wrong paths is refused
// (481) and the acceptor goes on waiting for the right peer.
type AcceptorDirect struct {
	ConnectConfig

	mu      sync.Mutex
	local   URI
	ln      net.Listener
	cancel  context.CancelFunc // of a Complete in progress
	done    chan struct{}      // closed when that Complete has returned
	cleaned bool
}

// Prepare starts listening on localURI's host and port (port 0 picks a free
// one; an empty host means this machine's first non-loopback IPv4 address)
// and returns [localURI] with the real port, a session id and the transport
// filled in. An msrps URI needs a certificate in TLSConfig.
func (a *AcceptorDirect) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	u, err := listenerURI(localURI, a.TLSConfig)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cleaned {
		return nil, errCleanedUp
	}
	if a.ln != nil {
		return nil, errors.New("msrp: AcceptorDirect already prepared")
	}
	ln, err := a.listen(ctx, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	if err != nil {
		return nil, fmt.Errorf("msrp: listen: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		u.Port = tcp.Port
	}
	a.ln, a.local = ln, u
	a.Logger.event("listening", "addr", ln.Addr().String(), "tls", u.UseTLS)
	return []URI{u}, nil
}

// Complete waits for the peer's connection and binding. A connection whose
// first SEND names other paths is answered 481 and closed, and the wait
// goes on. With an empty fullRemotePath the From-Path check is skipped:
// the first peer whose To-Path names this session is taken and its path
// learnt from its From-Path, for tools that do not know the peer's a=path
// (testing SIP equipment, say); a real application passes the path from SDP. It ends with the bound transport, with ErrIncomingConnectTimeout
// when no connection came within ConnectTimeout, with ErrBindSessionTimeout
// when connections came but none bound, or with ctx's error. Either way the
// listener is closed: the acceptor serves one session.
func (a *AcceptorDirect) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	a.mu.Lock()
	switch {
	case a.cleaned:
		a.mu.Unlock()
		return nil, errCleanedUp
	case a.ln == nil:
		a.mu.Unlock()
		return nil, errors.New("msrp: Complete called before Prepare")
	case a.done != nil:
		a.mu.Unlock()
		return nil, errors.New("msrp: Complete already called")
	}
	ctx, cancel := context.WithCancel(ctx)
	a.cancel, a.done = cancel, make(chan struct{})
	ln, local, done := a.ln, a.local, a.done
	a.mu.Unlock()
	defer close(done)
	defer cancel()

	waitCtx, stop := withStage(ctx, a.connectTimeout(), ErrIncomingConnectTimeout)
	defer stop()
	t, accepted, lastErr := a.acceptBound(waitCtx, ln, local, fullRemotePath)
	ln.Close()
	if t != nil {
		return t, nil
	}
	timeoutErr := ErrIncomingConnectTimeout
	if accepted > 0 {
		timeoutErr = ErrBindSessionTimeout // connections came, none bound
	}
	return nil, stageError(ctx, waitCtx, timeoutErr, lastErr)
}

// acceptBound accepts connections and binds each in its own goroutine,
// until one binds or ctx ends. It returns the bound transport, the number
// of connections accepted and the last error. No goroutine it started
// outlives it.
func (a *AcceptorDirect) acceptBound(ctx context.Context, ln net.Listener, local URI, remotePath []URI) (*MSRPTransport, int, error) {
	type result struct {
		t        *MSRPTransport
		err      error
		listener bool // the listener failed: nothing more will come
	}
	results := make(chan result)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()   // ends the bindings in progress
		ln.Close() // ends Accept
		wg.Wait()
	}()

	var accepted atomic.Int32
	var lifted atomic.Bool // a connection may send a first chunk over bindingMaxChunk
	slots := make(chan struct{}, maxPendingAccepts)
	wg.Go(func() {
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			conn, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					select {
					case results <- result{err: fmt.Errorf("msrp: accept: %w", err), listener: true}:
					case <-ctx.Done():
					}
				}
				return
			}
			accepted.Add(1)
			a.Logger.event("incoming connection", "from", conn.RemoteAddr().String())
			wg.Go(func() {
				defer func() { <-slots }()
				t, err := a.bindIncoming(ctx, conn, local, remotePath, &lifted)
				if err != nil && ctx.Err() == nil {
					a.Logger.event("refused connection", "from", conn.RemoteAddr().String(), "error", err.Error())
				}
				select {
				case results <- result{t: t, err: err}:
				case <-ctx.Done():
					if t != nil {
						t.Close()
					}
				}
			})
		}
	})

	var lastErr error
	for {
		select {
		case r := <-results:
			if r.t != nil || r.listener {
				cancel()
				return r.t, int(accepted.Load()), r.err
			}
			lastErr = r.err
		case <-ctx.Done():
			return nil, int(accepted.Load()), lastErr
		}
	}
}

// bindIncoming runs the TLS handshake and the passive binding on one
// accepted connection, within BindTimeout. A connection whose paths are
// the expected peer's may send a first chunk of any size, but only one at
// a time, as lifted says: anyone may write the peer's path in From-Path,
// so this keeps what unbound connections cost within the stated bound
// plus one chunk.
func (a *AcceptorDirect) bindIncoming(parent context.Context, conn net.Conn, local URI, remotePath []URI, lifted *atomic.Bool) (_ *MSRPTransport, err error) {
	ctx, stop := withStage(parent, a.bindTimeout(), ErrBindSessionTimeout)
	defer stop()
	if local.UseTLS {
		tc := tls.Server(conn, cloneTLS(a.TLSConfig))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, stageError(parent, ctx, ErrBindSessionTimeout, fmt.Errorf("msrp: TLS handshake with %s: %w", conn.RemoteAddr(), err))
		}
		conn = tc
	}
	t := a.newTransport(conn, local)
	t.SetRemotePath(remotePath)
	// A stranger is refused on its headers, before any body is read.
	mine := false // this connection holds lifted
	defer func() {
		if mine && err != nil {
			lifted.Store(false) // another connection may have its turn
		}
	}()
	done := t.bindingLimits(func(c *Chunk) (bool, error) {
		if len(remotePath) > 0 {
			if err := t.CheckIncomingSENDChunk(c); err != nil {
				return false, err
			}
			mine = mine || lifted.CompareAndSwap(false, true)
			return mine, nil
		}
		if to, err := c.ToPath(); err != nil || len(to) != 1 || !(to[0].Equal(local) || a.UseSessmatch && to[0].SessionID == local.SessionID) {
			return false, &TransactionError{Code: 481, Comment: "Invalid To-Path"}
		}
		return false, nil
	})
	if err := t.AcceptBinding(ctx, remotePath); err != nil {
		t.Close()
		return nil, stageError(parent, ctx, ErrBindSessionTimeout, err)
	}
	done()
	return t, nil
}

// Cleanup stops listening and abandons a Complete in progress, waiting
// until its goroutines are gone. It is safe to call more than once and does
// not close a transport Complete returned.
func (a *AcceptorDirect) Cleanup() error {
	a.mu.Lock()
	a.cleaned = true
	if a.cancel != nil {
		a.cancel()
	}
	ln, done := a.ln, a.done
	a.mu.Unlock()
	var err error
	if ln != nil {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	if done != nil {
		<-done
	}
	return err
}

// ---- Binding ------------------------------------------------------------------

// Bind binds the session on the active side (RFC 4975 §5.4, msrplib's
// bind): it records the peer's path, sends an empty SEND and waits for the
// response to that SEND (matched by transaction id). A request the peer
// sends meanwhile, as when both ends think they are active, is checked and
// answered (empty SENDs) or kept, unanswered, for the ReadChunk calls after
// Bind returns (anything else), so neither side waits for the other. A
// negative response is returned as a *TransactionError. The caller bounds
// the wait with ctx.
func (t *MSRPTransport) Bind(ctx context.Context, fullRemotePath []URI) error {
	t.SetRemotePath(fullRemotePath)
	req := t.MakeSendRequest("", nil, 1, 0)
	if err := t.WriteChunk(ctx, req); err != nil {
		return err
	}
	var kept keptChunks
	for {
		c, err := t.readBindingChunk(ctx)
		if err != nil {
			return err
		}
		if c.IsRequest() {
			keep, err := t.takeBindingRequest(ctx, c)
			if err != nil && !isRefusal(err) {
				return err
			}
			if keep {
				if err := kept.add(c); err != nil {
					return err
				}
			}
			continue
		}
		if c.TransactionID != req.TransactionID {
			t.Logger.event("ignoring a response to no request of ours while binding", "tid", c.TransactionID)
			continue
		}
		if c.Code != 200 {
			return &TransactionError{Code: c.Code, Comment: c.Comment}
		}
		t.unreadChunks(kept.chunks...)
		return nil
	}
}

// Bounds on the requests with content that a peer may send before it
// answers our binding: they are kept in memory for the session.
const (
	maxKeptWhileBinding      = 16
	maxKeptBytesWhileBinding = 4 << 20
)

// keptChunks holds the requests that arrive while binding, within bounds.
type keptChunks struct {
	chunks []*Chunk
	bytes  int
}

func (k *keptChunks) add(c *Chunk) error {
	if len(k.chunks) >= maxKeptWhileBinding || k.bytes+len(c.Data) > maxKeptBytesWhileBinding {
		return fmt.Errorf("msrp: peer sent more than %d requests or %d bytes before answering the binding", maxKeptWhileBinding, maxKeptBytesWhileBinding)
	}
	k.chunks = append(k.chunks, c)
	k.bytes += len(c.Data)
	return nil
}

// AcceptBinding binds the session on the passive side (msrplib's
// accept_binding): it records the peer's path and reads the peer's first
// request, which must name this session. An empty SEND is answered 200; a
// request with content is kept, unanswered, for the next ReadChunk, so that
// whoever reads it (usually the session) answers it once and its body is
// not lost. A request with the wrong paths is answered (481 or 400) and
// returned as a *TransactionError: the transport is not bound. The caller
// bounds the wait with ctx. With an empty fullRemotePath the peer's path
// is learnt from the request's From-Path (see AcceptorDirect.Complete).
func (t *MSRPTransport) AcceptBinding(ctx context.Context, fullRemotePath []URI) error {
	t.SetRemotePath(fullRemotePath)
	for {
		c, err := t.readBindingChunk(ctx)
		if err != nil {
			return err
		}
		if !c.IsRequest() {
			t.Logger.event("ignoring a response received before binding", "tid", c.TransactionID)
			continue
		}
		if len(fullRemotePath) == 0 {
			t.learnRemotePath(c)
		}
		return t.bindWith(ctx, c)
	}
}

// bindWith binds the transport with the peer's first request: answered
// now if it is empty, kept for the next ReadChunk if it has content.
func (t *MSRPTransport) bindWith(ctx context.Context, first *Chunk) error {
	keep, err := t.takeBindingRequest(ctx, first)
	if keep {
		t.unreadChunks(first)
	}
	return err
}

// learnRemotePath takes the peer's path from a request's From-Path, less
// our own relays, which the request passed on its way.
func (t *MSRPTransport) learnRemotePath(c *Chunk) {
	from, err := c.FromPath()
	if err != nil {
		return // the path check answers it 400
	}
	t.pathMu.RLock()
	relays := len(t.localPath)
	t.pathMu.RUnlock()
	if len(from) > relays {
		t.SetRemotePath(from[relays:])
	}
}

// takeBindingRequest handles a request that arrives while binding: it
// checks the paths, and answers a refusal or an empty SEND. It reports
// whether the request is one for the session to answer (it has content):
// the caller keeps it for the session's reads.
func (t *MSRPTransport) takeBindingRequest(ctx context.Context, c *Chunk) (keep bool, err error) {
	if err := t.CheckIncomingSENDChunk(c); err != nil {
		te := err.(*TransactionError)
		t.Logger.event("refusing binding", "code", te.Code, "reason", te.Comment)
		if werr := t.WriteResponse(ctx, c, te.Code, te.Comment); werr != nil {
			return false, werr
		}
		return false, err
	}
	if c.Method == MethodSEND && !c.hasBodySection() {
		return false, t.WriteResponse(ctx, c, 200, "")
	}
	return true, nil
}

// readBindingChunk reads the next chunk while binding, answering malformed
// requests on the way (400, or 413 when too large) and skipping garbage.
func (t *MSRPTransport) readBindingChunk(ctx context.Context) (*Chunk, error) {
	for {
		c, err := t.ReadChunk(ctx)
		if err == nil {
			return c, nil
		}
		var pe *ChunkParseError
		if !errors.As(err, &pe) {
			return nil, err
		}
		if err := t.answerMalformed(ctx, pe); err != nil {
			return nil, err
		}
		if te := (*TransactionError)(nil); errors.As(pe, &te) {
			return nil, te // refused at its head (see bindingLimits): the binding fails
		}
	}
}

// answerMalformed answers the request a parse error names, if any: 413
// for one too large, the code of a refusal at its head, else 400.
func (t *MSRPTransport) answerMalformed(ctx context.Context, pe *ChunkParseError) error {
	c := pe.Chunk
	if c == nil || c.Method == MethodREPORT {
		return nil // garbage, or a REPORT, which is never answered
	}
	if _, err := c.ToPath(); err != nil {
		return nil // nowhere to send an answer
	}
	code, comment := 400, ""
	var te *TransactionError
	switch {
	case errors.Is(pe, ErrChunkTooLarge):
		code = 413
	case errors.As(pe, &te):
		code, comment = te.Code, te.Comment
	}
	return t.WriteResponse(ctx, c, code, comment)
}

func isRefusal(err error) bool {
	var te *TransactionError
	return errors.As(err, &te)
}

// ---- TLS fingerprints ----------------------------------------------------------

// ErrFingerprintMismatch is returned by a VerifyFingerprint callback when
// the peer's certificate is not the one its SDP a=fingerprint names.
var ErrFingerprintMismatch = errors.New("msrp: peer certificate does not match its fingerprint")

// CertificateFingerprint returns the SDP a=fingerprint value (RFC 8122 §5)
// of a DER-encoded certificate, e.g. "sha-256 4A:AD:B9:...". hashName is
// one of "sha-1", "sha-256", "sha-384", "sha-512".
func CertificateFingerprint(der []byte, hashName string) (string, error) {
	h, err := fingerprintHash(hashName)
	if err != nil {
		return "", err
	}
	h.Write(der)
	sum := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
	var b strings.Builder
	b.WriteString(strings.ToLower(hashName))
	b.WriteByte(' ')
	for i := 0; i < len(sum); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(sum[i : i+2])
	}
	return b.String(), nil
}

// VerifyFingerprint returns a callback for tls.Config.VerifyConnection that
// accepts a peer only if its certificate matches fingerprint, an SDP
// a=fingerprint value such as "sha-256 4A:AD:B9:..." (RFC 4975 §14.4, RFC
// 8122). MSRP peers usually present self-signed certificates that no CA
// vouches for, so set InsecureSkipVerify as well to skip the chain check:
// the fingerprint then does the verifying. A listener that checks its
// clients this way also needs ClientAuth set to RequireAnyClientCert.
func VerifyFingerprint(fingerprint string) (func(tls.ConnectionState) error, error) {
	hashName, digest, ok := strings.Cut(strings.TrimSpace(fingerprint), " ")
	if !ok {
		return nil, fmt.Errorf("msrp: fingerprint %q: want \"<hash> <hex:hex:...>\"", fingerprint)
	}
	want, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(digest), ":", ""))
	if err != nil {
		return nil, fmt.Errorf("msrp: fingerprint %q: %w", fingerprint, err)
	}
	h, err := fingerprintHash(hashName)
	if err != nil {
		return nil, err
	}
	if len(want) != h.Size() {
		return nil, fmt.Errorf("msrp: fingerprint %q: %d bytes, %s has %d", fingerprint, len(want), hashName, h.Size())
	}
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate presented", ErrFingerprintMismatch)
		}
		h, _ := fingerprintHash(hashName)
		h.Write(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
			return ErrFingerprintMismatch
		}
		return nil
	}, nil
}

// SelfSignedCertificate makes a fresh self-signed certificate (ECDSA
// P-256, valid from an hour ago for a year) naming hosts, IP addresses or
// DNS names, for a peer that proves it with SDP a=fingerprint rather than a
// CA (see CertificateFingerprint and VerifyFingerprint).
func SelfSignedCertificate(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 96))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "msrp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func fingerprintHash(name string) (hash.Hash, error) {
	switch strings.ToLower(name) {
	case "sha-1":
		return sha1.New(), nil
	case "sha-256":
		return sha256.New(), nil
	case "sha-384":
		return sha512.New384(), nil
	case "sha-512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("msrp: unsupported fingerprint hash %q (want sha-1, sha-256, sha-384 or sha-512)", name)
}
