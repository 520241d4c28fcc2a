package msrp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
)

// ErrMessageAborted reports a message that its sender abandoned (a chunk
// with the "#" flag) or that Abort stopped.
var ErrMessageAborted = errors.New("msrp: message aborted")

// MessageConfig configures whole messages in an MSRPSession.
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

	// OnMessage, when set, turns on reassembly: chunks are put together by
	// Message-ID, in whatever order they arrive, and OnMessage is called
	// once per message when it ends: complete (Err nil), aborted by its
	// sender (ErrMessageAborted), refused (a *TransactionError, 413 when
	// too large), or cut short by the end of the session. It runs on the
	// session's reader goroutine and must not block.
	OnMessage func(m *IncomingMessage)
	// MessageWriter, when set, is asked at the first chunk of each message
	// where its body goes. A non-nil io.Writer receives the body in order
	// as it arrives, so that a message of any size never sits in memory;
	// nil keeps the body in IncomingMessage.Data, up to MaxMessageSize. It
	// runs, and the writer is written to, on the session's reader goroutine.
	MessageWriter func(m *IncomingMessage) io.Writer
	// MaxMessageSize caps a message kept in memory; 0 means
	// DefaultMaxMessageSize. A message that would exceed it is refused with
	// 413, which tells its sender to stop (RFC 4975 §10.5).
	MaxMessageSize int64
	// MaxIncomingMessages caps the messages reassembled at once; 0 means
	// DefaultMaxIncomingMessages. Chunks of further messages get 413.
	MaxIncomingMessages int
}

func (c *MessageConfig) maxIncoming() int {
	return orDefault(c.MaxIncomingMessages, DefaultMaxIncomingMessages)
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
	// OnProgress is called on the session's writer goroutine after each
	// chunk is written, with the bytes written so far and the size (Unknown
	// if not known). It must not block.
	OnProgress func(sent, size int64)
}

