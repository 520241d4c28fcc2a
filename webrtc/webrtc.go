// Package webrtc carries MSRP over WebRTC data channels (RFC 8873) with
// github.com/pion/webrtc/v4: a Conn is an msrp.MessageConn over a
// *webrtc.DataChannel whose subprotocol is MSRP, one chunk per data channel
// message, so that the msrp package's transport, session, Send and Receive
// run over it unchanged.
//
// It is a package of its own so that programs that speak MSRP over TCP or
// WebSocket do not link a WebRTC stack.
//
//	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
//		c, err := msrpwebrtc.NewConn(dc, msrpwebrtc.Config{})   // at once: messages are not kept for later
//		...
//		s, err := msrpwebrtc.StartSession(ctx, c, local, remote, active, cfg)
//	})
//
// The SDP side (RFC 8864's a=dcmap and a=dcsa) is in the msrp package:
// msrp.DataChannelMedia.
package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-msrp/msrp"
	pion "github.com/pion/webrtc/v4"
)

// Subprotocol is the data channel subprotocol of MSRP (RFC 8873 §9.1),
// compared without regard to case.
const Subprotocol = "msrp"

// DefaultMaxMessageSize is the largest data channel message a peer takes
// when its SDP has no a=max-message-size (RFC 8841 §6).
const DefaultMaxMessageSize = 64 << 10

// DefaultMaxBuffered is how many bytes WriteMessage lets wait in the
// channel before it waits for them to drain.
const DefaultMaxBuffered = 1 << 20

// ErrNotMSRP is returned by NewConn for a channel whose subprotocol is not
// MSRP's.
var ErrNotMSRP = errors.New("msrp/webrtc: data channel subprotocol is not msrp")

// Config configures a Conn. The zero value uses the defaults.
type Config struct {
	// MaxMessageSize is the largest message the peer takes: its SDP
	// a=max-message-size; 0 means DefaultMaxMessageSize. A larger write is
	// refused; ChunkSize gives the chunk size that fits.
	MaxMessageSize int
	// MaxBuffered bounds the bytes queued in the channel; a write waits
	// while that many wait to be sent, so that a large file does not sit
	// in memory behind a slow peer. 0 means DefaultMaxBuffered.
	MaxBuffered int
	// ReadQueue is how many received messages wait for ReadMessage before
	// the channel stops reading (SCTP then holds the peer back); 0 means 16.
	ReadQueue int
}

// Conn is MSRP over one data channel: an msrp.MessageConn.
type Conn struct {
	dc  *pion.DataChannel
	cfg Config

	in       chan []byte
	opened   chan struct{}
	closed   chan struct{}
	drained  chan struct{} // the buffered amount went low
	openOnce sync.Once
	closeErr sync.Once
}

