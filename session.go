package msrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Session defaults, msrplib's where it has them.
const (
	DefaultResponseTimeout   = 30 * time.Second // RFC 4975 §7.1.1 transaction timeout
	DefaultKeepaliveInterval = 60 * time.Second
	DefaultMaxPending        = 4096 // transactions awaiting a response, and chunks queued
)

// ErrTooManyPending is returned by SendChunk when the session already has
// MaxPending chunks queued or awaiting their response.
var ErrTooManyPending = errors.New("msrp: too many chunks pending")

// SessionState is where a session is in its life.
type SessionState int32

const (
	StateConnected SessionState = iota // sending and receiving
	StateFlushing                      // Shutdown called: writing what is queued
	StateClosing                       // writer done: waiting for the last responses
	StateDone                          // every goroutine has ended, the connection is closed
)

// String returns msrplib's name for the state: CONNECTED, FLUSHING,
// CLOSING or DONE.
func (s SessionState) String() string {
	switch s {
	case StateConnected:
		return "CONNECTED"
	case StateFlushing:
		return "FLUSHING"
	case StateClosing:
		return "CLOSING"
	case StateDone:
		return "DONE"
	}
	return fmt.Sprintf("SessionState(%d)", int32(s))
}

// SessionConfig configures an MSRPSession. The zero value accepts every
// content type, sends success REPORTs when asked for, and uses msrplib's
// timers (30 s for responses, a keepalive after 60 s of silence).
type SessionConfig struct {
	// AcceptTypes lists the media types accepted in incoming SENDs, with
	// "*" and "type/*" wildcards (SDP a=accept-types); nil means {"*"}.
	// Parameters of an incoming Content-Type are ignored when matching.
	AcceptTypes []string
	// OnIncoming receives every accepted SEND chunk (after it was
	// answered), every REPORT, NICKNAME request and request of another
	// method the session does not answer itself, and negative responses
	// that match no pending transaction. It runs on the session's reader
	// goroutine and must not block. nil: chunks are only reassembled.
	OnIncoming func(c *Chunk)
	// DisableAutomaticReports stops the session from sending the success
	// REPORTs that Success-Report: yes asks for (msrplib's
	// automatic_reports=False); send them with SendReport instead.
	DisableAutomaticReports bool
	// ResponseTimeout bounds the wait for a transaction response; 0 means
	// DefaultResponseTimeout. A chunk that gets none in time is answered
	// locally with 408.
	ResponseTimeout time.Duration
	// KeepaliveInterval is how long the connection may stay silent before
	// the session sends an empty SEND to check it; 0 means
	// DefaultKeepaliveInterval, negative turns keepalives off. A keepalive
	// that gets no response (408) closes the session; other answers are
	// tolerated, as peers differ in how they treat empty SENDs.
	KeepaliveInterval time.Duration
	// MaxPending bounds chunks queued and awaiting responses; 0 means
	// DefaultMaxPending.
	MaxPending int
	// DisableWriteBatching writes one chunk per write instead of what is
	// queued together. Batching is valid MSRP (TCP is a stream) and doubles
	// the rate of small messages, but some tools read one message per TCP
	// segment: Wireshark 4.0's MSRP dissector decodes only the first.
	DisableWriteBatching bool

	MessageConfig // reassembly of incoming messages and chunking of outgoing ones
}

func (c *SessionConfig) responseTimeout() time.Duration {
	if c.ResponseTimeout <= 0 {
		return DefaultResponseTimeout
	}
	return c.ResponseTimeout
}

