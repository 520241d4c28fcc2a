package msrp

import (
	"bytes"
	"math/bits"
	"sync"
)

// Default limits of a Parser, msrplib's values.
const (
	DefaultMaxLineLength = 16384   // bytes in one start or header line
	DefaultMaxHeaders    = 64      // header lines in one chunk
	DefaultMaxChunkSize  = 4 << 20 // bytes in one chunk, headers and body together
)

// heldBufferLimit: after a chunk whose header lines grew the parser's
// buffers past this, they are released rather than kept for the next chunk.
const heldBufferLimit = 64 << 10

// minBodyBuffer is the least spare room the body buffer offers a reader.
const minBodyBuffer = 32 << 10

// bodyBufferPool holds the body buffers of idle parsers.
var bodyBufferPool sync.Pool

type parseState uint8

const (
	stateStart   parseState = iota // waiting for a start line
	stateHeaders                   // reading header lines
	stateBody                      // reading a body up to its end-line
)

// Limits bound what the input of one connection may cost: a Parser's, a
// transport's (MSRPTransport.SetLimits) and every connector's
// (ConnectConfig). The zero value is msrplib's limits.
type Limits struct {
	MaxLineLength int // longest start or header line; 0: DefaultMaxLineLength
	MaxHeaders    int // most header lines in a chunk; 0: DefaultMaxHeaders
	MaxChunkSize  int // largest chunk, headers and body; 0: DefaultMaxChunkSize
}

// Parser turns a byte stream into chunks. It does no I/O: the caller feeds it
// whatever the connection delivered, in pieces of any size split anywhere,
// and gets complete chunks back. The zero value is ready to use with the
// default limits. A Parser is not safe for concurrent use.
//
// Framing follows RFC 4975 §7.1: a chunk ends at "-------" + its transaction
// id + a continuation flag at the start of a line; a body ends at the first
// CRLF + that end-line + CRLF, so a body may hold dashes, other end-lines and
// other transaction ids.
//
// Limits: a start or header line longer than MaxLineLength, more header lines
// than MaxHeaders, and a chunk (header section and body together) larger than
// MaxChunkSize are errors. The size cap is the design choice for large
// bodies: the parser keeps a whole chunk's body in memory, never more than
// MaxChunkSize of it, and large messages travel as many chunks (RFC 4975
// §5.1), which the session reassembles or streams. A chunk over the cap is
// reported as soon as the cap is crossed (so the receiver can answer 413 and
// the sender stop), its remaining bytes are skipped without being stored, and
// parsing resumes after its end-line: the connection stays usable.
type Parser struct {
	Limits

	state    parseState
	starts   int    // start lines accepted: chunks begun
	skipLine bool   // dropping the rest of an over-long line
	hdr      []byte // raw start line and kept header lines of the current chunk
	start    startLine
	spans    []headerSpan // kept headers, as offsets into hdr
	lineAt   int          // offset in hdr of the line being read
	size     int          // bytes of the current chunk so far (headers + body)
	failure  *ChunkParseError
	marker   []byte // "\r\n-------" + tid: the end-line is marker + flag + CRLF

	cur     *Chunk // the chunk whose body is being read
	data    []byte // the body, when it arrived in one piece
	acc     []byte // the body so far, when it spans Feed calls
	accNext int    // size to give the next body buffer: the last body's
	hold    []byte // body bytes that may begin the end-line, not yet committed
	scratch []byte
	discard bool // skipping the body of a chunk over the size cap
	tooBig  *ChunkParseError

	// checkHead, when set, vets a chunk's start line and headers as soon as
	// they are read, before its body: an error skips the body without
	// keeping it, as for a chunk over the size cap, and comes back as the
	// Err of a *ChunkParseError holding the chunk's head.
	checkHead func(*Chunk) error
}

// startLine holds offsets into Parser.hdr.
type startLine struct {
	tidEnd    int // the tid is hdr[5:tidEnd]
	restStart int // method, or code and comment, is hdr[restStart:restEnd]
	restEnd   int
	code      int // -1 for a request
}

