package msrp

import (
	"context"
	"errors"
	"io"
	"sync"
)

// This file is the short path: a session from a connector in one call, a
// message sent with one call that waits for it, and messages received one
// call at a time, as from a net.Conn.

// ErrReceiveOff is returned by Receive on a session whose messages go
// elsewhere: to OnMessage, or, with only OnIncoming set, nowhere, as
// chunks are not put together.
var ErrReceiveOff = errors.New("msrp: Receive is off: OnMessage or OnIncoming is set")

// StartSession completes a prepared connector and starts a session on its
// transport: Complete and NewMSRPSession in one call, so that the session
// owns the transport from the first moment, and a chunk the peer sent with
// its binding is held for the session. remotePath is the peer's a=path
// (ParsePath reads it). When Complete fails, the connector is cleaned up
// and the error returned.
//
//	local, err := conn.Prepare(ctx, localURI) // conn from GetConnector or an MSRPServer
//	// ... local goes to the peer in SDP, its a=path comes back ...
//	s, err := msrp.StartSession(ctx, conn, remotePath, msrp.SessionConfig{})
func StartSession(ctx context.Context, conn Connector, remotePath []URI, cfg SessionConfig) (*MSRPSession, error) {
	t, err := conn.Complete(ctx, remotePath)
	if err != nil {
		_ = conn.Cleanup()
		return nil, err
	}
	return NewMSRPSession(t, cfg), nil
}

// Send sends a message and waits until every chunk of it is answered. body
// is sent as one message of len(body) bytes, in chunks as SendMessage sends
// them, so a large body is interleaved with other messages. It returns nil
// once the peer has accepted all of it; the peer's refusal as a
// *TransactionError (408, matching ErrTimeout, when no answer came); an
// error wrapping ErrSessionClosed when the session ended first; or ctx's
// error when ctx ends first, in which case the rest of the message is not
// sent (it ends with "#"). When MaxOutgoingMessages messages are being sent
// already, Send waits for one of them to end. body is not read after Send
// returns, and may be reused then.
func (s *MSRPSession) Send(ctx context.Context, contentType string, body []byte, opts MessageOptions) error {
	r := &sendBody{b: body}
	defer r.close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, room, err := s.startMessage(r, int64(len(body)), contentType, opts)
		if errors.Is(err, ErrTooManyMessages) {
			select {
			case <-room:
				continue
			case <-s.closing:
				continue // the next try says why
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		err = m.Wait(ctx)
		if err != nil && ctx.Err() != nil {
			select {
			case <-m.Done(): // the outcome came as ctx ended: it is the answer
				return m.err
			default:
				m.Abort()
			}
		}
		return err
	}
}

// sendBody reads a Send's body until Send returns: the message's reader
// goroutine may outlive Send, but not its hold on the caller's bytes.
type sendBody struct {
	mu     sync.Mutex
	b      []byte
	closed bool
}

func (r *sendBody) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errors.New("msrp: Send returned")
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *sendBody) close() {
	r.mu.Lock()
	r.closed, r.b = true, nil
	r.mu.Unlock()
}

// Receive returns the next incoming message once it has ended, in the order
// messages ended, like a Read on a net.Conn. A complete message comes with
// a nil error; a message aborted by its sender, refused or cut short comes
// with its error too (m.Err), so that nothing received goes unseen. Once the
// session has ended and every message has been taken, Receive returns an
// error wrapping ErrSessionClosed (Err says why the session ended, if
// anything was lost); if ctx ends first, ctx's error.
//
// Receive is on when neither OnMessage nor OnIncoming is set; otherwise it
// returns ErrReceiveOff. Up to ReceiveBuffer ended messages wait for it;
// then the session stops reading until one is taken, and TCP holds the peer
// back, so memory stays bounded when nobody calls Receive. That is not free
// for either side: the peer's requests wait for their answers meanwhile,
// and time out at the peer (after 30 s, with msrplib's timer), and the
// answers to ours may wait unread behind the messages not taken, so their
// timeouts stand still, up to twice ResponseTimeout in all. Keep up with
// Receive, on a goroutine of its own when the same code also sends.
// Receive may be called from any goroutine, but not from a callback that
// the next message waits behind.
func (s *MSRPSession) Receive(ctx context.Context) (*IncomingMessage, error) {
	if !s.receiving() {
		return nil, ErrReceiveOff
	}
	for {
		s.mu.Lock()
		if m, ok := s.received.pop(); ok {
			s.mu.Unlock()
			signal(s.roomWake)
			return m, m.Err
		}
		arrived := s.received.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
			continue
		case <-s.done: // every message is in the queue by now
			s.mu.Lock()
			m, ok := s.received.pop()
			err := s.err
			s.mu.Unlock()
			if ok {
				return m, m.Err
			}
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// receiveQueue holds ended messages for Receive. Guarded by the session's
// mutex.
type receiveQueue struct {
	msgs    []receivedMessage
	owed    int           // messages queued or on their way to the queue
	bytes   int           // the bytes those hold
	arrived chan struct{} // closed and replaced when a message is queued
}

type receivedMessage struct {
	m     *IncomingMessage
	bytes int
}

func (q *receiveQueue) push(m *IncomingMessage, bytes int) {
	q.msgs = append(q.msgs, receivedMessage{m, bytes})
	close(q.arrived)
	q.arrived = make(chan struct{})
}

func (q *receiveQueue) pop() (*IncomingMessage, bool) {
	if len(q.msgs) == 0 {
		return nil, false
	}
	r := q.msgs[0]
	q.msgs[0] = receivedMessage{}
	q.msgs = q.msgs[1:]
	q.owed--
	q.bytes -= r.bytes
	return r.m, true
}

// receiving tells whether ended messages go to Receive: they are put
// together, and OnMessage does not take them. It never changes.
func (s *MSRPSession) receiving() bool { return s.incoming.on && s.cfg.OnMessage == nil }

// receiveFullLocked tells whether the reader should wait for Receive before
// it reads on.
func (s *MSRPSession) receiveFullLocked() bool {
	if !s.receiving() {
		return false
	}
	if s.state == StateFlushing {
		return s.received.owed >= maxFlushBacklogChunks || s.received.bytes >= maxFlushBacklogBytes
	}
	return s.received.owed >= s.cfg.receiveBuffer()
}

// Report is a REPORT received about a message we sent (RFC 4975 §7.1.2):
// a success REPORT for bytes the peer received, when the message asked for
// them with SuccessReport, or a failure REPORT from the peer or a relay.
type Report struct {
	MessageID string    // the message it is about
	ByteRange ByteRange // the bytes it is about; zero when the REPORT has none
	Status    Status    // 200 for success, else the failure's code
	Chunk     *Chunk    // the REPORT as received
}