// MSRPSession runs an MSRP session over a bound transport: msrplib's
// MSRPSession. It answers incoming requests, tracks the transactions of
// outgoing ones with timeouts, sends REPORTs, keeps the connection alive,
// and sends and receives whole messages of any size (see SendMessage and
// MessageConfig). It is safe for concurrent use.
//
// Three goroutines serve it: a reader, the writer (the only code that writes
// to the transport) and a keepalive. Shutdown ends them gracefully, Close at
// once; Done is closed when all have ended.
type MSRPSession struct {
	t   *MSRPTransport
	cfg SessionConfig

	ctx    context.Context // ends when the session is closed
	cancel context.CancelFunc
	state  atomic.Int32

	mu       sync.Mutex
	queue    []*outItem // single chunks, in order
	messages []*OutgoingMessage
	pending  map[string]*transaction
	inWrite  int           // chunks the writer has taken from the queue and not yet written
	wrote    chan struct{} // signalled each time the writer finishes a write
	err      error         // what pending work fails with once the session ended: wraps ErrSessionClosed
	cause    error         // why it ended; nil for Shutdown or Close
	wake     chan struct{}
	room     *sync.Cond    // on mu: the writer took chunks from a full queue, or the session ended
	flush    chan struct{} // closed by Shutdown: the writer stops once the queue is empty

	lastActivity atomic.Int64 // unix nanoseconds of the last read or write
	incoming     incomingMessages
	wbuf         []byte // the writer's encoding buffer

	wg        sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once
}

// outItem is one chunk to write, with what to do once it is written.
type outItem struct {
	c          *Chunk
	onResponse func(*Chunk, error) // nil: no response expected or wanted
	msg        *OutgoingMessage    // the message this chunk belongs to, if any
}

// transaction is a request awaiting its response.
type transaction struct {
	item  *outItem
	timer *time.Timer
}

