package msrp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// Read buffering. An idle transport reads into a small buffer of its own
// and takes a large pooled one only while data is flowing, so that thousands
// of idle connections cost little memory. The parser copies what it keeps,
// so a buffer goes back to the pool as soon as its bytes are fed.
const (
	idleReadSize  = 512
	bulkReadSize  = 64 << 10
	inlineBodyMax = 16 << 10 // bodies up to this size are copied into one write
)

var bulkReadPool = sync.Pool{New: func() any { b := make([]byte, bulkReadSize); return &b }}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledWriteBuf is the largest encoding buffer kept for reuse: one
// chunk of the direct default size, headers included.
const maxPooledWriteBuf = 128 << 10

// MSRPTransport is one MSRP connection over a net.Conn, plain or TLS: the
// port of msrplib's MSRPTransport. It reads whole chunks, writes whole
// chunks, and knows the session's paths so that it can build requests and
// check incoming ones.
//
// ReadChunk may be called by one goroutine at a time and WriteChunk by any
// number: each chunk goes out in one piece. The path methods are safe for
// concurrent use.
type MSRPTransport struct {
	// Logger receives the traffic log; nil logs nothing.
	Logger *Logger
	// UseSessmatch makes CheckIncomingSENDChunk compare session ids only
	// (RFC 6714 CEMA, msrplib's use_sessmatch): needed when an ALG or SBC
	// rewrites a=path but not the paths inside MSRP.
	UseSessmatch bool

	conn     net.Conn
	vectored bool // conn writes several buffers in one system call (writev)
	framed   bool // conn is a MessageConn: one chunk per message

	// Of a message-framed connection, guarded by readMu: the chunks begun
	// in the message being read, and the error of a chunk it cut short,
	// due once what came before it has been returned.
	msgChunks  int
	framingCut error

	readMu   sync.Mutex
	parser   Parser
	pending  []byte  // read but not yet fed to the parser
	bulk     *[]byte // pooled buffer pending points into, if any
	idle     [idleReadSize]byte
	readFull bool     // the last read filled its buffer: more is likely waiting
	readErr  error    // sticky: EOF or a broken connection
	unread   []*Chunk // chunks set aside while binding, returned first

	writeMu  sync.Mutex
	writeErr error // sticky: a failed write leaves the stream unusable

	// valid remembers the paths and media types of this connection's
	// chunks once checked, for the encoder and the session's answers.
	valid validMemo

	pathMu     sync.RWMutex
	localURI   URI
	localPath  []URI  // relays between us and the peer, from Use-Path
	remotePath []URI  // the peer's full a=path
	toPath     string // To-Path of our requests, and From-Path we expect: localPath + remotePath
	fromPath   string // From-Path of our requests, and To-Path we expect: localURI

	closeOnce sync.Once
	closeErr  error

	// maintain, when set by the code that set the transport up, keeps it in
	// service while a session runs on it (renewing a relay reservation).
	// The session runs it on a goroutine of its own, with its DeliverChunk.
	maintain func(ctx context.Context, deliver deliverFunc)
	// onClose, when set by the code that set the transport up, runs once
	// when it closes (a server forgets the session then).
	onClose func()
	// smallReads keeps reads in the 512-byte buffer while a connection
	// binds, so that one that stalls holds no 64 KiB buffer.
	smallReads bool
}

// Limits on a connection that has not bound yet: a chunk, headers and
// body, must fit in bindingMaxChunk unless its paths are those expected
// (a server whose Complete has not come yet cannot know the peer's path).
const (
	bindingMaxChunk   = 32 << 10
	bindingMaxLine    = 4 << 10
	bindingMaxHeaders = 32
)

