// Package ws carries MSRP over WebSocket (RFC 7977), with
// github.com/coder/websocket: a Handler that lets browsers and other
// WebSocket clients reach sessions of an msrp.MSRPServer, and a Dialer that
// lets msrp's connectors reach WebSocket relays and servers.
//
// It is a package of its own so that programs that speak MSRP over TCP
// alone do not link a WebSocket implementation.
//
// Each MSRP chunk travels as one WebSocket message (RFC 7977 §5.1). Both
// text and binary messages are read (§4.2); a chunk is sent as a text
// message when it is valid UTF-8 and as a binary one otherwise, as
// Kamailio's websocket module does, so that JavaScript peers get text
// messages as strings.
//
// A browser talks to a Go chat backend like this:
//
//	srv := &msrp.MSRPServer{}
//	mux.Handle("/msrp", &ws.Handler{Server: srv})
//	a := srv.Acceptor(msrp.ServerAcceptorConfig{})
//	path, _ := a.Prepare(ctx, msrp.URI{Host: "chat.example.com", Port: 443, UseTLS: true, Transport: "ws"})
//	// ... the browser learns path and gives its own (WebSocketClientURI) ...
//	t, _ := a.Complete(ctx, browserPath)
//
// and a Go client joins a session through a WebSocket relay by setting
// ConnectConfig.DialMessage to a Dialer's DialMessage and
// MSRPRelaySettings.WebSocket.
package ws

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/go-msrp/msrp"
)

// Subprotocol is the WebSocket subprotocol of MSRP (RFC 7977 §4.1).
const Subprotocol = "msrp"

// Conn is an MSRP WebSocket connection: an msrp.MessageConn.
type Conn struct {
	c             *websocket.Conn
	local, remote net.Addr
	buf           []byte    // the last message read; reused by the next read
	raw           io.Closer // the network connection under c, when known
}

// closeWait bounds how long Close waits for the peer to answer its close
// frame before it closes the connection under the WebSocket.
const closeWait = time.Second

// keptReadBuffer bounds the read buffer kept from one message to the next:
// a connection that once took a large message does not hold its memory.
const keptReadBuffer = 256 << 10

// NewConn wraps a WebSocket connection whose subprotocol is msrp. local and
// remote are the addresses it reports (nil for unknown).
func NewConn(c *websocket.Conn, local, remote net.Addr) *Conn {
	if local == nil {
		local = addr("")
	}
	if remote == nil {
		remote = addr("")
	}
	return &Conn{c: c, local: local, remote: remote}
}

// ReadMessage returns the next text or binary message; io.EOF once the
// peer has closed the connection cleanly (status 1000, 1001, or none). The message is
// valid until the next call, which reuses its memory.
func (c *Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	// The last message is the caller's no more: a large one's memory is
	// not kept while the connection waits.
	if cap(c.buf) > keptReadBuffer {
		c.buf = nil
	}
	_, r, err := c.c.Reader(ctx)
	if err != nil {
		switch websocket.CloseStatus(err) {
		// 1005 is what a close frame without a code reads as: JavaScript's
		// close() with no arguments sends one.
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return nil, io.EOF
		}
		if errors.Is(err, io.EOF) {
			// Closed between messages without a close frame, as a TCP
			// peer closes between chunks: a clean end.
			return nil, io.EOF
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	msg, err := c.read(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF // cut in the middle of a message
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return msg, nil
}

// read reads the rest of a message into c.buf, grown as it needs.
func (c *Conn) read(r io.Reader) ([]byte, error) {
	buf := c.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(4<<10, cap(buf)))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			c.buf = buf
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// WriteMessage writes msg as one message: text when it is valid UTF-8,
// binary otherwise.
func (c *Conn) WriteMessage(ctx context.Context, msg []byte) error {
	typ := websocket.MessageBinary
	if utf8.Valid(msg) {
		typ = websocket.MessageText
	}
	return c.c.Write(ctx, typ, msg)
}

// SetReadLimit bounds the size of a message; a larger one closes the
// connection (status 1009). The msrp transport sets it from its limits.
func (c *Conn) SetReadLimit(n int64) { c.c.SetReadLimit(n) }

// Close closes the connection with a normal closure, waiting (up to 5 s,
// coder/websocket's bound) for the peer's close frame.
func (c *Conn) Close() error {
	done := make(chan error, 1)
	go func() { done <- c.c.Close(websocket.StatusNormalClosure, "") }()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		// The peer does not answer: coder/websocket would wait 5 s more.
		c.closeRaw()
		err = <-done
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// CloseNow closes the connection without the closing handshake; it also
// ends a Close that waits for the peer's close frame.
func (c *Conn) CloseNow() error {
	c.closeRaw()
	err := c.c.CloseNow()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (c *Conn) closeRaw() {
	if c.raw != nil {
		c.raw.Close()
	}
}

// LocalAddr returns the local network address, as far as it is known.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the remote network address, as far as it is known.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// addr is a network address known by its text.
type addr string

func (a addr) Network() string { return "websocket" }
func (a addr) String() string  { return string(a) }

// ---- Client --------------------------------------------------------------------

// Dialer opens MSRP WebSocket connections. The zero value dials
// ws://host:port/ for msrp URIs and wss://host:port/ for msrps URIs with
// http.DefaultClient.
type Dialer struct {
	// URL, when set, is dialled for every URI, whatever its host: the
	// relay's WebSocket URL, say, when it differs from host:port/.
	URL string
	// Path is the path of the URL made from a URI; "" means "/".
	Path string
	// HTTPClient makes the handshake; nil means http.DefaultClient. Set
	// its Transport's TLSClientConfig to trust a relay's certificate.
	HTTPClient *http.Client
	// Header is added to the handshake request: a Cookie or Authorization
	// that a relay checks (RFC 7977 §7), or an Origin.
	Header http.Header
}

// DialMessage connects to the WebSocket that to names and negotiates the
// msrp subprotocol; it is a ConnectConfig.DialMessage.
func (d *Dialer) DialMessage(ctx context.Context, to msrp.URI) (msrp.MessageConn, error) {
	url := d.URL
	if url == "" {
		url = URL(to, d.Path)
	}
	var remote net.Addr
	client, raw := d.client()
	if raw.transport != nil {
		// The transport is this dial's own: a refusal (403, 503) leaves its
		// connection idle in it, where nothing else would close it.
		defer raw.transport.CloseIdleConnections()
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:   client,
		HTTPHeader:   d.Header,
		Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("msrp/ws: dial %s: %s: %w", url, resp.Status, err)
		}
		return nil, fmt.Errorf("msrp/ws: dial %s: %w", url, err)
	}
	if c.Subprotocol() != Subprotocol {
		c.Close(websocket.StatusPolicyViolation, "msrp subprotocol required")
		return nil, fmt.Errorf("msrp/ws: %s did not accept the msrp subprotocol", url)
	}
	remote = addr(strings.TrimPrefix(strings.TrimPrefix(url, "ws://"), "wss://"))
	conn := NewConn(c, nil, remote)
	if raw.conn != nil {
		conn.raw, conn.local, conn.remote = raw.conn, raw.conn.LocalAddr(), raw.conn.RemoteAddr()
	}
	return conn, nil
}

// rawConn records the network connection an HTTP client dials, and the
// transport it dials with when that is the dial's own.
type rawConn struct {
	conn      net.Conn
	transport *http.Transport
}

// client returns the HTTP client to dial with: HTTPClient (or the default)
// with, when its Transport is an *http.Transport, a transport of its own
// that records the connection it dials, which Close can then end.
func (d *Dialer) client() (*http.Client, *rawConn) {
	rec := &rawConn{}
	base := d.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		return base, rec
	}
	tr = tr.Clone()
	rec.transport = tr
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			rec.conn = c
		}
		return c, err
	}
	if dialTLS := tr.DialTLSContext; dialTLS != nil {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialTLS(ctx, network, addr)
			if err == nil {
				rec.conn = c
			}
			return c, err
		}
	}
	client := *base
	client.Transport = tr
	return &client, rec
}