// NewMSRPSession starts a session over a bound transport. The session owns
// the transport from now on and closes it when it ends.
func NewMSRPSession(t *MSRPTransport, cfg SessionConfig) *MSRPSession {
	if cfg.AcceptTypes == nil {
		cfg.AcceptTypes = []string{"*"}
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	s := &MSRPSession{
		t:       t,
		cfg:     cfg,
		pending: map[string]*transaction{},
		wake:    make(chan struct{}, 1),
		wrote:   make(chan struct{}, 1),
		flush:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.room = sync.NewCond(&s.mu)
	s.incoming.init(&s.cfg.MessageConfig)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.touch()
	s.wg.Go(s.reader)
	s.wg.Go(s.writer)
	if cfg.KeepaliveInterval >= 0 {
		s.wg.Go(s.keepalive)
	}
	if t.maintain != nil {
		s.wg.Go(func() { t.maintain(s.ctx, s.DeliverChunk) })
	}
	go func() {
		s.wg.Wait()
		s.advanceState(StateDone)
		close(s.done)
	}()
	return s
}

// Transport returns the session's transport, for its paths and addresses.
// Do not read from or write to it while the session runs.
func (s *MSRPSession) Transport() *MSRPTransport { return s.t }

// State returns the session's state.
func (s *MSRPSession) State() SessionState { return SessionState(s.state.Load()) }

// Done is closed when the session has ended and its goroutines are gone.
func (s *MSRPSession) Done() <-chan struct{} { return s.done }

// Err returns why the session ended: nil while it runs and after Shutdown or
// Close, else the connection's error.
func (s *MSRPSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// advanceState moves the state forward to st, never back, and reports
// whether it moved.
func (s *MSRPSession) advanceState(st SessionState) bool {
	for {
		old := s.state.Load()
		if old >= int32(st) {
			return false
		}
		if s.state.CompareAndSwap(old, int32(st)) {
			s.t.Logger.Event("session state", "state", st.String(), "was", SessionState(old).String())
			return true
		}
	}
}

func (s *MSRPSession) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// ---- Sending -------------------------------------------------------------------

// SendChunk queues a request and returns at once, msrplib's send_chunk. When
// onResponse is not nil it is called once, on a session goroutine, with the
// peer's response, or with an error: a *TransactionError with code 408 when
// no response came within ResponseTimeout (it matches ErrTimeout), or an
// error wrapping ErrSessionClosed and the cause when the session ended
// first. A request whose Failure-Report is "no" or "partial" gets no 200 from
// the peer (RFC 4975 §7.1.2), so the session reports a 200 of its own as
// soon as the chunk is written; with "partial", a negative response that
// still arrives goes to OnIncoming. REPORTs get no response at all.
//
// It fails if the session is not CONNECTED, if the chunk's transaction id is
// already pending, or if MaxPending chunks are queued or pending.
func (s *MSRPSession) SendChunk(c *Chunk, onResponse func(resp *Chunk, err error)) error {
	return s.enqueue(&outItem{c: c, onResponse: onResponse})
}

func (s *MSRPSession) enqueue(item *outItem) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.State(); st != StateConnected {
		return fmt.Errorf("%w: cannot send in state %s", ErrSessionClosed, st)
	}
	if s.err != nil {
		return s.err
	}
	if len(s.queue)+len(s.pending) >= s.cfg.MaxPending {
		return ErrTooManyPending
	}
	if item.onResponse != nil && item.c.IsRequest() {
		if _, dup := s.pending[item.c.TransactionID]; dup || s.queuedTID(item.c.TransactionID) {
			return fmt.Errorf("msrp: transaction %s is already pending", item.c.TransactionID)
		}
	}
	s.queue = append(s.queue, item)
	s.signal()
	return nil
}

func (s *MSRPSession) queuedTID(tid string) bool {
	for _, it := range s.queue {
		if it.c.TransactionID == tid && it.onResponse != nil {
			return true
		}
	}
	return false
}

// signal wakes the writer. Called with s.mu held or not.
func (s *MSRPSession) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// DeliverChunk sends a request and waits for its response, msrplib's
// deliver_chunk. It returns the response when its code is 2xx; a negative
// response as a *TransactionError (with the response); and ctx's error if
// ctx ends first (the transaction is then forgotten). For a chunk whose
// Failure-Report is "no" or "partial" it returns a local 200 once the
// chunk is written.
func (s *MSRPSession) DeliverChunk(ctx context.Context, c *Chunk) (*Chunk, error) {
	type result struct {
		resp *Chunk
		err  error
	}
	done := make(chan result, 1)
	if err := s.SendChunk(c, func(resp *Chunk, err error) { done <- result{resp, err} }); err != nil {
		return nil, err
	}
	select {
	case r := <-done:
		if r.err == nil && (r.resp.Code < 200 || r.resp.Code > 299) {
			r.err = &TransactionError{Code: r.resp.Code, Comment: r.resp.Comment}
		}
		return r.resp, r.err
	case <-ctx.Done():
		s.forget(c.TransactionID)
		return nil, ctx.Err()
	}
}

// forget drops a transaction whose caller stopped waiting.
func (s *MSRPSession) forget(tid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx, ok := s.pending[tid]; ok {
		if tx.timer != nil {
			tx.timer.Stop()
		}
		delete(s.pending, tid)
	}
	for i, it := range s.queue {
		if it.c.TransactionID == tid {
			it.onResponse = nil
			s.queue[i] = it
		}
	}
}

// SendReport sends a REPORT about a received SEND chunk (msrplib's
// send_report): Status 000 <code>, the chunk's Message-ID and Byte-Range.
// REPORTs get no response.
func (s *MSRPSession) SendReport(c *Chunk, code int, comment string) error {
	r, err := s.makeReport(c, code, comment)
	if err != nil {
		return err
	}
	return s.SendChunk(r, nil)
}

// Respond answers a request the session passed to OnIncoming without
// answering it (NICKNAME, or another method), if its Failure-Report allows.
func (s *MSRPSession) Respond(req *Chunk, code int, comment string) error {
	if !req.ResponseWanted(code) {
		return nil
	}
	resp, err := NewResponse(req, code, comment)
	if err != nil {
		return err
	}
	return s.enqueue(&outItem{c: resp})
}

// makeReport builds a REPORT for a received SEND (RFC 4975 §7.1.2): new
// transaction id, To-Path the SEND's From-Path, From-Path our URI, the
// SEND's Message-ID, Byte-Range covering the chunk's bytes.
func (s *MSRPSession) makeReport(c *Chunk, code int, comment string) (*Chunk, error) {
	if c.Method != MethodSEND {
		return nil, errors.New("msrp: REPORTs are only sent for SEND chunks")
	}
	from, err := c.FromPath()
	if err != nil {
		return nil, err
	}
	r := NewRequest(MethodREPORT, from, []URI{s.t.LocalURI()})
	if mid, ok := c.Headers.Lookup(HeaderMessageID); ok {
		r.Headers.Add(HeaderMessageID, mid)
	}
	br, err := c.ByteRange()
	if err != nil {
		br = ByteRange{Start: 1, Total: int64(len(c.Data))}
	}
	br.End = br.Start + int64(len(c.Data)) - 1
	r.Headers.Add(HeaderByteRange, br.String())
	if comment == "" {
		comment = StatusText(code)
	}
	r.Headers.Add(HeaderStatus, Status{Code: code, Comment: comment}.String())
	return r, nil
}

// ---- Writer ---------------------------------------------------------------------

func (s *MSRPSession) writer() {
	defer s.advanceState(StateClosing)
	for {
		items := s.nextItems()
		if len(items) == 0 {
			select {
			case <-s.wake:
				continue
			case <-s.flush:
				if s.idleQueue() {
					return
				}
				select {
				case <-s.wake:
				case <-s.ctx.Done():
					return
				}
				continue
			case <-s.ctx.Done():
				return
			}
		}
		if err := s.write(items); err != nil {
			s.end(err)
			return
		}
	}
}

// Writer batching: chunks queued together go out in one write, up to these
// bounds; a chunk with a large body goes alone, written from where it lies.
const (
	maxBatchChunks = 64
	maxBatchBytes  = 64 << 10
)

// nextItems takes the next chunks to write: single chunks first, then the
// next chunk of each message in turn, so that none starves the others.
func (s *MSRPSession) nextItems() []*outItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []*outItem
	size := 0
	maxChunks := maxBatchChunks
	if s.cfg.DisableWriteBatching {
		maxChunks = 1
	}
	fits := func(it *outItem) bool {
		large := len(it.c.Data) > inlineBodyMax
		return len(items) == 0 || (!large && len(items) < maxChunks && size+len(it.c.Data) <= maxBatchBytes)
	}
	if len(s.queue) > 0 {
		defer s.room.Broadcast() // the reader may wait for room
	}
	defer func() { s.inWrite += len(items) }()
	for len(s.queue) > 0 && fits(s.queue[0]) {
		it := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		items = append(items, it)
		size += len(it.c.Data) + 256
		if len(it.c.Data) > inlineBodyMax {
			return items
		}
	}
	for tries := len(s.messages); tries > 0 && len(s.messages) > 0 && size < maxBatchBytes && len(items) < maxChunks; tries-- {
		m := s.messages[0]
		s.messages = append(s.messages[1:], m)
		if s.chunkSize() > inlineBodyMax && len(items) > 0 {
			break // its chunk would go alone
		}
		if it := m.nextChunkLocked(); it != nil {
			items = append(items, it)
			size += len(it.c.Data) + 256
			if len(it.c.Data) > inlineBodyMax {
				break
			}
			tries = len(s.messages) + 1 // another round: each may have more ready
		}
	}
	return items
}

// idleQueue reports whether nothing is left to write.
func (s *MSRPSession) idleQueue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && len(s.messages) == 0
}

