package msrp

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// MessageConn is a connection that carries messages rather than a byte
// stream: a WebSocket (RFC 7977, see the ws subpackage) or a WebRTC data
// channel (RFC 8873). Each MSRP chunk travels as exactly one message, in
// both directions: a transport over a MessageConn never puts two chunks in
// one message, or one chunk in two.
//
// The transport calls ReadMessage from one goroutine at a time, and
// WriteMessage from one goroutine at a time; it may call Close at any time.
type MessageConn interface {
	// ReadMessage returns the next whole message, which stays valid until
	// the next call. It returns io.EOF once the peer has closed the
	// connection cleanly. When ctx ends first it
	// returns ctx's error, and may close the connection (coder/websocket
	// does): a message-framed transport treats a read deadline as fatal.
	ReadMessage(ctx context.Context) ([]byte, error)
	// WriteMessage writes msg as one message. msg is not kept after it
	// returns.
	WriteMessage(ctx context.Context, msg []byte) error
	// Close closes the connection gracefully (a WebSocket close frame).
	Close() error
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// ErrMessageFraming is the Err of a *ChunkParseError for a message that
// does not hold exactly one chunk (RFC 7977 §5.1): the part of a chunk a
// message ended in, or a second chunk after the first. A request so framed
// is answered with 400 and not delivered; the connection stays usable.
var ErrMessageFraming = errors.New("msrp: a message must hold exactly one chunk")

// messageSlack is how far a message may exceed MaxChunkSize before the
// MessageConn refuses it outright (SetReadLimit): up to there, the parser
// sees the chunk and answers 413 as over a stream.
const messageSlack = 4 << 10

// NewMessageTransport wraps a message-framed connection. localURI is the
// last URI of our a=path; over WebSocket its transport is "ws" (see
// WebSocketClientURI). The transport writes each chunk as one message, and
// a session on it never batches chunks into one write.
//
// If mc has a SetReadLimit(int64) method (coder/websocket's Conn has), it
// is set from the transport's limits: MaxChunkSize and a little more.
func NewMessageTransport(mc MessageConn, localURI URI) *MSRPTransport {
	nc := &messageNetConn{mc: mc}
	t := NewMSRPTransport(nc, localURI)
	nc.log = t.logMessage
	t.framed = true
	t.applyMessageLimit()
	return t
}

// logMessage puts a message of a message-framed link in the traffic log,
// as it went on the wire, when the Logger logs traffic: each is one chunk.
func (t *MSRPTransport) logMessage(dir string, msg []byte) {
	l := t.Logger
	if !l.enabled() || !l.LogTraffic {
		return
	}
	what := "received message"
	if dir == "-->" {
		what = "sent message"
	}
	attrs := append(addrAttrs(dir, t), slog.Int("bytes", len(msg)), slog.String("raw", string(msg)))
	l.Slog.LogAttrs(context.Background(), l.Level, l.Prefix+what, attrs...)
}

// applyMessageLimit tells the MessageConn the largest message worth
// reading. Called when the limits change, before reads start.
func (t *MSRPTransport) applyMessageLimit() {
	mc, ok := t.conn.(*messageNetConn)
	if !ok {
		return
	}
	if l, ok := mc.mc.(interface{ SetReadLimit(int64) }); ok {
		l.SetReadLimit(int64(t.parser.maxChunk()) + messageSlack)
	}
}

// readMessage is fill for a message-framed connection: the next message
// becomes pending, and the count of chunks begun in it starts again.
func (t *MSRPTransport) readMessage() error {
	msg, err := t.conn.(*messageNetConn).readMessage()
	if err == nil {
		// Nothing of the last message carries over: a chunk it ended in
		// was cut short, and so is a line too long to keep.
		t.parser.Reset()
		t.pending = msg
		t.msgChunks = 0
		return nil
	}
	return t.readFailed(err)
}

// checkFraming enforces one chunk per message on what one Feed returned:
// begun is how many chunks that Feed began (a Feed may skip the rest of a
// chunk over the size cap and begin the next). A second chunk in a message
// comes back as an ErrMessageFraming error holding it; a message that ends
// inside a chunk cuts it short, and that error comes back once what Feed
// returned has been.
func (t *MSRPTransport) checkFraming(begun int, c *Chunk, err error) (*Chunk, error) {
	t.msgChunks += begun
	// Which chunk of the message comes back: the last begun, but for a
	// chunk cut short by a new start line, which comes back as the next
	// one begins.
	which := t.msgChunks
	if errors.Is(err, ErrTruncatedChunk) {
		which--
	}
	if which > 1 {
		var pe *ChunkParseError
		switch {
		case c != nil:
			c, err = nil, &ChunkParseError{Err: ErrMessageFraming, Chunk: c}
		case errors.As(err, &pe) && pe.Chunk != nil:
			err = &ChunkParseError{Err: ErrMessageFraming, Chunk: pe.Chunk}
		}
	}
	if len(t.pending) == 0 && t.parser.InChunk() {
		cut := t.parser.cutShort(ErrMessageFraming)
		if c == nil && err == nil {
			return nil, cut
		}
		t.framingCut = cut
	}
	return c, err
}

// messageNetConn presents a MessageConn as a net.Conn to the rest of the
// transport: each Write is one message, and deadlines end the read or
// write in progress through its context.
type messageNetConn struct {
	mc   MessageConn
	log  func(dir string, msg []byte) // the transport's traffic log
	mu   sync.Mutex
	ops  [2]messageOp // read, write
	rest []byte       // what Read has not returned of the last message
}

const (
	opRead = iota
	opWrite
)

// messageOp is the deadline of reads or of writes, and the cancel of the
// one in progress.
type messageOp struct {
	deadline time.Time
	cancel   context.CancelCauseFunc
	timer    *time.Timer
}

// arm makes the deadline end the operation in progress. Called with mu held.
func (o *messageOp) arm() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if o.cancel == nil || o.deadline.IsZero() {
		return
	}
	cancel := o.cancel
	if d := time.Until(o.deadline); d > 0 {
		o.timer = time.AfterFunc(d, func() { cancel(os.ErrDeadlineExceeded) })
	} else {
		cancel(os.ErrDeadlineExceeded)
	}
}

