package msrp

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Message defaults.
const (
	// DefaultChunkSize is the body size of the chunks SendMessage sends
	// when a relay is on the path. 8 KiB keeps each chunk, headers
	// included, under the ~10 KB that Kamailio's MSRP relay forwards
	// (larger chunks are refused with a bogus 501). Chunks over 2048 bytes
	// are sent interruptible (Byte-Range end "*"), as RFC 4975 §7.1 requires.
	DefaultChunkSize = 8 << 10
	// DefaultDirectChunkSize is the chunk size on a direct connection,
	// where no relay limits it: larger chunks mean fewer transactions, and
	// bulk transfers about three times as fast as with 8 KiB.
	DefaultDirectChunkSize = 64 << 10
	// DefaultWindow is how many chunks of one message may await their
	// response before the session stops reading more of it.
	DefaultWindow = 32
	// DefaultMaxMessageSize caps an incoming message kept in memory.
	DefaultMaxMessageSize = 4 << 20
	// DefaultMaxIncomingMessages caps incoming messages in progress at once.
	DefaultMaxIncomingMessages = 16
	// DefaultReceiveBuffer is how many ended messages may wait for Receive
	// before the session stops reading.
	DefaultReceiveBuffer = 16
	// DefaultMaxOutgoingMessages caps the messages being sent at once.
	DefaultMaxOutgoingMessages = 16
)

// ErrMessageAborted reports a message that its sender abandoned (a chunk
// with the "#" flag) or that Abort stopped.
var ErrMessageAborted = errors.New("msrp: message aborted")

// ErrTooManyMessages is returned by SendMessage when MaxOutgoingMessages
// messages are being sent already. Send waits for room instead.
var ErrTooManyMessages = errors.New("msrp: too many messages being sent")

// ErrMessageTooLarge is returned by SendMessage for a message larger than
// MessageConfig.PeerMaxSize, the peer's SDP a=max-size, and ends a message
// of unknown size that grows past it.
var ErrMessageTooLarge = errors.New("msrp: message larger than the peer's max-size")

// MessageConfig configures whole messages in an MSRPSession. Its callbacks
// run on the session's callback goroutine (see SessionConfig).
type MessageConfig struct {
	// ChunkSize is the body size of the chunks SendMessage sends; 0 means
	// DefaultChunkSize when a relay is on the path (ours, from Use-Path, or
	// the peer's, before its URI in its a=path) and DefaultDirectChunkSize
	// on a direct connection.
	ChunkSize int
	// Window is how many chunks of one message SendMessage lets await a
	// response; 0 means DefaultWindow on a direct connection and 1 when a
	// relay is on the path: Kamailio 5.6's relay answers chunks that reach
	// it back to back with 200 and then loses those that do not fit its
	// 16 KiB read buffer (seen in the interop tests), so through a relay the
	// session sends a message's next chunk once the last is answered.
	Window int

	// OnMessage is called once per incoming message when it ends:
	// complete (Err nil), aborted by its sender (ErrMessageAborted),
	// refused (a *TransactionError, 413 when too large or when its
	// MessageWriter failed), or cut short by the end of the session.
	// Chunks are put together by Message-ID, in whatever order they arrive.
	//
	// Where messages go: to OnMessage when it is set; else, when OnIncoming
	// is not set either, to Receive; with only OnIncoming set, they are not
	// put together at all (msrplib's way: the application gets chunks).
	OnMessage func(s *MSRPSession, m *IncomingMessage)
	// MessageWriter, when set, is asked at the first chunk of each message
	// where its body goes. A non-nil io.Writer receives the body in order
	// as it arrives, so that a message of any size never sits in memory;
	// nil keeps the body in IncomingMessage.Data, up to MaxMessageSize. The
	// writer is written to on the callback goroutine; a write error refuses
	// the rest of the message with 413 and a failure REPORT.
	MessageWriter func(s *MSRPSession, m *IncomingMessage) io.Writer
	// MaxMessageSize caps a message kept in memory; 0 means
	// DefaultMaxMessageSize. A message that would exceed it is refused with
	// 413, which tells its sender to stop (RFC 4975 §10.5).
	MaxMessageSize int64
	// MaxIncomingMessages caps the messages reassembled at once; 0 means
	// DefaultMaxIncomingMessages. Chunks of further messages get 413.
	MaxIncomingMessages int
	// ReceiveBuffer is how many ended messages may wait for Receive; 0
	// means DefaultReceiveBuffer. Once that many wait, the session stops
	// reading until Receive takes one, and TCP holds the peer back, as with
	// a net.Conn nobody reads. (While Shutdown waits for its answers, up to
	// 4096 messages or 16 MiB wait.)
	ReceiveBuffer int
	// MaxOutgoingMessages caps the messages being sent at once (each reads
	// up to 1 MiB of its reader ahead); 0 means DefaultMaxOutgoingMessages.
	// At the cap SendMessage returns ErrTooManyMessages and Send waits.
	MaxOutgoingMessages int
	// MaxSize is the largest message this end takes, wherever it goes: our
	// SDP a=max-size (RFC 4975 §8.6), which SDPNegotiation.SessionConfig
	// sets. A message announced larger, or whose bytes run past it, is
	// refused with 413. 0 means no bound but MaxMessageSize's.
	MaxSize int64
	// PeerMaxSize is the largest message the peer takes: its a=max-size.
	// SendMessage refuses a larger message with ErrMessageTooLarge, and a
	// message of unknown size that grows past it is ended with "#". 0
	// means no bound.
	PeerMaxSize int64
}