// write writes chunks, in one write when they are small, and starts their
// transactions: a request whose Failure-Report is "yes" waits for the
// peer's response; with "partial" or "no" the peer sends no 200, so
// success is reported as soon as the chunk is written; a REPORT is done
// once written. A chunk that cannot be encoded fails alone.
func (s *MSRPSession) write(items []*outItem) error {
	defer func() { // until here a chunk is neither queued nor pending: Shutdown must wait for it
		s.mu.Lock()
		s.inWrite -= len(items)
		s.mu.Unlock()
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}()
	buf := s.wbuf[:0]
	ok := items[:0:0]
	chunks := make([]*Chunk, 0, len(items))
	single := len(items) == 1 && len(items[0].c.Data) > inlineBodyMax
	for _, it := range items {
		if single {
			break
		}
		b, err := it.c.appendHead(buf)
		if err != nil {
			s.settle(it, nil, err)
			continue
		}
		buf = it.c.appendTail(append(b, it.c.Data...))
		ok, chunks = append(ok, it), append(chunks, it.c)
	}
	if single {
		ok, chunks = items, []*Chunk{items[0].c}
	}
	if len(ok) == 0 {
		return nil
	}
	s.mu.Lock()
	for _, it := range ok {
		if s.awaitsResponse(it) {
			s.pending[it.c.TransactionID] = &transaction{item: it}
		}
	}
	s.mu.Unlock()
	for _, it := range ok {
		if it.msg != nil {
			it.msg.writing(it)
		}
	}

	var err error
	if single {
		wctx, cancel := context.WithTimeout(s.ctx, s.cfg.responseTimeout())
		err = s.t.WriteChunk(wctx, chunks[0])
		cancel()
		if errors.Is(err, ErrInvalidChunk) || errors.Is(err, ErrBodyContainsEndLine) {
			s.forget(chunks[0].TransactionID)
			s.settle(ok[0], nil, err) // refused before any byte was written
			return nil
		}
	} else {
		err = s.t.writeEncoded(buf, chunks, s.cfg.responseTimeout())
	}
	if cap(buf) <= 4*maxBatchBytes {
		s.wbuf = buf
	}
	if err != nil {
		s.mu.Lock()
		for _, it := range ok {
			delete(s.pending, it.c.TransactionID)
		}
		s.mu.Unlock()
		for _, it := range ok {
			s.settle(it, nil, s.closedError(err))
		}
		return err
	}
	s.touch()
	for _, it := range ok {
		s.written(it)
	}
	return nil
}

