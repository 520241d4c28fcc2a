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
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
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
	buf           []byte // the last message read; reused by the next read
}

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
	msg, err := c.read(ctx)
	if err != nil {
		switch websocket.CloseStatus(err) {
		// 1005 is what a close frame without a code reads as: JavaScript's
		// close() with no arguments sends one.
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			return nil, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF // the connection ended without a close frame
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return msg, nil
}

// read reads one message into c.buf, grown as it needs.
func (c *Conn) read(ctx context.Context) ([]byte, error) {
	_, r, err := c.c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if cap(c.buf) > keptReadBuffer {
		c.buf = nil
	}
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
	err := c.c.Close(websocket.StatusNormalClosure, "")
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// CloseNow closes the connection without the closing handshake.
func (c *Conn) CloseNow() error {
	err := c.c.CloseNow()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
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
	client := d.HTTPClient
	if client == nil {
		client = http.DefaultClient
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
	return NewConn(c, nil, remote), nil
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
// gets 403, before any MSRP is read. The HTTP server's ReadHeaderTimeout
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
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		OriginPatterns:     h.OriginPatterns,
		InsecureSkipVerify: h.InsecureSkipOriginCheck,
	})
	if err != nil {
		return // Accept has answered (403 for an Origin, 426 or 400 otherwise)
	}
	if c.Subprotocol() != Subprotocol {
		c.Close(websocket.StatusPolicyViolation, "msrp subprotocol required")
		return
	}
	var local net.Addr
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a
	}
	// The request's context ends when this handler returns; the session
	// outlives it.
	h.Server.ServeMessageConn(context.WithoutCancel(r.Context()), NewConn(c, local, addr(r.RemoteAddr)))
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