func (c *MessageConfig) maxIncoming() int {
	return orDefault(c.MaxIncomingMessages, DefaultMaxIncomingMessages)
}
func (c *MessageConfig) receiveBuffer() int {
	return orDefault(c.ReceiveBuffer, DefaultReceiveBuffer)
}
func (c *MessageConfig) maxOutgoing() int {
	return orDefault(c.MaxOutgoingMessages, DefaultMaxOutgoingMessages)
}
func (c *MessageConfig) maxMessageSize() int64 {
	if c.MaxMessageSize <= 0 {
		return DefaultMaxMessageSize
	}
	return c.MaxMessageSize
}

// ---- Sending messages -------------------------------------------------------------

// MessageOptions shape a message sent with SendMessage.
type MessageOptions struct {
	MessageID     string        // empty: a fresh one
	SuccessReport bool          // ask the receiver for success REPORTs
	FailureReport FailureReport // the zero value, "yes", is the RFC default
	Headers       Header        // more headers for every chunk, e.g. Content-Disposition
	// OnProgress is called on the callback goroutine as each chunk goes
	// out, with the bytes sent so far and the size (Unknown if not known).
	// The calls for a chunk come before any callback about its response,
	// but Wait, which delivers no callback, may return before the last
	// OnProgress call has run.
	OnProgress func(sent, size int64)
}

// OutgoingMessage is a message being sent by SendMessage.
type OutgoingMessage struct {
	ID   string
	Size int64 // Unknown when not known in advance

	s           *MSRPSession
	contentType string
	opts        MessageOptions
	pieces      chan piece    // read ahead by the message's reader goroutine
	free        chan []byte   // chunk buffers back from the writer, for reuse
	stop        chan struct{} // closed when the message ends: its reader goroutine stops
	done        chan struct{} // closed when the outcome is known

	// Guarded by s.mu.
	sent     int64 // bytes in the chunks made so far
	inFlight int   // chunks made and not yet answered
	lastOut  bool  // the final chunk has been made
	abort    bool  // stop: the next chunk ends the message with "#"
	failure  error // why the message stops early
	ended    bool
	err      error // the outcome: written before done is closed, read after
}

type piece struct {
	data []byte
	last bool
	err  error
}

// SendMessage queues a whole message and returns at once: size bytes read
// from r (Unknown if the size is not known; the reader's end then ends the
// message), sent as chunks of ChunkSize with one Message-ID and Byte-Range
// headers that place each chunk, and a Content-Type of contentType.
//
// With a known size, r is read for exactly size bytes and no further; a
// reader that ends sooner ends the message with "#" and an error. Each chunk
// goes out as soon as its bytes have been read; with Unknown size a chunk
// is full before it goes, and the reader's end sends the last (which is
// empty if the end falls on a chunk boundary).
//
// Messages share the connection: the session writes one chunk of each
// queued message in turn, and single chunks (SendChunk, responses, REPORTs)
// before any, so that a chat message overtakes a large transfer within a
// chunk or two. At most Window chunks of a message await their response at a
// time. A 413 from the peer stops the message and ends it with "#".
//
// r is read on a goroutine of the message's own, which Close and Shutdown
// do not wait for: it returns once a read returns after the message ended.
// Wait reports the outcome.
func (s *MSRPSession) SendMessage(r io.Reader, size int64, contentType string, opts MessageOptions) (*OutgoingMessage, error) {
	m, _, err := s.startMessage(r, size, contentType, opts)
	return m, err
}