// awaitsResponse tells whether the item's outcome is the peer's response.
func (s *MSRPSession) awaitsResponse(it *outItem) bool {
	c := it.c
	return c.IsRequest() && c.Method != MethodREPORT && (it.onResponse != nil || it.msg != nil) && c.ResponseWanted(200)
}

// written starts the transaction of a chunk just written.
func (s *MSRPSession) written(it *outItem) {
	c := it.c
	if it.msg != nil {
		it.msg.written(it)
	}
	switch {
	case s.awaitsResponse(it):
		s.mu.Lock()
		if tx, still := s.pending[c.TransactionID]; still { // the response may have come already
			tid := c.TransactionID
			tx.timer = time.AfterFunc(s.cfg.responseTimeout(), func() { s.timeout(tid) })
		}
		s.mu.Unlock()
	case !c.IsRequest() || (it.onResponse == nil && it.msg == nil):
	case c.Method == MethodREPORT:
		s.complete(it, nil, nil)
	default:
		resp, err := NewResponse(c, 200, "")
		s.complete(it, resp, err)
	}
}

// settle reports an outcome for an item that wants one.
func (s *MSRPSession) settle(it *outItem, resp *Chunk, err error) {
	if it.c.IsRequest() && (it.onResponse != nil || it.msg != nil) {
		s.complete(it, resp, err)
	}
}

// complete delivers a transaction's outcome, outside any lock.
func (s *MSRPSession) complete(item *outItem, resp *Chunk, err error) {
	if item.msg != nil {
		item.msg.answered(item, resp, err)
	}
	if item.onResponse != nil {
		item.onResponse(resp, err)
	}
}

func (s *MSRPSession) timeout(tid string) {
	s.mu.Lock()
	tx, ok := s.pending[tid]
	if ok {
		delete(s.pending, tid)
	}
	s.mu.Unlock()
	if ok {
		s.complete(tx.item, nil, &TransactionError{Code: 408, Comment: "No response within " + s.cfg.responseTimeout().String()})
		s.signal() // a message window may have opened
	}
}