// bindingLimits applies the limits of an unbound connection, and check to
// the head of each chunk before its body is read (see Parser.checkHead).
// Once check has verified both paths of a chunk, that chunk and those
// after it may be as large as the transport's own limits allow: the peer
// is the one expected. done restores the transport's own limits once the
// connection is bound.
func (t *MSRPTransport) bindingLimits(check func(*Chunk) (verified bool, err error)) (done func()) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	saved := t.parser
	p := &t.parser
	p.MaxLineLength = min(orDefault(saved.MaxLineLength, DefaultMaxLineLength), bindingMaxLine)
	p.MaxHeaders = min(orDefault(saved.MaxHeaders, DefaultMaxHeaders), bindingMaxHeaders)
	p.MaxChunkSize = min(orDefault(saved.MaxChunkSize, DefaultMaxChunkSize), bindingMaxChunk)
	// Over a message-framed link a message is read whole before the parser
	// sees it, so the bound applies to messages too: there, a first chunk
	// is never lifted past bindingMaxChunk.
	t.applyMessageLimit()
	// The parser calls checkHead from Feed, with readMu held by the reader.
	p.checkHead = func(c *Chunk) error {
		verified, err := check(c)
		if verified {
			p.MaxChunkSize = saved.MaxChunkSize
		}
		return err
	}
	t.smallReads = true
	return func() {
		t.readMu.Lock()
		defer t.readMu.Unlock()
		p.MaxLineLength, p.MaxHeaders, p.MaxChunkSize = saved.MaxLineLength, saved.MaxHeaders, saved.MaxChunkSize
		p.checkHead = nil
		t.smallReads = false
		t.applyMessageLimit()
	}
}

// NewMSRPTransport wraps a connection. localURI is the last URI of our
// a=path. Set Logger and UseSessmatch before the first read or write.
func NewMSRPTransport(conn net.Conn, localURI URI) *MSRPTransport {
	t := &MSRPTransport{conn: conn, localURI: localURI}
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		t.vectored = true
	}
	t.formatPaths()
	return t
}

// formatPaths caches the path headers of our requests. Called with pathMu
// held for writing, or before the transport is shared.
func (t *MSRPTransport) formatPaths() {
	t.toPath = FormatPath(append(slices.Clone(t.localPath), t.remotePath...))
	t.fromPath = FormatPath([]URI{t.localURI})
}

// SetLimits sets the parser's limits (see Parser); zero keeps a default.
// Call it before the first read.
func (t *MSRPTransport) SetLimits(l Limits) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	t.parser.Limits = l
	t.applyMessageLimit()
}

// netConn returns the underlying connection, for tests and TLS state.
func (t *MSRPTransport) netConn() net.Conn { return t.conn }