// startMessage is SendMessage; when the cap on messages is reached it also
// returns a channel closed once there may be room.
func (s *MSRPSession) startMessage(r io.Reader, size int64, contentType string, opts MessageOptions) (*OutgoingMessage, <-chan struct{}, error) {
	if size < 0 {
		size = Unknown
	}
	if opts.FailureReport > FailureReportPartial {
		return nil, nil, fmt.Errorf("msrp: MessageOptions.FailureReport: %s is not a Failure-Report value", opts.FailureReport)
	}
	if opts.MessageID == "" {
		opts.MessageID = NewMessageID()
	}
	if limit := s.cfg.PeerMaxSize; limit > 0 && size != Unknown && size > limit {
		return nil, nil, fmt.Errorf("%w: %d bytes, the peer takes %d", ErrMessageTooLarge, size, limit)
	}
	// Read ahead enough to keep the writer batching, within 1 MiB.
	chunkSize := s.chunkSize()
	ahead := min(max(2, (1<<20)/chunkSize), s.window())
	m := &OutgoingMessage{
		ID: opts.MessageID, Size: size, s: s, contentType: contentType, opts: opts,
		pieces: make(chan piece, ahead), free: make(chan []byte, ahead+2),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.mu.Lock()
	if s.state != StateConnected {
		defer s.unlock()
		return nil, nil, fmt.Errorf("%w: cannot send in state %s", s.closedErrorLocked(), s.state)
	}
	if s.sending >= s.cfg.maxOutgoing() {
		defer s.unlock()
		return nil, s.sendRoom, ErrTooManyMessages
	}
	s.sending++
	s.messages = append(s.messages, m)
	signal(s.writerWake)
	s.unlock()
	go m.read(r, chunkSize)
	return m, nil, nil
}

// chunkSize is the body size of message chunks on this session.
func (s *MSRPSession) chunkSize() int {
	switch {
	case s.cfg.ChunkSize > 0:
		return s.cfg.ChunkSize
	case s.relayed():
		return DefaultChunkSize
	}
	return DefaultDirectChunkSize
}

// window is how many chunks of a message may await their response.
func (s *MSRPSession) window() int {
	switch {
	case s.cfg.Window > 0:
		return s.cfg.Window
	case s.relayed():
		return 1
	}
	return DefaultWindow
}

// relayed reports whether a relay is on the path: ours (Use-Path) or the
// peer's (before its URI in its a=path).
func (s *MSRPSession) relayed() bool {
	s.t.pathMu.RLock()
	defer s.t.pathMu.RUnlock()
	return len(s.t.localPath) > 0 || len(s.t.remotePath) > 1
}

// read splits r into pieces for the writer: with a known size, never past
// it, and each piece handed on as soon as it is read.
func (m *OutgoingMessage) read(r io.Reader, chunkSize int) {
	var total int64
	for {
		want := chunkSize
		if m.Size != Unknown {
			want = int(min(int64(chunkSize), m.Size-total))
		}
		var buf []byte
		select {
		case <-m.stop:
			return // no read after the message has ended
		case buf = <-m.free:
		default:
		}
		if cap(buf) < want {
			buf = make([]byte, want) // a short message gets a short buffer
		}
		n, err := io.ReadFull(r, buf[:want])
		total += int64(n)
		p := piece{data: buf[:n]}
		switch limit := m.s.cfg.PeerMaxSize; {
		case limit > 0 && total > limit: // of unknown size, and grown too large
			p = piece{err: fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)}
		case err == nil:
			p.last = m.Size != Unknown && total == m.Size
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			p.last = true
			if m.Size != Unknown {
				p.err = fmt.Errorf("msrp: message reader ended after %d of the %d bytes announced", total, m.Size)
			}
		default:
			p.err = fmt.Errorf("msrp: message reader: %w", err)
		}
		select {
		case <-m.stop:
			return // the message ended during the read: nothing more of it
		default:
		}
		select {
		case m.pieces <- p:
			signal(m.s.writerWake)
		case <-m.stop:
			return
		}
		if p.last || p.err != nil {
			return
		}
	}
}

// nextChunkLocked returns the message's next chunk to write, or nil when it
// has none ready. Called by the writer with s.mu held.
func (m *OutgoingMessage) nextChunkLocked() *outItem {
	if m.lastOut {
		return nil
	}
	if m.abort {
		return m.chunkLocked(nil, FlagAborted)
	}
	if m.inFlight >= m.s.window() {
		return nil
	}
	var p piece
	select {
	case p = <-m.pieces:
	default:
		return nil
	}
	if p.err != nil {
		m.failure = p.err
		return m.chunkLocked(nil, FlagAborted)
	}
	flag := FlagContinued
	if p.last {
		flag = FlagEnd
	}
	return m.chunkLocked(p.data, flag)
}