// headerSpan locates one kept header line in hdr: name is hdr[line:colon],
// value is hdr[valueStart:valueEnd].
type headerSpan struct{ line, colon, valueStart, valueEnd int }

func (p *Parser) maxLine() int    { return orDefault(p.MaxLineLength, DefaultMaxLineLength) }
func (p *Parser) maxHeaders() int { return orDefault(p.MaxHeaders, DefaultMaxHeaders) }
func (p *Parser) maxChunk() int   { return orDefault(p.MaxChunkSize, DefaultMaxChunkSize) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// InChunk reports whether the parser holds part of a chunk, its start line
// included: a connection that ends now has cut a chunk short.
func (p *Parser) InChunk() bool { return p.state != stateStart || len(p.hdr) > 0 }

// cutShort ends the chunk in progress where its input ended (a message
// of a message-framed link that held part of a chunk) and starts afresh.
// It returns cause as a *ChunkParseError holding what was read of the
// chunk, its start line and headers, when that much came.
func (p *Parser) cutShort(cause error) error {
	var c *Chunk
	switch {
	case p.discard: // over the size cap: answered already
	case p.cur != nil: // in its body
		c = p.cur
	case p.state == stateHeaders:
		p.hdr = p.hdr[:p.lineAt] // the line it stopped in is not whole
		c = p.buildChunk()
	}
	p.Reset()
	return newParseError(cause, c, nil)
}

// Reset drops any partial chunk and starts afresh.
func (p *Parser) Reset() {
	p.resetChunk()
	p.skipLine = false
}

// Feed consumes bytes from b until it completes a chunk, meets an error or
// runs out of input, and returns the chunk (or nil), how many bytes of b it
// consumed, and the error (or nil). Call it again with b[n:] while bytes
// remain, then with the next read. The returned chunk owns its memory; it
// never aliases b.
//
// Errors are *ChunkParseError and never fatal: the parser has already
// resynchronised, and the next Feed carries on. A chunk whose start line was
// valid but whose header lines were not (malformed, too many, too long) is
// still read to its end-line and returned inside the error's Chunk field,
// with the bad lines left out, so that the receiver can answer it with 400.
func (p *Parser) Feed(b []byte) (*Chunk, int, error) {
	n := 0
	for n < len(b) {
		var c *Chunk
		var k int
		var err error
		if p.state == stateBody {
			c, k, err = p.feedBody(b[n:])
		} else {
			c, k, err = p.feedLine(b[n:])
		}
		n += k
		if c != nil || err != nil {
			return c, n, err
		}
	}
	return nil, n, nil
}

// feedLine reads at most one line of the start line or header section.
func (p *Parser) feedLine(b []byte) (*Chunk, int, error) {
	piece, complete := b, false
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		piece, complete = b[:i+1], true
	}
	if p.state == stateHeaders {
		p.size += len(piece)
	}
	if p.skipLine {
		p.skipLine = !complete
		return nil, len(piece), nil
	}
	if len(p.hdr)-p.lineAt+len(piece) > p.maxLine()+2 { // +2: the CRLF
		data := append(p.hdr[p.lineAt:len(p.hdr):len(p.hdr)], piece[:min(len(piece), maxErrorData)]...)
		p.hdr = p.hdr[:p.lineAt]
		p.skipLine = !complete
		if p.state == stateStart {
			return nil, len(piece), newParseError(ErrLineTooLong, nil, data)
		}
		p.fail(ErrLineTooLong, data)
		return nil, len(piece), nil
	}
	p.hdr = append(p.hdr, piece...)
	if !complete {
		return nil, len(piece), nil
	}
	line := p.hdr[p.lineAt : len(p.hdr)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if p.state == stateStart {
		return nil, len(piece), p.startLine(line)
	}
	c, err := p.headerLine(line)
	return c, len(piece), err
}

// startLine handles a line read while no chunk is open.
func (p *Parser) startLine(line []byte) error {
	if len(line) == 0 { // stray CRLF between chunks: harmless
		p.hdr = p.hdr[:0]
		return nil
	}
	sl, ok := parseStartLine(line)
	if !ok {
		err := newParseError(ErrBadStartLine, nil, line)
		p.hdr = p.hdr[:0]
		return err
	}
	p.start = sl
	p.starts++
	p.marker = append(append(p.marker[:0], "\r\n-------"...), p.hdr[5:sl.tidEnd]...)
	p.state = stateHeaders
	p.lineAt = len(p.hdr)
	p.size = len(p.hdr)
	return nil
}

// parseStartLine checks "MSRP" SP tid SP (method / 3DIGIT [SP comment]) and
// returns offsets relative to line, which must start at hdr[0].
func parseStartLine(line []byte) (startLine, bool) {
	if len(line) < 5 || string(line[:5]) != "MSRP " {
		return startLine{}, false
	}
	sp := bytes.IndexByte(line[5:], ' ')
	if sp < 0 || !validIdent(line[5:5+sp]) {
		return startLine{}, false
	}
	sl := startLine{tidEnd: 5 + sp, restStart: 5 + sp + 1, restEnd: len(line), code: -1}
	rest := line[sl.restStart:]
	if len(rest) >= 3 && isDigits(rest[:3]) && (len(rest) == 3 || rest[3] == ' ') {
		sl.code = int(rest[0]-'0')*100 + int(rest[1]-'0')*10 + int(rest[2]-'0')
		return sl, validText(rest)
	}
	return sl, validMethod(rest)
}

// headerLine handles a line of the header section: the end-line of a chunk
// without body, the blank line before a body, or a header.
func (p *Parser) headerLine(line []byte) (*Chunk, error) {
	if p.isEndLine(line) {
		p.hdr = p.hdr[:p.lineAt]
		return p.finish(p.buildChunk(), line[len(line)-1])
	}
	if p.size > p.maxChunk() {
		p.hdr = p.hdr[:p.lineAt]
		return nil, p.overflow(p.buildChunk(), true)
	}
	if len(line) == 0 {
		p.hdr = p.hdr[:p.lineAt]
		p.cur = p.buildChunk()
		p.state = stateBody
		if p.checkHead != nil {
			if err := p.checkHead(p.cur); err != nil {
				p.discard = true
				return nil, &ChunkParseError{Err: err, Chunk: p.cur}
			}
		}
		return nil, nil
	}
	if _, ok := parseStartLine(line); ok {
		// The sender began a new chunk without ending this one.
		prev := p.buildChunk()
		copy(p.hdr, line)
		p.hdr = p.hdr[:len(line)]
		failure := newParseError(ErrTruncatedChunk, prev, nil)
		p.resetChunkKeepingLine()
		if err := p.startLine(p.hdr); err != nil {
			return nil, err
		}
		return nil, failure
	}
	colon := bytes.IndexByte(line, ':')
	valueStart := colon + 1
	for valueStart < len(line) && (line[valueStart] == ' ' || line[valueStart] == '\t') {
		valueStart++
	}
	switch {
	case colon <= 0 || !isToken(line[:colon]) || !validText(line[valueStart:]):
		p.fail(ErrMalformedHeader, line)
	case len(p.spans) >= p.maxHeaders():
		p.fail(ErrTooManyHeaders, line)
	default:
		p.spans = append(p.spans, headerSpan{
			line:       p.lineAt,
			colon:      p.lineAt + colon,
			valueStart: p.lineAt + valueStart,
			valueEnd:   p.lineAt + len(line),
		})
		p.lineAt = len(p.hdr)
		return nil, nil
	}
	p.hdr = p.hdr[:p.lineAt] // the bad line is not kept
	return nil, nil
}

func (p *Parser) isEndLine(line []byte) bool {
	endLine := p.marker[2:] // "-------" + tid
	return len(line) == len(endLine)+1 && bytes.HasPrefix(line, endLine) && isFlag(line[len(line)-1])
}

// fail records the first problem of a chunk whose framing is still intact.
func (p *Parser) fail(cause error, line []byte) {
	if p.failure == nil {
		p.failure = newParseError(cause, nil, line)
	}
}

// buildChunk makes the chunk of the start line and kept headers: one string
// for all of them, so the chunk costs a fixed handful of allocations.
func (p *Parser) buildChunk() *Chunk {
	s := string(p.hdr)
	c := &Chunk{TransactionID: s[5:p.start.tidEnd]}
	rest := s[p.start.restStart:p.start.restEnd]
	if p.start.code < 0 {
		c.Method = rest
	} else {
		c.Code = p.start.code
		if len(rest) > 4 {
			c.Comment = rest[4:]
		}
	}
	if len(p.spans) > 0 {
		c.Headers = make(Header, len(p.spans))
		for i, sp := range p.spans {
			c.Headers[i] = HeaderField{Name: s[sp.line:sp.colon], Value: s[sp.valueStart:sp.valueEnd]}
		}
	}
	return c
}

// feedBody reads body bytes, looking for the end-line.
func (p *Parser) feedBody(b []byte) (*Chunk, int, error) {
	termLen := len(p.marker) + 3
	if len(p.hold) > 0 {
		// The held bytes may begin the end-line: look at them together with
		// enough of b to finish one.
		w := append(append(p.scratch[:0], p.hold...), b[:min(len(b), termLen)]...)
		p.scratch = w
		pos, full := p.scanEndLine(w)
		if pos >= 0 && pos < len(p.hold) {
			p.commit(p.hold[:pos], full)
			if full {
				consumed := pos + termLen - len(p.hold)
				p.hold = p.hold[:0]
				return p.endBody(w[pos+len(p.marker)], consumed)
			}
			// Still undecided, which needs len(b) < termLen: all of b is in w.
			p.hold = append(p.hold[:0], w[pos:]...)
			return nil, len(b), p.takeTooBig()
		}
		p.commit(p.hold, false)
		p.hold = p.hold[:0]
	}
	pos, full := p.scanEndLine(b)
	switch {
	case pos < 0:
		p.commit(b, false)
	case full:
		p.commit(b[:pos], true)
		return p.endBody(b[pos+len(p.marker)], pos+termLen)
	default:
		p.commit(b[:pos], false)
		p.hold = append(p.hold[:0], b[pos:]...)
	}
	return nil, len(b), p.takeTooBig()
}

// scanEndLine finds the first end-line (marker + flag + CRLF) in buf and
// returns its offset with full=true; or the offset of a suffix of buf that may
// still become one with full=false; or -1.
func (p *Parser) scanEndLine(buf []byte) (pos int, full bool) {
	m := p.marker
	for i := 0; ; {
		j := bytes.Index(buf[i:], m)
		if j < 0 {
			break
		}
		j += i
		after := buf[j+len(m):]
		switch {
		case len(after) >= 3 && isFlag(after[0]) && after[1] == '\r' && after[2] == '\n':
			return j, true
		case len(after) == 0,
			len(after) == 1 && isFlag(after[0]),
			len(after) == 2 && isFlag(after[0]) && after[1] == '\r':
			return j, false
		}
		i = j + 1
	}
	// No whole marker: does a proper prefix of it end the buffer?
	for k := max(0, len(buf)-len(m)+1); k < len(buf); k++ {
		r := bytes.IndexByte(buf[k:], '\r')
		if r < 0 {
			break
		}
		k += r
		if bytes.HasPrefix(m, buf[k:]) {
			return k, false
		}
	}
	return -1, false
}

// commit appends body bytes, or counts them when skipping an oversized
// chunk; final says these are the last bytes of the body.
//
// A body that arrives in one piece is copied once, into a buffer of its
// own (ownedCopy: exactly sized, or pooled and at most a third larger). One
// that spans Feed calls collects in a buffer the parser reuses from chunk
// to chunk, and is copied out the same way at its end; bytes the caller
// read straight into that buffer's spare room (bodySpace) are taken where
// they lie. No buffer grows past the size cap, so a peer cannot make the
// parser hold more than the cap, nor much more than it sent.
func (p *Parser) commit(d []byte, final bool) {
	if p.discard || len(d) == 0 {
		return
	}
	need := len(p.acc) + len(d)
	limit := p.maxChunk() - p.size
	if need > limit {
		p.tooBig = p.overflowError(p.cur)
		p.discard = true
		p.acc = p.acc[:0]
		return
	}
	if len(p.acc) == 0 && final {
		p.data = p.ownedCopy(d)
		return
	}
	if p.extendsAcc(d) {
		p.acc = p.acc[:need]
		return
	}
	p.growAcc(need, limit)
	p.acc = append(p.acc, d...)
}

// extendsAcc reports whether d lies right after the body collected so far,
// in the buffer's spare room.
func (p *Parser) extendsAcc(d []byte) bool {
	n := len(p.acc)
	return len(d) > 0 && cap(p.acc)-n >= len(d) && &p.acc[:n+1][n] == &d[0]
}

// growAcc makes room for need bytes, doubling, within limit. A buffer
// from the pool is taken only if it suits: big enough, and not so big that
// handing it over with a body would waste most of it.
func (p *Parser) growAcc(need, limit int) {
	if need <= cap(p.acc) {
		return
	}
	if p.acc == nil {
		if b, ok := bodyBufferPool.Get().(*[]byte); ok {
			if c := cap(*b); need <= c && c <= limit && c <= 2*max(need, p.accNext, minBodyBuffer) {
				p.acc = (*b)[:0]
				return
			}
			bodyBufferPool.Put(b)
		}
	}
	grown := make([]byte, len(p.acc), min(max(need, 2*cap(p.acc), p.accNext, minBodyBuffer), limit))
	copy(grown, p.acc)
	p.acc = grown
}

// bodySpace returns room for the caller to read body bytes into before
// passing them to Feed, which then takes them without copying; nil when
// the parser is not reading a body, or has bytes it must place first, or
// the body has reached the size cap or the size the last body had (the
// rest, usually just the end-line, is then read elsewhere).
func (p *Parser) bodySpace() []byte {
	if p.state != stateBody || p.discard || len(p.hold) > 0 {
		return nil
	}
	if len(p.acc) == cap(p.acc) {
		need := p.accNext
		if need <= len(p.acc) {
			if len(p.acc) > 0 {
				return nil
			}
			need = minBodyBuffer
		}
		limit := p.maxChunk() - p.size
		p.growAcc(min(need, limit), limit)
		if len(p.acc) == cap(p.acc) {
			return nil
		}
	}
	return p.acc[len(p.acc):cap(p.acc)]
}

// recycle takes back a body buffer the caller no longer needs.
func recycleBody(b []byte) {
	switch c := cap(b); {
	case c >= minBodyBuffer:
		b = b[:0]
		bodyBufferPool.Put(&b)
	case c >= smallBodyMin && c&(c-1) == 0: // one of smallBody's sizes
		b = b[:0]
		smallBodyPools[bits.Len(uint(c))-bits.Len(smallBodyMin)].Put(&b)
	}
}

// Bodies of relay-sized chunks that are copied out of the read buffer go
// into buffers of 4, 8 or 16 KiB, which recycleBody takes back: a transfer
// in 8 KiB chunks then reuses its buffers instead of allocating one per
// chunk. Only a body that fills at least three quarters of its buffer gets
// one, and only a buffer within the size cap, so that a body never holds a
// third more than it carries, nor more than MaxChunkSize. Other bodies get
// buffers of their exact size; a short message kept by the application
// holds no more than itself.
const smallBodyMin = 4 << 10

var smallBodyPools [3]sync.Pool // 4, 8 and 16 KiB

// smallBody returns an empty pooled buffer for a body of n bytes, or nil
// when no pooled size suits it within limit.
func smallBody(n, limit int) []byte {
	if n <= smallBodyMin/2 || n > smallBodyMin<<(len(smallBodyPools)-1) {
		return nil
	}
	class := max(0, bits.Len(uint(n-1))-bits.Len(smallBodyMin)+1)
	size := smallBodyMin << class
	if n < size-size/4 || size > limit {
		return nil
	}
	if b, ok := smallBodyPools[class].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// ownedCopy copies a body into a buffer of its own: pooled, or of exactly
// its size.
func (p *Parser) ownedCopy(d []byte) []byte {
	if b := smallBody(len(d), p.maxChunk()); b != nil {
		return append(b, d...)
	}
	b := append([]byte(nil), d...) // append does not zero what it copies
	return b[:len(b):len(b)]
}

// releaseBuffers gives the body buffer back to the pool: the caller's
// connection has gone idle.
func (p *Parser) releaseBuffers() {
	if p.state != stateBody && p.acc != nil {
		recycleBody(p.acc)
		p.acc = nil
	}
}

// endBody completes the chunk whose end-line carries flag; n is the count of
// input bytes consumed by this Feed step.
func (p *Parser) endBody(flag byte, n int) (*Chunk, int, error) {
	if p.discard {
		err := p.takeTooBig()
		p.resetChunk()
		return nil, n, err
	}
	c := p.cur
	switch n := len(p.acc); {
	case p.data != nil:
		c.Data = p.data // its capacity, when pooled, lets recycleBody place it
	case n > 0:
		// Size the next buffer for a body like this one (a transfer's
		// chunks are usually of one size), so that it is read in place.
		p.accNext = n
		if cap(p.acc)-n <= cap(p.acc)/4 {
			c.Data = p.acc[:n:n] // mostly body: hand the buffer over, no copy
			p.acc = nil
		} else {
			c.Data = p.ownedCopy(p.acc)
			if cap(p.acc) > 2*max(p.accNext, minBodyBuffer) {
				p.acc = nil // too big for what flows now
			}
		}
	}
	c, err := p.finish(c, flag)
	return c, n, err
}

func (p *Parser) takeTooBig() error {
	if e := p.tooBig; e != nil {
		p.tooBig = nil
		return e
	}
	return nil
}

func (p *Parser) overflowError(c *Chunk) *ChunkParseError {
	return &ChunkParseError{Err: ErrChunkTooLarge, Chunk: c}
}

// overflow switches from the header section to skipping the rest of a chunk
// over the size cap. The end-line of a chunk without body starts a line, so
// the CRLF that ended the previous line is held as the start of the marker.
func (p *Parser) overflow(c *Chunk, atLineStart bool) error {
	p.cur = c
	p.state = stateBody
	p.discard = true
	if atLineStart {
		p.hold = append(p.hold[:0], '\r', '\n')
	}
	return p.overflowError(c)
}

// finish hands out a completed chunk, or the error of a malformed one.
func (p *Parser) finish(c *Chunk, flag byte) (*Chunk, error) {
	c.ContFlag = flag
	failure := p.failure
	p.resetChunk()
	if failure != nil {
		failure.Chunk = c
		return nil, failure
	}
	return c, nil
}

func (p *Parser) resetChunk() {
	p.hdr = p.hdr[:0]
	if cap(p.hdr) > heldBufferLimit {
		p.hdr = nil
	}
	p.resetChunkKeepingLine()
}

// resetChunkKeepingLine clears per-chunk state but leaves hdr alone.
func (p *Parser) resetChunkKeepingLine() {
	if cap(p.scratch) > heldBufferLimit {
		p.scratch = nil
	}
	p.state = stateStart
	p.spans = p.spans[:0]
	p.lineAt = 0
	p.size = 0
	p.failure = nil
	p.cur = nil
	p.data = nil
	p.acc = p.acc[:0] // kept while data flows; releaseBuffers returns it when idle
	p.hold = p.hold[:0]
	p.discard = false
	p.tooBig = nil
}