// ---- Reader ---------------------------------------------------------------------

func (s *MSRPSession) reader() {
	for {
		c, err := s.t.readChunk(s.ctx, false) // Close unblocks it by closing the transport
		if err != nil {
			var pe *ChunkParseError
			if errors.As(err, &pe) {
				s.answerMalformed(pe)
				continue
			}
			if errors.Is(err, io.EOF) {
				// The peer closed its side: what we owe it (responses,
				// REPORTs) still goes out if it listens.
				s.flushOwed(s.cfg.responseTimeout())
			}
			s.end(err)
			s.mu.Lock()
			cause := s.err
			s.mu.Unlock()
			for _, m := range s.incoming.endAll(cause) {
				s.messageEnded(m)
			}
			return
		}
		s.touch()
		if c.IsRequest() {
			s.handleRequest(c)
		} else {
			s.handleResponse(c)
		}
	}
}

// answerMalformed answers a request the parser could not accept whole:
// 413 for one too large, 400 otherwise. REPORTs are never answered.
func (s *MSRPSession) answerMalformed(pe *ChunkParseError) {
	c := pe.Chunk
	if c == nil || !c.IsRequest() || c.Method == MethodREPORT {
		return
	}
	code := 400
	if errors.Is(pe, ErrChunkTooLarge) {
		code = 413
	}
	s.respond(c, code, "")
}

// respond queues a response, ahead of other chunks of the same kind.
func (s *MSRPSession) respond(req *Chunk, code int, comment string) {
	if !req.ResponseWanted(code) {
		return
	}
	resp, err := NewResponse(req, code, comment)
	if err != nil {
		return // no path to answer along
	}
	s.queueFromReader(&outItem{c: resp})
}