// NewConn takes a data channel for MSRP. Call it as soon as the channel
// exists (in OnDataChannel, or after CreateDataChannel): it installs the
// channel's handlers, and a message that arrives before then is lost.
func NewConn(dc *pion.DataChannel, cfg Config) (*Conn, error) {
	if !strings.EqualFold(dc.Protocol(), Subprotocol) {
		return nil, fmt.Errorf("%w: %q", ErrNotMSRP, dc.Protocol())
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	// pion advertises 1 GiB but receives what fits its 1 MiB buffer, and a
	// larger message wedges the channel: no message goes past this.
	cfg.MaxMessageSize = min(cfg.MaxMessageSize, maxChunkMessage)
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.ReadQueue <= 0 {
		cfg.ReadQueue = 16
	}
	c := &Conn{
		dc: dc, cfg: cfg,
		in:      make(chan []byte, cfg.ReadQueue),
		opened:  make(chan struct{}),
		closed:  make(chan struct{}),
		drained: make(chan struct{}, 1),
	}
	dc.OnOpen(c.open)
	dc.OnClose(c.close)
	dc.OnMessage(func(m pion.DataChannelMessage) {
		// Blocking here blocks the channel's reading, which is the
		// back-pressure a slow reader needs. pion tells of a closed peer
		// connection only from this very goroutine, once a read fails: so
		// while it waits here, it looks at the channel's state itself.
		select {
		case c.in <- m.Data:
			return
		case <-c.closed:
			return
		default:
		}
		tick := time.NewTicker(closedPoll)
		defer tick.Stop()
		for {
			select {
			case c.in <- m.Data:
				return
			case <-c.closed:
				return
			case <-tick.C:
				if c.dc.ReadyState() >= pion.DataChannelStateClosing {
					c.close()
					return
				}
			}
		}
	})
	dc.SetBufferedAmountLowThreshold(uint64(cfg.MaxBuffered / 2))
	dc.OnBufferedAmountLow(func() {
		select {
		case c.drained <- struct{}{}:
		default:
		}
	})
	switch dc.ReadyState() {
	case pion.DataChannelStateOpen:
		c.open()
	case pion.DataChannelStateClosing, pion.DataChannelStateClosed:
		c.close()
	}
	return c, nil
}

func (c *Conn) open()  { c.openOnce.Do(func() { close(c.opened) }) }
func (c *Conn) close() { c.closeErr.Do(func() { close(c.closed) }) }

// ReadMessage returns the next message, or io.EOF once the channel has
// closed and every message received before has been read.
func (c *Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	default:
	}
	select {
	case m := <-c.in:
		return m, nil
	case <-c.closed:
		select {
		case m := <-c.in:
			return m, nil
		default:
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// WriteMessage sends msg as one binary message, once the channel is open
// and fewer than MaxBuffered bytes wait in it.
func (c *Conn) WriteMessage(ctx context.Context, msg []byte) error {
	if len(msg) > c.cfg.MaxMessageSize {
		return fmt.Errorf("msrp/webrtc: a %d-byte message is over the peer's max-message-size %d", len(msg), c.cfg.MaxMessageSize)
	}
	select {
	case <-c.closed: // first: once open and closed, select would pick either
		return net.ErrClosed
	default:
	}
	select {
	case <-c.opened:
	case <-c.closed:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// OnBufferedAmountLow fires as the amount falls to the low threshold:
	// wait for it only while above it.
	low := uint64(c.cfg.MaxBuffered / 2)
	for b := c.dc.BufferedAmount(); b > low && int(b)+len(msg) > c.cfg.MaxBuffered; b = c.dc.BufferedAmount() {
		select {
		case <-c.drained:
		case <-c.closed:
			return net.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := c.dc.Send(msg); err != nil {
		return fmt.Errorf("msrp/webrtc: send: %w", err)
	}
	return nil
}

// Close closes the data channel.
func (c *Conn) Close() error {
	err := c.dc.Close()
	c.close()
	return err
}

// LocalAddr and RemoteAddr name the channel: "datachannel:<label>#<id>".
func (c *Conn) LocalAddr() net.Addr  { return c.addr() }
func (c *Conn) RemoteAddr() net.Addr { return c.addr() }

func (c *Conn) addr() net.Addr {
	id := "?"
	if p := c.dc.ID(); p != nil {
		id = strconv.Itoa(int(*p))
	}
	return addr(c.dc.Label() + "#" + id)
}

type addr string

func (a addr) Network() string { return "datachannel" }
func (a addr) String() string  { return string(a) }

// maxChunkMessage caps the messages ChunkSize fills, whatever the peer's
// a=max-message-size says.
const maxChunkMessage = 256 << 10

// chunkOverhead is room left in a message for a chunk's start line,
// headers (MessageOptions.Headers included) and end-line; at most half the
// message.
const chunkOverhead = 8 << 10

// closedPoll is how often a message waiting for ReadMessage checks whether
// the channel has closed under it.
const closedPoll = 100 * time.Millisecond

// ChunkSize is the body size of message chunks that fit in data channel
// messages of maxMessageSize (0: DefaultMaxMessageSize), for
// msrp.MessageConfig.ChunkSize: 8 KiB (or half the message) is left for
// the chunk's headers, MessageOptions.Headers included.
func ChunkSize(maxMessageSize int) int {
	if maxMessageSize <= 0 {
		maxMessageSize = DefaultMaxMessageSize
	}
	// pion advertises 1 GiB and takes 1 MiB in its receive buffer; the
	// parser takes 4 MiB chunks: a few hundred KiB per message is plenty.
	maxMessageSize = min(maxMessageSize, maxChunkMessage)
	return maxMessageSize - min(chunkOverhead, maxMessageSize/2)
}

// StartSession binds an MSRP session over the channel and starts it. local
// is our URI, remotePath the peer's a=path (from its a=dcsa); the active
// end sends the first SEND and the passive end waits for it (RFC 4975
// §5.4). The chunk size is set to fit the channel's messages unless cfg
// sets a smaller one.
func StartSession(ctx context.Context, c *Conn, local msrp.URI, remotePath []msrp.URI, active bool, cfg msrp.SessionConfig) (*msrp.MSRPSession, error) {
	t := msrp.NewMessageTransport(c, local)
	if limit := ChunkSize(c.cfg.MaxMessageSize); cfg.ChunkSize <= 0 || cfg.ChunkSize > limit {
		cfg.ChunkSize = limit
	}
	var err error
	if active {
		err = t.Bind(ctx, remotePath)
	} else {
		err = t.AcceptBinding(ctx, remotePath)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return msrp.NewMSRPSession(t, cfg), nil
}