// OutgoingMessage is a message being sent by SendMessage.
type OutgoingMessage struct {
	ID   string
	Size int64 // Unknown when not known in advance

	s           *MSRPSession
	contentType string
	opts        MessageOptions
	pieces      chan piece  // read ahead by the message's reader goroutine
	free        chan []byte // chunk buffers back from the writer, for reuse
	ctx         context.Context
	cancel      context.CancelFunc

	// Guarded by s.mu.
	sent     int64 // bytes queued for writing
	inFlight int   // chunks written or queued, not yet answered
	lastOut  bool  // the final chunk has been queued
	abort    bool  // stop: the next chunk ends the message with "#"
	failure  error // why the message stops early

	doneOnce sync.Once
	done     chan struct{}
	err      error
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
// Messages share the connection: the session writes one chunk of each
// queued message in turn, and single chunks (SendChunk, responses, REPORTs)
// before any, so that a chat message overtakes a large transfer within a
// chunk or two. At most Window chunks of a message await their response at a
// time. A 413 from the peer stops the message and ends it with "#".
//
// r is read on a goroutine of the session's own. Wait reports the outcome.
func (s *MSRPSession) SendMessage(r io.Reader, size int64, contentType string, opts MessageOptions) (*OutgoingMessage, error) {
	if size < 0 {
		size = Unknown
	}
	if opts.MessageID == "" {
		opts.MessageID = NewMessageID()
	}
	// Read ahead enough to keep the writer batching, within 1 MiB.
	chunkSize := s.chunkSize()
	ahead := min(max(2, (1<<20)/chunkSize), s.window())
	m := &OutgoingMessage{
		ID: opts.MessageID, Size: size, s: s, contentType: contentType, opts: opts,
		pieces: make(chan piece, ahead), free: make(chan []byte, ahead+2), done: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(s.ctx)
	s.mu.Lock()
	if st := s.State(); st != StateConnected || s.err != nil {
		s.mu.Unlock()
		m.cancel()
		return nil, fmt.Errorf("%w: cannot send in state %s", ErrSessionClosed, st)
	}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	s.wg.Go(func() { m.read(r, chunkSize) })
	return m, nil
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

// read splits r into pieces for the writer, reading ahead.
func (m *OutgoingMessage) read(r io.Reader, chunkSize int) {
	br := bufio.NewReaderSize(r, chunkSize)
	var total int64
	for {
		var buf []byte
		select {
		case buf = <-m.free:
		default:
			buf = make([]byte, chunkSize)
		}
		n, err := io.ReadFull(br, buf)
		total += int64(n)
		p := piece{data: buf[:n]}
		switch {
		case err == nil:
			_, perr := br.Peek(1)
			p.last = perr == io.EOF || (m.Size != Unknown && total >= m.Size)
			if perr != nil && perr != io.EOF {
				p.err = perr
			}
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			p.last = true
		default:
			p.err = err
		}
		if p.last && m.Size != Unknown && total != m.Size {
			p.err = fmt.Errorf("msrp: message reader gave %d bytes, not the %d announced", total, m.Size)
		}
		select {
		case m.pieces <- p:
			m.s.signal()
		case <-m.ctx.Done():
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
		return m.finalLocked(nil, FlagAborted)
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
		return m.finalLocked(nil, FlagAborted)
	}
	flag := FlagContinued
	if p.last {
		flag = FlagEnd
	}
	return m.finalLocked(p.data, flag)
}

// finalLocked builds a chunk of the message; a flag other than "+" makes it
// the last. Called with s.mu held.
func (m *OutgoingMessage) finalLocked(data []byte, flag byte) *outItem {
	c := m.s.t.MakeSendRequest(m.ID, data, m.sent+1, m.Size)
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
		m.s.messages = removeMessage(m.s.messages, m)
		m.cancel() // the reader goroutine is not needed any more
	}
	return &outItem{c: c, msg: m}
}

func removeMessage(list []*OutgoingMessage, m *OutgoingMessage) []*OutgoingMessage {
	if i := indexOf(list, m); i >= 0 {
		return append(list[:i:i], list[i+1:]...)
	}
	return list
}

// writing runs on the writer goroutine just before one of the message's
// chunks is written: progress is reported then, so that it always comes
// before the chunk's response can end the message.
func (m *OutgoingMessage) writing(item *outItem) {
	if m.opts.OnProgress != nil {
		m.s.mu.Lock()
		sent := m.sent
		m.s.mu.Unlock()
		m.opts.OnProgress(sent, m.Size)
	}
}

// written runs on the writer goroutine after one of the message's chunks
// went out: its buffer goes back to the message's reader for reuse.
func (m *OutgoingMessage) written(item *outItem) {
	if data := item.c.Data; cap(data) > 0 {
		item.c.Data = nil
		select {
		case m.free <- data[:cap(data)]:
		default:
		}
	}
}

// answered takes the outcome of one of the message's chunks.
func (m *OutgoingMessage) answered(item *outItem, resp *Chunk, err error) {
	if err == nil && resp != nil && resp.Code != 200 {
		err = &TransactionError{Code: resp.Code, Comment: resp.Comment}
	}
	m.s.mu.Lock()
	m.inFlight--
	if err != nil && m.failure == nil {
		m.failure = err
		if !m.lastOut {
			m.abort = true // stop, and say so with "#" (RFC 4975 §10.5 for 413)
		}
	}
	finished := m.lastOut && m.inFlight == 0
	failure := m.failure
	if item.c.ContFlag == FlagAborted && failure == nil {
		failure = ErrMessageAborted
	}
	m.s.mu.Unlock()
	m.s.signal()
	if finished {
		m.finish(failure)
	}
}

func (m *OutgoingMessage) finish(err error) {
	m.doneOnce.Do(func() {
		m.err = err
		m.cancel()
		close(m.done)
	})
}

// Abort stops the message: its next chunk ends it with "#", and Wait
// returns ErrMessageAborted.
func (m *OutgoingMessage) Abort() {
	m.s.mu.Lock()
	if !m.lastOut && m.failure == nil {
		m.abort = true
		m.failure = ErrMessageAborted
	}
	m.s.mu.Unlock()
	m.s.signal()
}

// Wait returns once every chunk of the message is written and answered:
// nil, the peer's refusal as a *TransactionError, ErrMessageAborted, or the
// error that ended the session; or ctx's error if ctx ends first.
func (m *OutgoingMessage) Wait(ctx context.Context) error {
	select {
	case <-m.done:
		return m.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the message has been sent and answered, or failed.
func (m *OutgoingMessage) Done() <-chan struct{} { return m.done }

// ---- Receiving messages -------------------------------------------------------------

// IncomingMessage is a message put together from incoming chunks.
type IncomingMessage struct {
	MessageID   string
	ContentType string // of the first chunk that arrived
	Headers     Header // of the first chunk that arrived
	Size        int64  // from Byte-Range; Unknown if the sender did not say
	Received    int64  // body bytes placed so far
	Data        []byte // the body, when kept in memory
	Err         error  // nil once complete; else why the message ended

	w       io.Writer
	mem     *bytes.Buffer
	ahead   map[int64][]byte // chunks that arrived beyond a gap, by position
	aheadN  int64
	endPos  int64 // last byte, once the final chunk has arrived; 0 before
	written int64 // bytes written in order: the next byte is written+1
}

// incomingMessages reassembles a session's incoming messages.
type incomingMessages struct {
	cfg     *MessageConfig
	active  map[string]*IncomingMessage
	refused map[string]bool // recently refused Message-IDs: their later chunks get 413 too
}

func (in *incomingMessages) init(cfg *MessageConfig) {
	in.cfg = cfg
	in.active = map[string]*IncomingMessage{}
	in.refused = map[string]bool{}
}

// add places a SEND chunk in its message. It returns an error to answer the
// chunk with (413) instead of 200, and the message if the chunk ended it.
func (in *incomingMessages) add(c *Chunk) (*IncomingMessage, error) {
	if in.cfg.OnMessage == nil {
		return nil, nil
	}
	mid, err := c.MessageID()
	if err != nil || (len(c.Data) == 0 && c.ContFlag == FlagEnd && !c.hasBodySection()) {
		return nil, nil // an empty SEND: binding or keepalive, no message
	}
	if in.refused[mid] {
		return nil, &TransactionError{Code: 413, Comment: "Message refused"}
	}
	r, err := c.ByteRange()
	if err != nil {
		r = ByteRange{Start: 1, End: int64(len(c.Data)), Total: int64(len(c.Data))}
	}
	m, ok := in.active[mid]
	if !ok {
		if len(in.active) >= in.cfg.maxIncoming() {
			return nil, &TransactionError{Code: 413, Comment: "Too many messages at once"}
		}
		m = &IncomingMessage{MessageID: mid, Headers: c.Headers, Size: r.Total}
		m.ContentType, _ = c.ContentType()
		if in.cfg.MessageWriter != nil {
			m.w = in.cfg.MessageWriter(m)
		}
		if m.w == nil {
			if m.Size != Unknown && m.Size > in.cfg.maxMessageSize() {
				return in.refuse(m, &TransactionError{Code: 413, Comment: "Message too large"})
			}
			m.mem = &bytes.Buffer{}
			m.w = m.mem
		}
		in.active[mid] = m
	}
	if c.ContFlag == FlagAborted {
		m.Err = ErrMessageAborted
		return in.end(m), nil
	}
	if err := in.place(m, r.Start, c.Data); err != nil {
		return in.refuse(m, err)
	}
	if c.ContFlag == FlagEnd {
		m.endPos = r.Start + int64(len(c.Data)) - 1
	}
	if m.complete() {
		if m.mem != nil {
			m.Data = m.mem.Bytes()
		}
		return in.end(m), nil
	}
	return nil, nil
}

// place writes data at 1-based position start: in order at once, ahead of
// a gap into a bounded buffer, and skipping any part already received.
func (in *incomingMessages) place(m *IncomingMessage, start int64, data []byte) error {
	next := m.written + 1
	end := start + int64(len(data)) - 1
	switch {
	case len(data) == 0 || end < next:
		return nil // nothing new
	case start > next:
		if _, dup := m.ahead[start]; dup {
			return nil
		}
		if m.aheadN+int64(len(data)) > in.cfg.maxMessageSize() {
			return &TransactionError{Code: 413, Comment: "Too much out of order"}
		}
		if m.ahead == nil {
			m.ahead = map[int64][]byte{}
		}
		m.ahead[start] = data
		m.aheadN += int64(len(data))
		m.Received += int64(len(data))
		return nil
	}
	data = data[next-start:] // drop the overlap
	if err := m.write(data, in.cfg.maxMessageSize()); err != nil {
		return err
	}
	m.Received += int64(len(data))
	// Chunks waiting beyond the gap may fit now.
	for len(m.ahead) > 0 {
		progressed := false
		for pos, d := range m.ahead {
			next := m.written + 1
			if pos > next {
				continue
			}
			delete(m.ahead, pos)
			m.aheadN -= int64(len(d))
			m.Received -= int64(len(d))
			if skip := next - pos; skip < int64(len(d)) {
				d = d[skip:]
				if err := m.write(d, in.cfg.maxMessageSize()); err != nil {
					return err
				}
				m.Received += int64(len(d))
			}
			progressed = true
		}
		if !progressed {
			break
		}
	}
	return nil
}

func (m *IncomingMessage) write(data []byte, limit int64) error {
	if m.mem != nil && m.written+int64(len(data)) > limit {
		return &TransactionError{Code: 413, Comment: "Message too large"}
	}
	if _, err := m.w.Write(data); err != nil {
		return &TransactionError{Code: 413, Comment: "Cannot store message: " + err.Error()}
	}
	m.written += int64(len(data))
	return nil
}

func (m *IncomingMessage) complete() bool {
	if len(m.ahead) > 0 {
		return false
	}
	if m.Size != Unknown {
		return m.written >= m.Size
	}
	return m.endPos > 0 && m.written >= m.endPos
}

func (in *incomingMessages) refuse(m *IncomingMessage, err error) (*IncomingMessage, error) {
	if len(in.refused) >= 64 {
		clear(in.refused)
	}
	in.refused[m.MessageID] = true
	m.Err = err
	if _, ok := in.active[m.MessageID]; !ok {
		return m, err
	}
	return in.end(m), err
}

// end forgets a message and returns it for OnMessage.
func (in *incomingMessages) end(m *IncomingMessage) *IncomingMessage {
	delete(in.active, m.MessageID)
	m.ahead, m.mem, m.w = nil, nil, nil
	return m
}

// holds reports whether the chunk's body is kept, waiting beyond a gap.
func (in *incomingMessages) holds(c *Chunk) bool {
	if len(c.Data) == 0 {
		return false
	}
	for _, m := range in.active {
		for _, d := range m.ahead {
			if &d[0] == &c.Data[0] {
				return true
			}
		}
	}
	return false
}

// endAll fails every message in progress; the session has ended.
func (in *incomingMessages) endAll(err error) []*IncomingMessage {
	var ended []*IncomingMessage
	for _, m := range in.active {
		m.Err = err
		ended = append(ended, in.end(m))
	}
	return ended
}
