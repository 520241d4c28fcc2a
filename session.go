package msrp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Session defaults, msrplib's where it has them.
const (
	DefaultResponseTimeout   = 30 * time.Second // RFC 4975 §7.1.1 transaction timeout
	DefaultKeepaliveInterval = 60 * time.Second
	DefaultMaxPending        = 4096 // chunks queued, being written or awaiting a response
)

// Bounds on what waits for the callback goroutine. Once this many
// callbacks, or callbacks holding this many bytes of what the peer sent,
// wait to run, the session stops reading: TCP then holds the peer back.
// While Shutdown waits for the answers to our requests, which may be
// behind the peer's own requests, the bounds are wider.
const (
	maxBacklogChunks      = 256
	maxBacklogBytes       = 1 << 20
	maxFlushBacklogChunks = 4096
	maxFlushBacklogBytes  = 16 << 20
)

// ErrTooManyPending is returned by SendChunk when MaxPending chunks are
// already queued, being written or awaiting their response.
var ErrTooManyPending = errors.New("msrp: too many chunks pending")

// SessionState is where a session is in its life.
type SessionState int32

const (
	StateConnected SessionState = iota // sending and receiving
	StateFlushing                      // Shutdown called: finishing what was sent and owed
	StateClosing                       // ended: the connection is closed, outcomes are being delivered
	StateDone                          // every goroutine has ended and every callback has returned
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

// ParseSessionState reads a state's name as String prints it.
func ParseSessionState(name string) (SessionState, error) {
	for st := StateConnected; st <= StateDone; st++ {
		if name == st.String() {
			return st, nil
		}
	}
	return 0, fmt.Errorf("msrp: unknown session state %q", name)
}

// SessionConfig configures an MSRPSession. The zero value accepts every
// content type, sends success REPORTs when asked for, and uses msrplib's
// timers (30 s for responses, a keepalive after 60 s of silence).
//
// The callbacks here, in MessageConfig, in MessageOptions and given to
// SendChunk run one at a time, in the order of the events they report, on
// the session's callback goroutine, outside every lock of the library. They
// may call any method of the session, Close and Shutdown included. While a
// callback runs, the session goes on reading until 256 callbacks (or 1 MiB
// of what they hold) wait for it, then stops reading until it returns: a
// callback that blocks for long, or waits for the peer while the peer keeps
// sending, holds the session up; such work belongs on a goroutine of its
// own. (While Shutdown waits for its answers, 4096 callbacks and 16 MiB.)
type SessionConfig struct {
	// AcceptTypes lists the media types accepted in incoming SENDs, with
	// "*" and "type/*" wildcards (SDP a=accept-types); nil means {"*"}.
	// Parameters of an incoming Content-Type are ignored when matching.
	AcceptTypes []string
	// OnIncoming receives every accepted SEND chunk (after it was
	// answered), REPORT and NICKNAME requests unless OnReport and
	// OnNickname take them, and negative responses that match no pending
	// transaction. It is msrplib's way, for applications that handle
	// chunks themselves: when it is set and OnMessage is not, messages are
	// not put together, and Receive is off.
	OnIncoming func(s *MSRPSession, c *Chunk)
	// OnReport receives each REPORT about a message we sent (RFC 4975
	// §7.1.2), decoded. When it is nil, REPORTs go to OnIncoming.
	OnReport func(s *MSRPSession, r *Report)
	// OnNickname answers a NICKNAME request (RFC 7701) with the status
	// code it returns: 200 to take the nickname, 425 when it is in use,
	// 403 when it is not allowed. When it is nil, NICKNAME requests go to
	// OnIncoming, which answers them with Respond; with neither set they
	// get 501.
	OnNickname func(s *MSRPSession, nickname string) int
	// DisableAutomaticReports stops the session from sending the success
	// REPORTs that Success-Report: yes asks for (msrplib's
	// automatic_reports=False); send them with SendReport instead.
	DisableAutomaticReports bool
	// ResponseTimeout bounds the wait for a transaction response, and each
	// write to the connection; 0 means DefaultResponseTimeout. A chunk that
	// gets no response in time is answered locally with 408. While the
	// session stops reading because messages wait for Receive, the timeout
	// stands still, but no request waits longer than twice ResponseTimeout
	// (see Receive).
	ResponseTimeout time.Duration
	// KeepaliveInterval is how long the connection may stay silent before
	// the session sends an empty SEND to check it; 0 means
	// DefaultKeepaliveInterval, negative turns keepalives off. A keepalive
	// that gets no response (408) closes the session; other answers are
	// tolerated, as peers differ in how they treat empty SENDs.
	KeepaliveInterval time.Duration
	// MaxPending bounds the chunks queued, being written or awaiting a
	// response; 0 means DefaultMaxPending.
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

func (c *SessionConfig) keepaliveInterval() time.Duration {
	if c.KeepaliveInterval == 0 {
		return DefaultKeepaliveInterval
	}
	return c.KeepaliveInterval
}

// How a session's concurrency works (ARCHITECTURE.md has the longer form):
//
//   - mu owns every field that follows it in MSRPSession, and the fields of
//     outItem, OutgoingMessage and inMessage that say so. Each change is
//     made with mu held; mu is never held for I/O or application code. What
//     must follow a change but may not run under mu (logging, closing the
//     transport) is appended to post and run by unlock.
//   - The reader reads without mu and handles each chunk with it; before it
//     reads on, it waits (roomWake, closing) while the answers queued reach
//     MaxPending or the callback backlog is full.
//   - The writer takes a batch with mu, writes without it, and settles with
//     it; it waits on writerWake, and is the only writer to the transport.
//   - Timers (response deadlines, keepalive) are AfterFuncs that take mu.
//   - The callback goroutine runs application code in order, taking mu only
//     to take the next batch and to count down the backlog; Done closes when
//     it has run the last one after ioDone.
//   - An outcome is delivered only by settleLocked, once: the first caller
//     for an item wins. endLocked, once, fails everything awaited, closes
//     closing, and closes the transport after unlock; the reader, the writer
//     and relay renewal then return (ioDone), which is all Close waits for.

// MSRPSession runs an MSRP session over a bound transport: msrplib's
// MSRPSession. It answers incoming requests, tracks the transactions of
// outgoing ones with timeouts, sends REPORTs, keeps the connection alive,
// and sends and receives whole messages of any size (see SendMessage and
// MessageConfig). It is safe for concurrent use.
//
// Every outcome is delivered exactly once: each onResponse given to
// SendChunk, each DeliverChunk and each OutgoingMessage.Wait, whatever the
// interleaving of responses, timeouts, write failures, the peer leaving,
// Close and Shutdown. Close and Shutdown may be called from any goroutine,
// callbacks included, any number of times.
//
// The state of a session (its queues, transactions, timers and state) is
// guarded by one mutex, which is never held during I/O or while a callback
// runs. Three goroutines serve it: a reader, a writer (the only code that
// writes to the transport), and the callback goroutine, which runs the
// application's callbacks one at a time (see SessionConfig). Timers run as
// time.AfterFunc functions that take the mutex briefly.
type MSRPSession struct {
	t   *MSRPTransport
	cfg SessionConfig

	// Set by NewMSRPSession and never changed.
	ctx          context.Context // ends with the session: relay renewal watches it
	cancel       context.CancelFunc
	closing      chan struct{} // closed when the session ends: every wait's way out
	ioDone       chan struct{} // closed once the reader, the writer and relay renewal have returned
	done         chan struct{} // closed once, after that, every callback has returned
	writerWake   chan struct{} // the writer has work, or the session ended
	callbackWake chan struct{} // the callback goroutine has work
	roomWake     chan struct{} // the reader may have room to read on
	wbuf         []byte        // the writer's encoding buffer; only the writer touches it

	mu sync.Mutex // guards everything below; held for state changes only, never for I/O or callbacks
	//
	state    SessionState
	err      error // what work fails with once the session has ended: wraps ErrSessionClosed
	cause    error // why the session ended; nil for Shutdown and Close
	peerGone error // the peer stopped sending (io.EOF): end once the answers owed are written
	lost     bool  // the end failed work that was queued or awaited

	queue       []*outItem          // single chunks (requests, responses, REPORTs), in order
	messages    []*OutgoingMessage  // messages with chunks still to send, served in turn
	writing     int                 // chunks the writer has taken and not yet settled
	writingOwn  int                 // of those, the session's own (keepalive)
	outstanding int                 // chunks queued, being written or awaiting a response
	byTID       map[string]*outItem // requests until they are settled (written, or answered)
	seq         uint64              // numbers items in the order they were made
	onWire      []*outItem          // written requests awaiting a response, oldest first
	onWireLive  int                 // how many of onWire are still awaiting one
	respTimer   *time.Timer         // fires at the response deadline of onWire's oldest
	timerSet    bool

	lastActivity   time.Time
	keepaliveTimer *time.Timer
	keepaliveOut   bool

	flushed      chan struct{}   // made by Shutdown: closed once nothing of ours is outstanding
	closeCtx     context.Context // Shutdown's: bounds the graceful close that ends it
	flushTarget  int64           // Shutdown answers the chunks read up to this count
	handled      int64           // chunks the reader has read and handled
	readerPaused bool            // the reader waits for room: the peer is there, unread
	clockStopped bool            // it waits for Receive: response deadlines stand still (see clockLocked)
	stoppedAt    time.Time       // since when
	stoppedFor   time.Duration   // how long the clock has stood still before
	received     receiveQueue    // messages for Receive
	answersOwed  int             // answers a callback is deciding (OnNickname)
	sending      int             // messages started by SendMessage and not yet ended
	sendRoom     chan struct{}   // closed and replaced when one of those ends

	incoming     incomingMessages
	callbacks    []callback // waiting for the callback goroutine
	backlog      int        // those among them that hold what the peer sent
	backlogBytes int        // and the bytes they hold
	post         []func()   // internal work to run once mu is released (see unlock)
	ioRunning    int        // goroutines that ioDone waits for

	read atomic.Int64 // chunks the reader has read, counted before it takes mu
}

// callback is one piece of application code for the callback goroutine,
// with the bytes of what the peer sent that it holds.
type callback struct {
	fn    func()
	bytes int
}

// outItem is one chunk to write, with what to do once it is written or
// answered. Its fields after c are guarded by the session's mutex.
type outItem struct {
	c          *Chunk
	onResponse func(*Chunk, error)          // SendChunk's callback: run on the callback goroutine
	result     chan deliverResult           // DeliverChunk's: room for one, sent to once
	internal   func(resp *Chunk, err error) // the session's own (keepalive): run with mu held
	msg        *OutgoingMessage             // the message this chunk belongs to, if any
	progress   int64                        // the message's bytes up to this chunk's end
	checked    bool                         // the encoder's checks passed when it was queued

	seq          uint64    // its place in the order items were made
	queued       bool      // in s.queue
	written      bool      // on the wire
	deadline     time.Time // when it times out, once written, on the response clock (clockLocked)
	hardDeadline time.Time // when it times out whatever the clock says: twice ResponseTimeout
	settled      bool      // its outcome was delivered, or nobody wants it any more
}

type deliverResult struct {
	resp *Chunk
	err  error
}

// hasOutcome tells whether anyone waits for the item's outcome.
func (it *outItem) hasOutcome() bool {
	return it.onResponse != nil || it.result != nil || it.internal != nil || it.msg != nil
}

// NewMSRPSession starts a session over a bound transport. The session owns
// the transport from now on and closes it when it ends. Callbacks receive the
// session, so they may run as soon as NewMSRPSession has been called: a
// chunk kept from the binding is delivered at once.
func NewMSRPSession(t *MSRPTransport, cfg SessionConfig) *MSRPSession {
	if cfg.AcceptTypes == nil {
		cfg.AcceptTypes = []string{"*"}
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	s := &MSRPSession{
		t:            t,
		cfg:          cfg,
		closing:      make(chan struct{}),
		ioDone:       make(chan struct{}),
		done:         make(chan struct{}),
		writerWake:   make(chan struct{}, 1),
		callbackWake: make(chan struct{}, 1),
		roomWake:     make(chan struct{}, 1),
		byTID:        map[string]*outItem{},
		lastActivity: time.Now(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.incoming.init(&s.cfg.MessageConfig, cfg.OnMessage != nil || cfg.OnIncoming == nil)
	s.received.arrived = make(chan struct{})
	s.sendRoom = make(chan struct{})
	if interval := s.cfg.keepaliveInterval(); interval > 0 {
		s.keepaliveTimer = time.AfterFunc(interval, s.keepaliveDue)
	}
	s.ioRunning = 2
	maintain := t.maintain
	if maintain != nil {
		s.ioRunning++
	}
	go s.reader()
	go s.writer()
	if maintain != nil {
		go func() {
			defer s.ioExited()
			maintain(s.ctx, s.DeliverChunk)
		}()
	}
	go s.runCallbacks()
	return s
}

// Transport returns the session's transport, for its paths and addresses.
// Do not read from or write to it while the session runs.
func (s *MSRPSession) Transport() *MSRPTransport { return s.t }

// State returns the session's state.
func (s *MSRPSession) State() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Done is closed when the session has ended, its goroutines are gone and
// every callback has returned. Do not wait for it in a callback: the
// callback goroutine is one of those it waits for.
func (s *MSRPSession) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, when the end lost something. It is nil
// while the session runs, after Shutdown or Close, and after the peer
// closed the connection cleanly: at a chunk boundary, with nothing queued,
// awaited or half received. When the peer closed it cleanly but something
// was lost (a request of ours unanswered, a message cut short), it is
// ErrPeerClosed; otherwise it is the connection's error, such as
// io.ErrUnexpectedEOF for a connection cut in the middle of a chunk.
func (s *MSRPSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// unlock releases mu, then runs the internal work gathered while it was
// held: logging, and closing the transport. Every lock of mu that may change
// the session's state is released with unlock.
func (s *MSRPSession) unlock() {
	post := s.post
	s.post = nil
	s.mu.Unlock()
	for _, f := range post {
		f()
	}
}

// setStateLocked moves the state forward to st, never back.
func (s *MSRPSession) setStateLocked(st SessionState) {
	if st <= s.state {
		return
	}
	was := s.state
	s.state = st
	s.post = append(s.post, func() { s.t.Logger.event("session state", "state", st.String(), "was", was.String()) })
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// touchLocked records traffic, which puts the keepalive off.
func (s *MSRPSession) touchLocked() { s.lastActivity = time.Now() }

// ---- Callbacks ------------------------------------------------------------------

// callLocked hands application code, which holds n bytes of what the peer
// sent, to the callback goroutine. It counts towards the backlog that stops
// the reader.
func (s *MSRPSession) callLocked(n int, fn func()) {
	s.callbacks = append(s.callbacks, callback{fn: fn, bytes: n})
	s.backlog++
	s.backlogBytes += n
	signal(s.callbackWake)
}

// backlogFullLocked tells whether the reader should wait for the callback
// goroutine before it reads on.
func (s *MSRPSession) backlogFullLocked() bool {
	if s.state == StateFlushing {
		return s.backlog >= maxFlushBacklogChunks || s.backlogBytes >= maxFlushBacklogBytes
	}
	return s.backlog >= maxBacklogChunks || s.backlogBytes >= maxBacklogBytes
}

// runCallbacks is the callback goroutine: it runs the application's
// callbacks in order until the session has ended and nothing is left.
func (s *MSRPSession) runCallbacks() {
	for {
		s.mu.Lock()
		batch := s.callbacks
		s.callbacks = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-s.callbackWake:
				continue
			case <-s.ioDone:
			}
			// Nothing reads or writes any more, so nothing new can come
			// but from callbacks themselves.
			s.mu.Lock()
			if len(s.callbacks) > 0 {
				s.mu.Unlock()
				continue
			}
			s.setStateLocked(StateDone)
			s.unlock()
			close(s.done)
			return
		}
		for i, cb := range batch {
			cb.fn()
			batch[i] = callback{} // let go of what it holds
			s.mu.Lock()
			s.backlog--
			s.backlogBytes -= cb.bytes
			s.mu.Unlock()
			signal(s.roomWake)
			signal(s.writerWake) // a message may wait for room for its progress
		}
	}
}

// ---- Ending ---------------------------------------------------------------------

// Shutdown ends the session gracefully: no new chunks are accepted; what is
// queued is written (messages to their end), and so are the responses owed
// to requests received before Shutdown; the responses to our own requests
// are waited for; then the connection is closed. It returns once the
// connection is closed and the reader and writer have returned. It does not
// wait for callbacks, so it may be called from one.
//
// It returns nil when nothing was lost: the flush completed, or the session
// had ended before with nothing left to send or await (the peer closing the
// connection when all was done, say). When the session ended first and
// failed work that was queued or awaited, it returns why it ended; if ctx
// ends first, ctx's error, after closing the session at once.
func (s *MSRPSession) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.state == StateConnected {
		s.setStateLocked(StateFlushing)
		s.closeCtx = ctx
		s.flushed = make(chan struct{})
		s.flushTarget = s.read.Load() // what the reader has read by now is answered
		if s.keepaliveTimer != nil {
			s.keepaliveTimer.Stop()
		}
		s.checkFlushedLocked()
		signal(s.roomWake) // the reader may read further ahead now
	}
	flushed := s.flushed
	s.unlock()
	if flushed != nil {
		select {
		case <-flushed: // done already: whatever ctx says
		default:
			select {
			case <-flushed:
			case <-s.closing:
			case <-ctx.Done():
				s.end(ErrSessionClosed)
				<-s.ioDone
				return ctx.Err()
			}
		}
		s.end(nil)
	}
	<-s.ioDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return s.cause
	}
	return nil
}

// checkFlushedLocked closes s.flushed once a Shutdown has nothing left to
// wait for.
func (s *MSRPSession) checkFlushedLocked() {
	if s.flushed == nil || s.state != StateFlushing {
		return
	}
	if s.outgoingLeftLocked() || s.handled < s.flushTarget {
		return // the keepalive is not waited for: nobody asked for it
	}
	select {
	case <-s.flushed:
	default:
		close(s.flushed)
	}
}

// Close ends the session at once: the connection is closed, queued chunks
// are dropped, and every outcome still awaited fails with ErrSessionClosed.
// It returns once the connection is closed and the reader and writer have
// returned: that is bounded by a write in progress, which the closed
// connection stops. It does not wait for callbacks, so it may be called from
// one; the failures it causes are delivered after it returns, and Done is
// closed after the last. It is safe to call more than once.
func (s *MSRPSession) Close() error {
	s.end(ErrSessionClosed)
	<-s.ioDone
	return nil
}

// workLeftLocked tells whether anything of the application's or owed to
// the peer is unfinished: queued, being written, awaiting its response, or
// a message going either way. The session's own keepalive does not count.
func (s *MSRPSession) workLeftLocked() bool {
	return len(s.incoming.active) > 0 || s.outgoingLeftLocked()
}

// outgoingLeftLocked is workLeftLocked for what goes out.
func (s *MSRPSession) outgoingLeftLocked() bool {
	if len(s.messages) > 0 || s.writing > s.writingOwn || s.answersOwed > 0 {
		return true
	}
	for _, it := range s.queue {
		if it.internal == nil {
			return true
		}
	}
	for _, it := range s.byTID {
		if it.internal == nil {
			return true
		}
	}
	return false
}

// end stops the session because of cause (nil for a completed Shutdown,
// ErrSessionClosed for Close) the first time it is called.
func (s *MSRPSession) end(cause error) {
	s.mu.Lock()
	s.endLocked(cause)
	s.unlock()
}

// endLocked fails everything still waiting with the cause and closes the
// transport once mu is released.
func (s *MSRPSession) endLocked(cause error) {
	if s.state >= StateClosing {
		return
	}
	graceful := cause == nil // Shutdown's flush is done
	if graceful {
		cause = ErrSessionClosed
	}
	s.lost = s.lost || s.workLeftLocked()
	if cause == io.EOF { // the transport's word for the peer closing at a chunk boundary
		cause = ErrPeerClosed
	}
	s.err = closedError(cause)
	switch {
	case errors.Is(cause, ErrSessionClosed): // our own end
	case cause == ErrPeerClosed && !s.lost: // a clean end: nothing lost
	default:
		s.cause = cause
	}
	s.setStateLocked(StateClosing)
	close(s.closing)
	if s.respTimer != nil {
		s.respTimer.Stop()
	}
	if s.keepaliveTimer != nil {
		s.keepaliveTimer.Stop()
	}
	// Fail what is left in the order it was sent.
	left := make([]*outItem, 0, len(s.queue)+len(s.byTID))
	left = append(left, s.queue...)
	for _, it := range s.byTID {
		if !it.queued {
			left = append(left, it)
		}
	}
	slices.SortFunc(left, func(a, b *outItem) int { return cmp.Compare(a.seq, b.seq) })
	for _, it := range left {
		it.queued = false
		s.settleLocked(it, nil, s.err)
	}
	s.queue = nil
	for _, m := range s.messages {
		m.finishLocked(s.err)
	}
	s.messages = nil
	s.onWire, s.onWireLive = nil, 0
	s.incoming.endAll(s, s.err)
	signal(s.writerWake)
	signal(s.roomWake)
	closeCtx := s.closeCtx
	if closeCtx == nil {
		closeCtx = context.Background()
	}
	s.post = append(s.post, func() {
		s.cancel()
		if graceful {
			s.t.closeWithin(closeCtx) // TLS says close_notify, a WebSocket its close frame
		} else {
			s.t.closeNow()
		}
	})
}

// ioExited is called by each goroutine that ioDone waits for as it returns.
func (s *MSRPSession) ioExited() {
	s.mu.Lock()
	s.ioRunning--
	last := s.ioRunning == 0
	s.mu.Unlock()
	if last {
		close(s.ioDone)
	}
}

// closedError wraps a cause so that it matches ErrSessionClosed.
func closedError(err error) error {
	if errors.Is(err, ErrSessionClosed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrSessionClosed, err)
}