// queueFromReader queues a chunk the reader produced (a response or a
// REPORT). When the peer does not read what we write and MaxPending chunks
// wait already, the reader waits for room, and so stops reading: the peer
// is held back by TCP instead of the queue growing without bound.
func (s *MSRPSession) queueFromReader(item *outItem) {
	s.mu.Lock()
	for len(s.queue) >= s.cfg.MaxPending && s.err == nil {
		s.room.Wait()
	}
	if s.err == nil {
		s.queue = append(s.queue, item)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *MSRPSession) handleResponse(c *Chunk) {
	s.mu.Lock()
	tx, ok := s.pending[c.TransactionID]
	if ok {
		delete(s.pending, c.TransactionID)
		if tx.timer != nil {
			tx.timer.Stop()
		}
	}
	s.mu.Unlock()
	switch {
	case ok:
		s.complete(tx.item, c, nil)
		s.signal() // a message window may have opened
	case c.Code != 200 && s.cfg.OnIncoming != nil:
		s.cfg.OnIncoming(c) // e.g. a negative response to a Failure-Report: partial chunk
	}
}

func (s *MSRPSession) handleRequest(c *Chunk) {
	switch c.Method {
	case MethodSEND:
		s.handleSend(c)
	case MethodREPORT:
		// Never answered (RFC 4975 §7.1.2); one that names another session is dropped.
		if s.t.CheckIncomingSENDChunk(c) == nil {
			s.handleReport(c)
		}
	case MethodNICKNAME:
		if err := s.t.CheckIncomingSENDChunk(c); err != nil {
			s.respondError(c, err)
			return
		}
		_, hasNick := c.Headers.Lookup(HeaderUseNickname)
		_, hasSR := c.Headers.Lookup(HeaderSuccessReport)
		_, hasFR := c.Headers.Lookup(HeaderFailureReport)
		if !hasNick || hasSR || hasFR { // RFC 7701 §6.1
			s.respond(c, 400, "")
			return
		}
		s.deliver(c) // the application answers it with Respond
	default:
		s.respond(c, 501, "")
	}
}

// handleReport hands a REPORT for this session to the application; one
// without a valid Status is dropped. REPORTs are never answered.
func (s *MSRPSession) handleReport(c *Chunk) {
	if _, err := c.Status(); err != nil {
		return
	}
	s.deliver(c)
}

func (s *MSRPSession) respondError(c *Chunk, err error) {
	var te *TransactionError
	if errors.As(err, &te) {
		s.respond(c, te.Code, te.Comment)
		return
	}
	s.respond(c, 400, "")
}

// handleSend checks an incoming SEND, answers it, hands it on and sends the
// success REPORT it asks for.
func (s *MSRPSession) handleSend(c *Chunk) {
	if err := s.checkSend(c); err != nil {
		s.respondError(c, err)
		return
	}
	ended, err := s.incoming.add(c) // reassembly may refuse the chunk (413)
	if err != nil {
		s.respondError(c, err)
		s.failureReport(c, ended, err)
		s.messageEnded(ended)
		return
	}
	s.respond(c, 200, "")
	s.deliver(c)
	if !s.cfg.DisableAutomaticReports && len(c.Data) > 0 {
		if yes, _ := c.SuccessReport(); yes {
			if r, err := s.makeReport(c, 200, ""); err == nil {
				s.queueFromReader(&outItem{c: r})
			}
		}
	}
	s.messageEnded(ended)
	if s.cfg.OnIncoming == nil && s.cfg.OnMessage != nil && !s.incoming.holds(c) {
		s.t.ReleaseChunk(c) // its bytes are stored; nobody else has the chunk
	}
}

// failureReport tells the sender that a message failed after some of it had
// been accepted with 200 (RFC 4975 §7.1.2): a REPORT with the failure's
// code covering the bytes accepted, when Failure-Report is yes or partial.
func (s *MSRPSession) failureReport(c *Chunk, m *IncomingMessage, err error) {
	var te *TransactionError
	if m == nil || m.Received == 0 || !errors.As(err, &te) {
		return
	}
	if fr, _ := c.FailureReport(); fr == FailureReportNo {
		return
	}
	first := c.Clone()
	first.Data = nil
	r, rerr := s.makeReport(first, te.Code, te.Comment)
	if rerr != nil {
		return
	}
	r.Headers.Set(HeaderByteRange, ByteRange{Start: 1, End: m.Received, Total: m.Size}.String())
	s.queueFromReader(&outItem{c: r})
}

func (s *MSRPSession) messageEnded(m *IncomingMessage) {
	if m != nil && s.cfg.OnMessage != nil {
		s.cfg.OnMessage(m)
	}
}

// checkSend applies RFC 4975's rules to an incoming SEND: paths (400, 481),
// well-formed headers (400), a Content-Type for any body (415 without it),
// and one of AcceptTypes (415).
func (s *MSRPSession) checkSend(c *Chunk) error {
	if err := s.t.CheckIncomingSENDChunk(c); err != nil {
		return err
	}
	if _, err := c.FailureReport(); err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	if _, err := c.SuccessReport(); err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	for _, check := range []func() error{
		func() error { _, err := c.ByteRange(); return err },
		func() error { _, err := c.MessageID(); return err },
	} {
		if err := check(); err != nil && !errors.Is(err, ErrHeaderMissing) {
			return &TransactionError{Code: 400, Comment: err.Error()}
		}
	}
	if len(c.Data) == 0 {
		return nil
	}
	ct, err := c.ContentType()
	if errors.Is(err, ErrHeaderMissing) {
		return &TransactionError{Code: 415, Comment: "Content-Type header missing"}
	}
	if err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	if !ContainsMIMEType(s.cfg.AcceptTypes, ct) {
		return &TransactionError{Code: 415, Comment: "Unsupported media type"}
	}
	return nil
}

// ContainsMIMEType reports whether mediaType (parameters are ignored) is
// matched by one of patterns: "*", an exact type, or "type/*". Matching
// ignores case. msrplib's contains_mime_type.
func ContainsMIMEType(patterns []string, mediaType string) bool {
	mt, _, _ := strings.Cut(mediaType, ";")
	mt = strings.TrimSpace(mt)
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "*", strings.EqualFold(p, mt):
			return true
		case strings.HasSuffix(p, "/*"):
			prefix := p[:len(p)-1] // "type/"
			if len(mt) > len(prefix) && strings.EqualFold(mt[:len(prefix)], prefix) {
				return true
			}
		}
	}
	return false
}