func (c *messageNetConn) do(op int, f func(ctx context.Context) error) error {
	c.mu.Lock()
	o := &c.ops[op]
	if !o.deadline.IsZero() && !time.Now().Before(o.deadline) {
		c.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	o.cancel = cancel
	o.arm()
	c.mu.Unlock()
	err := f(ctx)
	c.mu.Lock()
	o.cancel = nil
	o.arm() // stops the timer
	c.mu.Unlock()
	cancel(nil)
	if err != nil && errors.Is(context.Cause(ctx), os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return err
}

func (c *messageNetConn) readMessage() (msg []byte, err error) {
	err = c.do(opRead, func(ctx context.Context) error {
		msg, err = c.mc.ReadMessage(ctx)
		return err
	})
	if err == nil && c.log != nil {
		c.log("<--", msg)
	}
	return msg, err
}

// Read returns the bytes of messages as a stream; the transport reads
// whole messages with readMessage instead.
func (c *messageNetConn) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		msg, err := c.readMessage()
		if err != nil {
			return 0, err
		}
		c.rest = msg
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// Write writes p as one message.
func (c *messageNetConn) Write(p []byte) (int, error) {
	err := c.do(opWrite, func(ctx context.Context) error { return c.mc.WriteMessage(ctx, p) })
	if err != nil {
		return 0, err
	}
	if c.log != nil {
		c.log("-->", p)
	}
	return len(p), nil
}

func (c *messageNetConn) Close() error { return c.mc.Close() }

// abortRead ends the read in progress, if any, as a deadline would.
func (c *messageNetConn) abortRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel := c.ops[opRead].cancel; cancel != nil {
		cancel(os.ErrDeadlineExceeded)
	}
}

// closeNow closes without the closing handshake, when the MessageConn can.
func (c *messageNetConn) closeNow() error {
	if cn, ok := c.mc.(interface{ CloseNow() error }); ok {
		return cn.CloseNow()
	}
	return c.mc.Close()
}

func (c *messageNetConn) LocalAddr() net.Addr  { return c.mc.LocalAddr() }
func (c *messageNetConn) RemoteAddr() net.Addr { return c.mc.RemoteAddr() }

func (c *messageNetConn) SetDeadline(t time.Time) error {
	c.setDeadline(opRead, t)
	c.setDeadline(opWrite, t)
	return nil
}

func (c *messageNetConn) SetReadDeadline(t time.Time) error {
	c.setDeadline(opRead, t)
	return nil
}

func (c *messageNetConn) SetWriteDeadline(t time.Time) error {
	c.setDeadline(opWrite, t)
	return nil
}

func (c *messageNetConn) setDeadline(op int, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op].deadline = t
	c.ops[op].arm()
}

// IsWebSocket reports whether u's transport is "ws": a WebSocket (RFC 7977
// §5.2.1), which a client reaches with ConnectConfig.DialMessage.
func (u URI) IsWebSocket() bool { return strings.EqualFold(u.Transport, "ws") }

// webSocketLocalURI is our URI as a WebSocket client: u with transport
// "ws", and the blanks filled in as WebSocketClientURI does.
func webSocketLocalURI(u URI) URI {
	c := WebSocketClientURI(u.UseTLS)
	if u.Host == "" {
		u.Host = c.Host
	}
	if u.Port == 0 {
		u.Port = c.Port
	}
	if u.SessionID == "" {
		u.SessionID = c.SessionID
	}
	u.Transport = "ws"
	return u
}

// WebSocketClientURI returns a URI for a WebSocket client, which cannot be
// reached and so names itself as RFC 7977 Appendix A suggests: a random
// host in ".invalid", port 2855, a random session id and transport "ws".
// useTLS gives msrps (over wss), which RFC 7977 §5.1 requires in service.
func WebSocketClientURI(useTLS bool) URI {
	return URI{UseTLS: useTLS, Host: strings.ToLower(rand.Text()[:12]) + ".invalid", Port: DefaultPort, SessionID: NewSessionID(), Transport: "ws"}
}