// chunkLocked makes a chunk of the message and starts its transaction; a
// flag other than "+" makes it the last. Called with s.mu held.
func (m *OutgoingMessage) chunkLocked(data []byte, flag byte) *outItem {
	s := m.s
	total := m.Size
	if total == Unknown && flag == FlagEnd {
		total = m.sent + int64(len(data)) // the end tells the size
	}
	c := s.t.MakeSendRequest(m.ID, data, m.sent+1, total)
	c.ContFlag = flag
	if m.contentType != "" && (len(data) > 0 || flag == FlagEnd) {
		c.Headers.Add(HeaderContentType, m.contentType)
	}
	if m.opts.SuccessReport {
		c.Headers.Add(HeaderSuccessReport, "yes")
	}
	if m.opts.FailureReport != FailureReportYes {
		c.Headers.Add(HeaderFailureReport, m.opts.FailureReport.String())
	}
	c.Headers = append(c.Headers, m.opts.Headers...)
	m.sent += int64(len(data))
	m.inFlight++
	if flag != FlagContinued {
		m.lastOut = true
		s.messages = removeMessage(s.messages, m)
		m.stopReading()
	}
	s.seq++
	it := &outItem{c: c, msg: m, progress: m.sent, seq: s.seq}
	s.byTID[c.TransactionID] = it
	s.outstanding++
	return it
}

func removeMessage(list []*OutgoingMessage, m *OutgoingMessage) []*OutgoingMessage {
	if i := indexOf(list, m); i >= 0 {
		return append(list[:i:i], list[i+1:]...)
	}
	return list
}

// stopReading ends the message's reader goroutine, once. Called with s.mu
// held.
func (m *OutgoingMessage) stopReading() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
}

// writingLocked runs just before one of the message's chunks is written:
// progress is reported then, so that it comes before anything about the
// chunk's response.
func (m *OutgoingMessage) writingLocked(it *outItem) {
	if on := m.opts.OnProgress; on != nil {
		sent, size := it.progress, m.Size
		m.s.callLocked(0, func() { on(sent, size) })
	}
}

// writtenLocked runs after one of the message's chunks went out: its buffer
// goes back to the message's reader for reuse.
func (m *OutgoingMessage) writtenLocked(it *outItem) {
	if data := it.c.Data; cap(data) > 0 {
		it.c.Data = nil
		select {
		case m.free <- data[:cap(data)]:
		default:
		}
	}
}

// answeredLocked takes the outcome of one of the message's chunks.
func (m *OutgoingMessage) answeredLocked(it *outItem, resp *Chunk, err error) {
	if err == nil && resp != nil && resp.Code != 200 {
		err = &TransactionError{Code: resp.Code, Comment: resp.Comment}
	}
	m.inFlight--
	if err != nil && m.failure == nil {
		m.failure = err
		if !m.lastOut {
			m.abort = true // stop, and say so with "#" (RFC 4975 §10.5 for 413)
		}
	}
	signal(m.s.writerWake)
	if m.lastOut && m.inFlight == 0 {
		failure := m.failure
		if it.c.ContFlag == FlagAborted && failure == nil {
			failure = ErrMessageAborted
		}
		m.finishLocked(failure)
	}
}

// finishLocked ends the message with its outcome, once.
func (m *OutgoingMessage) finishLocked(err error) {
	if m.ended {
		return
	}
	m.ended = true
	m.err = err
	m.stopReading()
	close(m.done)
	m.s.sending--
	close(m.s.sendRoom)
	m.s.sendRoom = make(chan struct{})
	m.s.checkFlushedLocked()
}

// Abort stops the message: its next chunk ends it with "#", and Wait
// returns ErrMessageAborted.
func (m *OutgoingMessage) Abort() {
	m.s.mu.Lock()
	if !m.lastOut && m.failure == nil {
		m.abort = true
		m.failure = ErrMessageAborted
	}
	signal(m.s.writerWake)
	m.s.unlock()
}

// Wait returns once every chunk of the message is written and answered:
// nil, the peer's refusal as a *TransactionError, ErrMessageAborted, an
// error about the reader, or the error that ended the session; or ctx's
// error if ctx ends first.
func (m *OutgoingMessage) Wait(ctx context.Context) error {
	select {
	case <-m.done:
		return m.err // set before done was closed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the message has been sent and answered, or failed.
func (m *OutgoingMessage) Done() <-chan struct{} { return m.done }