func (s *MSRPSession) deliver(c *Chunk) {
	if s.cfg.OnIncoming != nil {
		s.cfg.OnIncoming(c)
	}
}

// ---- Keepalive ------------------------------------------------------------------

func (s *MSRPSession) keepalive() {
	interval := s.cfg.KeepaliveInterval
	if interval == 0 {
		interval = DefaultKeepaliveInterval
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			return
		case <-s.flush:
			return
		}
		idle := time.Since(time.Unix(0, s.lastActivity.Load()))
		if idle < interval {
			timer.Reset(interval - idle)
			continue
		}
		_, err := s.DeliverChunk(s.ctx, s.t.MakeSendRequest("", nil, 1, 0))
		var te *TransactionError
		if errors.As(err, &te) && te.Code == 408 {
			s.end(fmt.Errorf("msrp: keepalive got no response: %w", err))
			return
		}
		if err != nil && s.State() != StateConnected {
			return
		}
		timer.Reset(interval)
	}
}

// ---- Ending ---------------------------------------------------------------------

// flushOwed waits, up to timeout, for the writer to write the single
// chunks queued (responses and REPORTs), after the peer stopped sending.
func (s *MSRPSession) flushOwed(timeout time.Duration) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		owed := len(s.queue) + s.inWrite
		s.mu.Unlock()
		if owed == 0 {
			return
		}
		select {
		case <-s.wrote:
		case <-timer.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// Shutdown ends the session gracefully: no new chunks are accepted, what is
// queued is written (messages to their end), responses still awaited are
// waited for until ctx ends, then the connection is closed. It returns when
// every goroutine of the session has ended: nil, or ctx's error if ctx ended
// first (the session is then closed at once).
func (s *MSRPSession) Shutdown(ctx context.Context) error {
	if s.advanceState(StateFlushing) { // only from CONNECTED, only once
		close(s.flush)
	}
	s.signal()
	// Wait for the writer to empty the queue and the last responses.
	for {
		s.mu.Lock()
		idle := len(s.queue) == 0 && len(s.messages) == 0 && len(s.pending) == 0 && s.inWrite == 0
		s.mu.Unlock()
		if idle || s.State() >= StateDone {
			break
		}
		select {
		case <-ctx.Done():
			s.Close()
			<-s.done
			return ctx.Err()
		case <-s.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.Close()
	<-s.done
	return nil
}

// Close ends the session at once: the connection is closed, queued chunks
// are dropped, and every pending transaction fails with ErrSessionClosed.
// It returns when every goroutine of the session has ended, and is safe to
// call more than once.
func (s *MSRPSession) Close() error {
	s.end(ErrSessionClosed)
	<-s.done
	return nil
}

// end stops the session because of err, once: it closes the transport and
// fails everything still waiting, at once, with the cause.
func (s *MSRPSession) end(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = s.closedError(err)
		if err != ErrSessionClosed {
			s.cause = err
		}
		queue, pending, messages := s.queue, s.pending, s.messages
		s.queue, s.pending, s.messages = nil, map[string]*transaction{}, nil
		s.room.Broadcast()
		s.mu.Unlock()
		s.advanceState(StateClosing)
		s.cancel()
		s.t.Close()
		for _, tx := range pending {
			if tx.timer != nil {
				tx.timer.Stop()
			}
			s.complete(tx.item, nil, s.err)
		}
		for _, item := range queue {
			s.complete(item, nil, s.err)
		}
		for _, m := range messages {
			m.finish(s.err)
		}
	})
}

// closedError wraps a cause so that it matches ErrSessionClosed.
func (s *MSRPSession) closedError(err error) error {
	if errors.Is(err, ErrSessionClosed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrSessionClosed, err)
}