// URL returns the WebSocket URL of an MSRP URI: ws://host:port/path, or
// wss:// for msrps. A missing port is 80 or 443.
func URL(u msrp.URI, path string) string {
	scheme, port := "ws", 80
	if u.UseTLS {
		scheme, port = "wss", 443
	}
	if u.Port != 0 {
		port = u.Port
	}
	if path == "" {
		path = "/"
	} else if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + net.JoinHostPort(u.Host, strconv.Itoa(port)) + path
}

// ---- Server --------------------------------------------------------------------

// Handler accepts MSRP WebSocket connections and hands each to Server,
// which binds it to the session its first chunk names, as it binds TCP
// connections: prepare those sessions with a URI whose transport is "ws"
// and whose host and port are this HTTP server's. It mounts on any
// http.ServeMux.
//
// A request that does not offer the msrp subprotocol gets 400, and one
// from an Origin that is neither the request's host nor in OriginPatterns
// gets 403, before any MSRP is read; while the server's
// MaxPendingConnections connections are binding, or once it is closed, a
// request gets 503 before the upgrade. The HTTP server's ReadHeaderTimeout
// bounds the handshake; set it (the server's BindTimeout is a good value).
type Handler struct {
	// Server binds the connections; required.
	Server *msrp.MSRPServer
	// OriginPatterns lists the Origin hosts accepted besides the
	// request's own (path.Match patterns, as coder/websocket reads them).
	OriginPatterns []string
	// InsecureSkipOriginCheck accepts every Origin: only for tools and
	// tests, never for a server that browsers with cookies reach.
	InsecureSkipOriginCheck bool
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !offers(r.Header, Subprotocol) {
		http.Error(w, "WebSocket subprotocol msrp required", http.StatusBadRequest)
		return
	}
	accepted := false
	accept := func() (msrp.MessageConn, error) {
		accepted = true
		hw := &hijackRecorder{ResponseWriter: w}
		c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
			Subprotocols:       []string{Subprotocol},
			OriginPatterns:     h.OriginPatterns,
			InsecureSkipVerify: h.InsecureSkipOriginCheck,
		})
		if err != nil {
			return nil, err // Accept has answered (403 for an Origin, 426 or 400 otherwise)
		}
		if c.Subprotocol() != Subprotocol {
			c.Close(websocket.StatusPolicyViolation, "msrp subprotocol required")
			return nil, errors.New("msrp/ws: msrp subprotocol not negotiated")
		}
		var local net.Addr
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a
		}
		conn := NewConn(c, local, addr(r.RemoteAddr))
		conn.raw = hw.conn
		return conn, nil
	}
	// The request's context ends when this handler returns; the session
	// outlives it.
	err := h.Server.ServeMessageConn(context.WithoutCancel(r.Context()), accept)
	if !accepted && err != nil { // busy or closed: turned away before the upgrade
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
}

// hijackRecorder keeps the network connection that coder/websocket
// hijacks, so that a Close can end it when the peer does not answer.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, rw, err
}

// offers reports whether the handshake request lists protocol in
// Sec-WebSocket-Protocol.
func offers(h http.Header, protocol string) bool {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), protocol) {
				return true
			}
		}
	}
	return false
}