// LocalAddr returns the local network address.
func (t *MSRPTransport) LocalAddr() net.Addr { return t.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (t *MSRPTransport) RemoteAddr() net.Addr { return t.conn.RemoteAddr() }

// Close closes the connection. It is safe to call more than once.
func (t *MSRPTransport) Close() error {
	return t.close(t.conn)
}

// closeWithin is Close, but once ctx ends it stops waiting for the
// goodbye (TLS close_notify, a WebSocket close frame answered) and closes
// at once.
func (t *MSRPTransport) closeWithin(ctx context.Context) error {
	if ctx.Done() == nil {
		return t.Close()
	}
	done := make(chan error, 1)
	go func() { done <- t.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	switch c := t.conn.(type) {
	case *tls.Conn:
		c.NetConn().Close() // ends a close_notify write the peer does not read
	case *messageNetConn:
		c.abortRead() // coder/websocket closes the connection, which ends its wait
		c.closeNow()  // and a MessageConn that does not, or is not reading, is told to
	}
	return <-done
}

// closeNow closes the connection without the TLS close_notify, which
// Close writes (and waits up to 5 s for, if the peer reads nothing): for
// a connection that is being abandoned, not ended gracefully.
func (t *MSRPTransport) closeNow() error {
	switch c := t.conn.(type) {
	case *tls.Conn:
		return t.close(c.NetConn())
	case *messageNetConn:
		return t.close(closerFunc(c.closeNow))
	}
	return t.close(t.conn)
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (t *MSRPTransport) close(c io.Closer) error {
	t.closeOnce.Do(func() {
		t.closeErr = c.Close()
		t.Logger.event("closed connection", "local", t.LocalAddr().String(), "remote", t.RemoteAddr().String())
		if t.onClose != nil {
			t.onClose()
		}
	})
	return t.closeErr
}

// ---- Paths -------------------------------------------------------------------

// LocalURI returns our URI, the last element of our a=path.
func (t *MSRPTransport) LocalURI() URI {
	t.pathMu.RLock()
	defer t.pathMu.RUnlock()
	return t.localURI
}

// SetLocalPath sets the relays between us and the peer (a relay's
// Use-Path); nil without relays.
func (t *MSRPTransport) SetLocalPath(relays []URI) {
	t.pathMu.Lock()
	defer t.pathMu.Unlock()
	t.localPath = slices.Clone(relays)
	t.formatPaths()
}

// SetRemotePath sets the peer's full path, its a=path from SDP.
func (t *MSRPTransport) SetRemotePath(fullRemotePath []URI) {
	t.pathMu.Lock()
	defer t.pathMu.Unlock()
	t.remotePath = slices.Clone(fullRemotePath)
	t.formatPaths()
}

// FullLocalPath returns the relays and our URI: what goes in our a=path.
func (t *MSRPTransport) FullLocalPath() []URI {
	t.pathMu.RLock()
	defer t.pathMu.RUnlock()
	return append(slices.Clone(t.localPath), t.localURI)
}

// FullRemotePath returns the peer's a=path.
func (t *MSRPTransport) FullRemotePath() []URI {
	t.pathMu.RLock()
	defer t.pathMu.RUnlock()
	return slices.Clone(t.remotePath)
}

// ---- Building chunks --------------------------------------------------------

// MakeRequest returns a request with a fresh transaction id, To-Path set to
// our relays followed by the peer's path, and From-Path set to our URI.
func (t *MSRPTransport) MakeRequest(method string) *Chunk {
	t.pathMu.RLock()
	to, from := t.toPath, t.fromPath
	t.pathMu.RUnlock()
	c := &Chunk{TransactionID: NewTransactionID(), Method: method, ContFlag: FlagEnd}
	c.Headers = make(Header, 2, 6)
	c.Headers[0] = HeaderField{HeaderToPath, to}
	c.Headers[1] = HeaderField{HeaderFromPath, from}
	return c
}

// MakeSendRequest returns a SEND carrying data as bytes start..start+len-1
// of a message of total bytes, msrplib's make_send_request:
//   - an empty messageID gets a fresh one;
//   - start 0 means 1;
//   - total 0 means the message ends with this chunk (start-1+len(data));
//     Unknown writes "*";
//   - the flag is FlagEnd when the chunk reaches the known total, else
//     FlagContinued;
//   - the Byte-Range end is "*" when the chunk is over 2048 bytes, since RFC
//     4975 §7.1 requires such chunks to be interruptible.
//
// No Content-Type is set; add one when data is not empty.
func (t *MSRPTransport) MakeSendRequest(messageID string, data []byte, start, total int64) *Chunk {
	c := t.MakeRequest(MethodSEND)
	if messageID == "" {
		messageID = NewMessageID()
	}
	if start <= 0 {
		start = 1
	}
	end := start - 1 + int64(len(data))
	if total == 0 {
		total = end
	}
	r := ByteRange{Start: start, End: end, Total: total}
	if len(data) > 2048 {
		r.End = Unknown
	}
	c.Headers = append(c.Headers,
		HeaderField{HeaderMessageID, messageID},
		HeaderField{HeaderByteRange, r.String()})
	c.Data = data
	c.ContFlag = FlagContinued
	if total != Unknown && end >= total {
		c.ContFlag = FlagEnd
	}
	return c
}

// ---- Checking chunks --------------------------------------------------------

// CheckIncomingSENDChunk checks the paths of a received request, msrplib's
// check_incoming_SEND_chunk, and returns nil or a *TransactionError to answer
// it with: 400 when To-Path or From-Path is missing or malformed, 481 when
// they do not name this session. Strictly, To-Path must be our URI alone and
// From-Path our relays followed by the peer's path (RFC 4975 §7.3); with
// UseSessmatch only the session ids of our URI and of the peer's URI are
// compared (RFC 6714).
func (t *MSRPTransport) CheckIncomingSENDChunk(c *Chunk) error {
	if !t.UseSessmatch {
		// Fast path: the peer wrote the paths exactly as we would.
		t.pathMu.RLock()
		same := t.toPath != "" && c.Headers.Get(HeaderToPath) == t.fromPath && c.Headers.Get(HeaderFromPath) == t.toPath
		t.pathMu.RUnlock()
		if same {
			return nil
		}
	}
	to, err := c.ToPath()
	if err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	from, err := c.FromPath()
	if err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	t.pathMu.RLock()
	defer t.pathMu.RUnlock()
	if t.UseSessmatch {
		if len(to) != 1 || to[0].SessionID != t.localURI.SessionID {
			return &TransactionError{Code: 481, Comment: "To-Path session id does not match"}
		}
		if len(t.remotePath) == 0 || from[len(from)-1].SessionID != t.remotePath[len(t.remotePath)-1].SessionID {
			return &TransactionError{Code: 481, Comment: "From-Path session id does not match"}
		}
		return nil
	}
	if len(to) != 1 || !to[0].Equal(t.localURI) {
		return &TransactionError{Code: 481, Comment: "Invalid To-Path"}
	}
	if !pathEqual(from, append(slices.Clone(t.localPath), t.remotePath...)) {
		return &TransactionError{Code: 481, Comment: "Invalid From-Path"}
	}
	return nil
}

// checkIncomingREPORT checks the paths of a REPORT. Besides the peer's, it
// accepts one that a relay on the path generated (RFC 4976 §7): such a
// relay writes only its own URI in From-Path, and each relay on the way
// back puts its own before it, so that the From-Path that reaches us is a
// beginning of the path we expect the peer's requests on (our relays, then
// the peer's), ending at the relay that reported.
func (t *MSRPTransport) checkIncomingREPORT(c *Chunk) error {
	err := t.CheckIncomingSENDChunk(c)
	if err == nil {
		return nil
	}
	to, terr := c.ToPath()
	from, ferr := c.FromPath()
	if terr != nil || ferr != nil {
		return err
	}
	t.pathMu.RLock()
	defer t.pathMu.RUnlock()
	full := append(slices.Clone(t.localPath), t.remotePath...)
	same := URI.Equal
	if t.UseSessmatch {
		same = func(a, b URI) bool { return a.SessionID == b.SessionID }
	}
	if len(to) != 1 || !same(to[0], t.localURI) || len(from) >= len(full) {
		return err
	}
	for i, u := range from {
		if !same(u, full[i]) {
			return err
		}
	}
	return nil
}

// ---- Reading ----------------------------------------------------------------

// ReadChunk returns the next chunk. It returns early with ctx.Err() when ctx
// ends; the transport stays usable, and a chunk that was partly read is
// completed by the next call. Over a message-framed link (WebSocket) it
// does not: a read that ctx ends closes the connection (coder/websocket
// does so), and later calls return that error.
//
// Bad input gives a *ChunkParseError and is otherwise skipped: the next call
// reads on. The caller answers the chunk it names, if any (400 for a
// malformed request, 413 for one over the size cap). When the peer closes
// the connection, ReadChunk returns io.EOF, or io.ErrUnexpectedEOF if a chunk
// was cut short; after that, and after any other read error, every call
// returns the same error.
func (t *MSRPTransport) ReadChunk(ctx context.Context) (*Chunk, error) {
	return t.readChunk(ctx, true)
}

// readChunk is ReadChunk; with watch false, ctx's cancellation is not
// watched: the session, whose reader ends only when the transport closes,
// saves the cost.
func (t *MSRPTransport) readChunk(ctx context.Context, watch bool) (*Chunk, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(t.unread) > 0 {
		c := t.unread[0]
		t.unread[0] = nil
		t.unread = t.unread[1:]
		return c, nil
	}
	if t.readErr != nil {
		return nil, t.readErr
	}
	if watch {
		stop := watchDeadline(ctx, t.conn.SetReadDeadline)
		defer stop()
	}
	for {
		if err := t.framingCut; err != nil {
			t.framingCut = nil
			t.logIllegal(err)
			return nil, err
		}
		if len(t.pending) > 0 {
			starts := t.parser.starts
			c, n, err := t.parser.Feed(t.pending)
			t.pending = t.pending[n:]
			if t.framed {
				c, err = t.checkFraming(t.parser.starts-starts, c, err)
			}
			t.logIllegal(err)
			if len(t.pending) == 0 {
				if t.framed {
					t.pending = nil // the message's memory is the MessageConn's again
				}
				t.releaseBulk()
				t.parser.releaseBuffers() // idle: hold no large buffer, unless a body is under way
			}
			if c != nil {
				t.Logger.receivedChunk(c, t)
			}
			if c != nil || err != nil {
				return c, err
			}
			continue
		}
		if err := t.fill(); err != nil {
			if isTimeout(err) {
				return nil, ctxError(ctx, err)
			}
			return nil, err
		}
	}
}

// fill reads more bytes into pending; on failure it sets readErr, or
// returns a timeout error that leaves the transport usable.
func (t *MSRPTransport) fill() error {
	if t.framed {
		return t.readMessage()
	}
	buf := t.parser.bodySpace() // a body is flowing: read it where it will stay
	if buf == nil {
		buf = t.idle[:]
		if !t.smallReads && (t.parser.InChunk() || t.readFull) {
			t.bulk = bulkReadPool.Get().(*[]byte)
			buf = *t.bulk
		}
	}
	n, err := t.conn.Read(buf)
	t.pending = buf[:n]
	t.readFull = n == len(buf)
	if n == 0 {
		t.releaseBulk()
	}
	if err == nil || n > 0 {
		return nil // bytes first; a pending error comes back on the next read
	}
	return t.readFailed(err)
}

// readFailed takes a read's error: it sets readErr, or returns a timeout
// error that leaves the transport usable.
func (t *MSRPTransport) readFailed(err error) error {
	if isTimeout(err) && !t.framed {
		return err
	}
	switch {
	case errors.Is(err, io.EOF) && t.parser.InChunk():
		t.readErr = io.ErrUnexpectedEOF
	case errors.Is(err, io.EOF):
		t.readErr = io.EOF
	default:
		t.readErr = fmt.Errorf("msrp: read: %w", err)
	}
	return t.readErr
}

func (t *MSRPTransport) releaseBulk() {
	if t.bulk != nil {
		bulkReadPool.Put(t.bulk)
		t.bulk = nil
		t.pending = nil
	}
}

// ReleaseChunk lets the transport reuse the memory of a chunk's body once
// the caller is done with it, so that a steady stream of large chunks is
// read into the same few buffers instead of a new one each (which costs an
// allocation, garbage collection, and fresh pages for the kernel to fill).
// Neither the chunk's Data nor anything sliced from it may be used
// afterwards. Calling it is optional; bodies of 32 KiB or more are kept.
func (t *MSRPTransport) ReleaseChunk(c *Chunk) {
	if c != nil {
		recycleBody(c.Data)
		c.Data = nil
	}
}

func (t *MSRPTransport) logIllegal(err error) {
	if err == nil {
		return
	}
	var pe *ChunkParseError
	if errors.As(err, &pe) {
		t.Logger.receivedIllegalData(pe.Data, err, t)
	}
}

// unreadChunks sets chunks aside, in order, so that the next ReadChunk
// calls return them.
func (t *MSRPTransport) unreadChunks(cs ...*Chunk) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	t.unread = append(t.unread, cs...)
}

// ---- Writing ----------------------------------------------------------------

// WriteChunk writes one chunk, whole, even when other goroutines write at the
// same time. A chunk that cannot be encoded is refused without touching the
// connection. If the write fails or ctx ends part-way, the stream is broken:
// the transport closes and every later write returns the error.
func (t *MSRPTransport) WriteChunk(ctx context.Context, c *Chunk) error {
	return t.writeChunk(ctx, c, false)
}

// writeChunk is WriteChunk for a chunk that may have passed the encoder's
// checks already.
func (t *MSRPTransport) writeChunk(ctx context.Context, c *Chunk, checked bool) error {
	bufp := writeBufPool.Get().(*[]byte)
	defer func() {
		if cap(*bufp) <= maxPooledWriteBuf {
			writeBufPool.Put(bufp)
		}
	}()
	head, err := c.appendHead((*bufp)[:0], checked, &t.valid)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	if t.writeErr != nil {
		return t.writeErr
	}
	stop := watchDeadline(ctx, t.conn.SetWriteDeadline)
	if len(c.Data) <= inlineBodyMax || !t.vectored {
		// One write: over TLS, where buffers are not written together,
		// a chunk in one piece fills its records instead of sending its
		// head and its end-line in records of their own.
		*bufp = c.appendTail(append(head, c.Data...))
		_, err = t.conn.Write(*bufp)
	} else {
		// A large body is written from where it lies: writev on TCP.
		*bufp = head
		tail := c.appendTail(head[len(head):])
		bufs := net.Buffers{head, c.Data, tail}
		_, err = bufs.WriteTo(t.conn)
	}
	stop()
	if err != nil {
		t.writeErr = fmt.Errorf("msrp: write: %w", ctxError(ctx, err))
		t.closeNow() // a stream broken mid-chunk: no close_notify, which could wait 5 s
		return t.writeErr
	}
	t.Logger.sentChunk(c, t)
	return nil
}

// writeEncoded writes chunks already encoded, in order, in buf, in one
// write and without watching a context: its caller (the session) unblocks
// a stuck write by closing the transport, and bounds it by timeout. A
// failure is sticky, as in WriteChunk.
func (t *MSRPTransport) writeEncoded(buf []byte, chunks []*Chunk, timeout time.Duration) error {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	if t.writeErr != nil {
		return t.writeErr
	}
	// A peer that reads nothing more must not hold the writer forever.
	_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := t.conn.Write(buf)
	_ = t.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		t.writeErr = fmt.Errorf("msrp: write: %w", err)
		t.closeNow() // as in writeChunk
		return t.writeErr
	}
	for _, c := range chunks {
		t.Logger.sentChunk(c, t)
	}
	return nil
}

// WriteResponse answers a request with code and comment when its
// Failure-Report allows a response with that code (Chunk.ResponseWanted);
// otherwise it writes nothing and returns nil.
func (t *MSRPTransport) WriteResponse(ctx context.Context, req *Chunk, code int, comment string) error {
	if !req.ResponseWanted(code) {
		return nil
	}
	resp, err := t.newResponse(req, code, comment)
	if err != nil {
		return err
	}
	return t.WriteChunk(ctx, resp)
}

// newResponse is NewResponse for a request that came on this transport:
// when a path of the request does not parse, which is what a 400 may be
// about, the answer takes the paths the transport knows, so that the peer
// still hears why. A connection still binding may know neither: then the
// path is unknownPath, a valid URI that names nobody.
func (t *MSRPTransport) newResponse(req *Chunk, code int, comment string) (*Chunk, error) {
	resp, err := newResponse(req, code, comment, &t.valid)
	if err == nil || !req.IsRequest() {
		return resp, err
	}
	t.pathMu.RLock()
	to := append(slices.Clone(t.localPath), t.remotePath...)
	local := t.localURI
	t.pathMu.RUnlock()
	if p, perr := ParsePath(req.Headers.Get(HeaderFromPath)); perr == nil {
		to = p
	}
	if len(to) > 1 && req.Method == MethodSEND {
		to = to[:1]
	}
	toPath, fromPath := FormatPath(to), unknownPath
	if len(to) == 0 {
		toPath = unknownPath
	}
	if p, perr := ParsePath(req.Headers.Get(HeaderToPath)); perr == nil {
		fromPath = p[0].String()
	} else if local.Host != "" {
		fromPath = local.String()
	}
	return responseChunk(req.TransactionID, code, comment, toPath, fromPath), nil
}

// unknownPath stands in for a path nobody can name (the ".invalid" domain
// is reserved for that, RFC 6761).
const unknownPath = "msrp://unknown.invalid;tcp"

// ---- Context and deadlines -----------------------------------------------------

// watchDeadline applies ctx's deadline to a connection and wakes blocked
// I/O when ctx is cancelled; stop undoes both.
func watchDeadline(ctx context.Context, set func(time.Time) error) (stop func()) {
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = set(deadline)
	}
	if ctx.Done() == nil {
		return func() {
			if hasDeadline {
				_ = set(time.Time{})
			}
		}
	}
	var mu sync.Mutex
	stopped := false
	unregister := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = set(time.Unix(1, 0)) // a time in the past wakes Read/Write now
		}
	})
	return func() {
		unregister()
		mu.Lock()
		stopped = true
		mu.Unlock()
		_ = set(time.Time{})
	}
}

// ctxError returns the context's error in place of a connection deadline
// error that ctx caused; any other error is returned as it is.
func ctxError(ctx context.Context, err error) error {
	if !isTimeout(err) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
