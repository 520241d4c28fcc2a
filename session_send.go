package msrp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the write path of a session: queueing chunks, the writer
// goroutine, transactions and their timeouts, and the keepalive.

// SendChunk queues a request and returns at once, msrplib's send_chunk. When
// onResponse is not nil it is called once, on the callback goroutine, with
// the peer's response, or with an error: a *TransactionError with code 408
// when no response came within ResponseTimeout (it matches ErrTimeout), or an
// error wrapping ErrSessionClosed and the cause when the session ended
// first. A request whose Failure-Report is "no" or "partial" gets no 200 from
// the peer (RFC 4975 §7.1.2), so the session reports a 200 of its own as
// soon as the chunk is written; with "partial", a negative response that
// still arrives goes to OnIncoming. REPORTs get no response at all.
//
// The session owns c from the call until its outcome: do not modify it.
//
// It fails if the session is not CONNECTED, if the chunk's transaction id is
// already in use by a request awaiting its outcome, or if MaxPending chunks
// are queued, being written or awaiting their response.
func (s *MSRPSession) SendChunk(c *Chunk, onResponse func(resp *Chunk, err error)) error {
	return s.enqueue(&outItem{c: c, onResponse: onResponse})
}

// enqueue admits an item to the queue, or says why not.
func (s *MSRPSession) enqueue(it *outItem) error {
	// A chunk the encoder would refuse is refused now, to the caller,
	// rather than later to a callback that may not exist.
	if err := it.c.check(&s.t.valid); err != nil {
		return err
	}
	it.checked = true
	s.mu.Lock()
	defer s.unlock()
	// While a Shutdown flushes, what is owed to the peer still goes out:
	// responses, and REPORTs, which need no response.
	owed := !it.c.IsRequest() || it.c.Method == MethodREPORT
	if s.state != StateConnected && (s.state != StateFlushing || !owed) {
		return fmt.Errorf("%w: cannot send in state %s", s.closedErrorLocked(), s.state)
	}
	if !it.c.IsRequest() && it.hasOutcome() {
		return errors.New("msrp: a response gets no response: send it with Respond, or SendChunk without a callback")
	}
	if s.outstanding >= s.cfg.MaxPending {
		return ErrTooManyPending
	}
	if it.c.IsRequest() {
		if _, dup := s.byTID[it.c.TransactionID]; dup {
			return fmt.Errorf("msrp: transaction %s is already pending", it.c.TransactionID)
		}
		s.byTID[it.c.TransactionID] = it
	}
	s.queueLocked(it)
	return nil
}

// closedErrorLocked is what a refused send wraps.
func (s *MSRPSession) closedErrorLocked() error {
	if s.err != nil {
		return s.err
	}
	return ErrSessionClosed
}

// queueLocked puts an admitted item on the queue and wakes the writer.
func (s *MSRPSession) queueLocked(it *outItem) {
	s.seq++
	it.seq = s.seq
	it.queued = true
	s.queue = append(s.queue, it)
	s.outstanding++
	signal(s.writerWake)
}

// DeliverChunk sends a request and waits for its response, msrplib's
// deliver_chunk. It returns the response when its code is 2xx; a negative
// response as a *TransactionError (with the response); and ctx's error if
// ctx ends first (the transaction is then forgotten). For a chunk whose
// Failure-Report is "no" or "partial" it returns a local 200 once the
// chunk is written. c must not be modified afterwards, even when ctx ended
// first: the chunk may still be written.
func (s *MSRPSession) DeliverChunk(ctx context.Context, c *Chunk) (*Chunk, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it := &outItem{c: c, result: make(chan deliverResult, 1)}
	if err := s.enqueue(it); err != nil {
		return nil, err
	}
	var r deliverResult
	select {
	case r = <-it.result:
	case <-ctx.Done():
		if !s.forget(it) {
			r = <-it.result // it was settled just now: the result is there
			break
		}
		return nil, ctx.Err()
	}
	if r.err == nil && (r.resp.Code < 200 || r.resp.Code > 299) {
		r.err = &TransactionError{Code: r.resp.Code, Comment: r.resp.Comment}
	}
	return r.resp, r.err
}

// forget drops an item whose caller stopped waiting. It reports whether the
// item was still unsettled; if not, its outcome has been delivered.
func (s *MSRPSession) forget(it *outItem) bool {
	s.mu.Lock()
	defer s.unlock()
	if it.settled {
		return false
	}
	if it.queued {
		it.queued = false
		for i, q := range s.queue {
			if q == it {
				s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
				break
			}
		}
	}
	it.result = nil
	s.settleLocked(it, nil, nil)
	return true
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
	resp, err := s.t.newResponse(req, code, comment)
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
	r.Headers.Add(HeaderStatus, Status{Code: code, Comment: cleanComment(comment)}.String())
	return r, nil
}

// ---- Outcomes -------------------------------------------------------------------

// settleLocked delivers an item's outcome, once: the first caller wins and
// every later one does nothing. A nil resp with a nil err settles the item
// without an outcome (its caller stopped waiting). Whoever settles an item
// has taken it out of the queue; settleLocked takes it out of the rest.
func (s *MSRPSession) settleLocked(it *outItem, resp *Chunk, err error) {
	if it.settled {
		return
	}
	it.settled = true
	s.outstanding--
	if s.byTID[it.c.TransactionID] == it {
		delete(s.byTID, it.c.TransactionID)
	}
	if it.written && !it.deadline.IsZero() {
		s.onWireLive--
	}
	if resp != nil || err != nil {
		switch {
		case it.result != nil:
			it.result <- deliverResult{resp, err} // room for one, and only ever one send
		case it.internal != nil:
			it.internal(resp, err)
		case it.onResponse != nil:
			onResponse := it.onResponse
			s.callLocked(0, func() { onResponse(resp, err) })
		}
		if it.msg != nil {
			it.msg.answeredLocked(it, resp, err)
		}
	}
	s.checkFlushedLocked()
}

// ---- Writer ---------------------------------------------------------------------

// writer is the only code that writes to the transport once the session
// runs. It takes what is queued, writes it, and settles what needs no
// response, until the session ends.
func (s *MSRPSession) writer() {
	defer s.ioExited()
	for {
		s.mu.Lock()
		if s.state >= StateClosing {
			s.unlock()
			return
		}
		items := s.nextItemsLocked()
		if len(items) == 0 && s.peerGone != nil {
			s.endLocked(s.peerGone) // what we owed the peer is written
			s.unlock()
			return
		}
		s.writing += len(items)
		own := 0
		for _, it := range items {
			if it.internal != nil {
				own++
			}
		}
		s.writingOwn += own
		s.unlock()
		if len(items) == 0 {
			<-s.writerWake
			continue
		}
		err := s.write(items)
		s.mu.Lock()
		if err != nil {
			s.endLocked(err) // while s.writing still counts the batch as lost
			s.writing -= len(items)
			s.writingOwn -= own
			for _, it := range items {
				s.settleLocked(it, nil, closedError(err))
			}
			s.unlock()
			return
		}
		s.writing -= len(items)
		s.writingOwn -= own
		s.touchLocked()
		for _, it := range items {
			s.writtenLocked(it)
		}
		s.checkFlushedLocked()
		s.unlock()
	}
}

// Writer batching: chunks queued together go out in one write, up to these
// bounds; a chunk with a large body goes alone, written from where it lies.
const (
	maxBatchChunks = 64
	maxBatchBytes  = 64 << 10
)

// nextItemsLocked takes the next chunks to write: single chunks first, then
// the next chunk of each message in turn, so that none starves the others.
// Once the peer has stopped sending, only single chunks (the answers owed)
// are written.
func (s *MSRPSession) nextItemsLocked() []*outItem {
	var items []*outItem
	size := 0
	maxChunks := maxBatchChunks
	if s.cfg.DisableWriteBatching || s.t.framed { // a message holds one chunk
		maxChunks = 1
	}
	fits := func(it *outItem) bool {
		large := len(it.c.Data) > inlineBodyMax
		return len(items) == 0 || (!large && len(items) < maxChunks && size+len(it.c.Data) <= maxBatchBytes)
	}
	if len(s.queue) > 0 {
		signal(s.roomWake) // the reader may be waiting for room in the queue
	}
	for len(s.queue) > 0 && fits(s.queue[0]) {
		it := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		it.queued = false
		items = append(items, it)
		size += len(it.c.Data) + 256
		if len(it.c.Data) > inlineBodyMax {
			return items
		}
	}
	if s.peerGone != nil {
		return items
	}
	for tries := len(s.messages); tries > 0 && len(s.messages) > 0 && size < maxBatchBytes && len(items) < maxChunks; tries-- {
		if s.outstanding >= s.cfg.MaxPending {
			break
		}
		m := s.messages[0]
		s.messages = append(s.messages[1:], m)
		if s.chunkSize() > inlineBodyMax && len(items) > 0 {
			break // its chunk would go alone
		}
		if m.opts.OnProgress != nil && s.backlogFullLocked() {
			continue // its progress would pile up behind a busy callback
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

// write writes chunks, in one write when they are small. A chunk that
// cannot be encoded is settled with the error alone, and what is left goes
// out. The error returned is the connection's: the stream is broken.
func (s *MSRPSession) write(items []*outItem) error {
	buf := s.wbuf[:0]
	chunks := make([]*Chunk, 0, len(items))
	// A large body is written from where it lies when the connection
	// writes several buffers at once (TCP); else it is copied in.
	single := len(items) == 1 && len(items[0].c.Data) > inlineBodyMax && s.t.vectored
	var refused []*outItem
	var refusals []error
	checked := false
	if single {
		// Checked now, so that a refused chunk is refused before anything
		// (its progress) is reported about it, as in a batch.
		if checked = items[0].checked; !checked {
			if err := items[0].c.check(&s.t.valid); err != nil {
				refused, refusals = append(refused, items[0]), append(refusals, err)
				single = false // nothing to write
			}
			checked = true
		}
	} else {
		for _, it := range items {
			b, err := it.c.appendHead(buf, it.checked, &s.t.valid)
			if err != nil {
				refused, refusals = append(refused, it), append(refusals, err)
				continue
			}
			buf = it.c.appendTail(append(b, it.c.Data...))
			chunks = append(chunks, it.c)
		}
	}
	s.mu.Lock()
	for i, it := range refused {
		s.settleLocked(it, nil, refusals[i])
	}
	for _, it := range items {
		if it.msg != nil && !it.settled {
			it.msg.writingLocked(it)
		}
	}
	s.unlock()

	var err error
	switch {
	case single:
		wctx, cancel := context.WithTimeout(s.ctx, s.cfg.responseTimeout())
		err = s.t.writeChunk(wctx, items[0].c, checked)
		cancel()
		if errors.Is(err, ErrInvalidChunk) || errors.Is(err, ErrBodyContainsEndLine) {
			s.mu.Lock()
			s.settleLocked(items[0], nil, err) // refused before any byte was written
			s.unlock()
			return nil
		}
	case len(chunks) > 0:
		err = s.t.writeEncoded(buf, chunks, s.cfg.responseTimeout())
	}
	if cap(buf) <= 4*maxBatchBytes {
		s.wbuf = buf
	}
	return err
}

// writtenLocked starts the transaction of a chunk just written: a request
// whose Failure-Report is "yes" waits for the peer's response (unless it
// came already); with "partial" or "no" the peer sends no 200, so success
// is reported now; a REPORT is done once written, and so is a chunk nobody
// waits for.
func (s *MSRPSession) writtenLocked(it *outItem) {
	if it.msg != nil {
		it.msg.writtenLocked(it)
	}
	if it.settled {
		return
	}
	it.written = true
	c := it.c
	switch {
	case !it.hasOutcome() || !c.IsRequest():
		s.settleLocked(it, nil, nil)
	case c.Method == MethodREPORT:
		s.settleLocked(it, &Chunk{TransactionID: c.TransactionID, Code: 200, Comment: "OK"}, nil)
	case !c.ResponseWanted(200):
		resp, err := newResponse(c, 200, "", &s.t.valid)
		if err != nil {
			resp = &Chunk{TransactionID: c.TransactionID, Code: 200, Comment: "OK"}
		}
		s.settleLocked(it, resp, nil)
	default:
		s.awaitResponseLocked(it)
	}
}

// ---- Response timeouts ----------------------------------------------------------

// awaitResponseLocked starts the response timeout of a written request.
// All requests share one timeout, so their deadlines come in the order they
// were written: one timer, set for the oldest, serves them all.
func (s *MSRPSession) awaitResponseLocked(it *outItem) {
	it.deadline = s.clockLocked().Add(s.cfg.responseTimeout())
	it.hardDeadline = time.Now().Add(2 * s.cfg.responseTimeout())
	s.onWire = append(s.onWire, it)
	s.onWireLive++
	if len(s.onWire) > 64 && len(s.onWire) > 2*s.onWireLive {
		live := s.onWire[:0]
		for _, w := range s.onWire {
			if !w.settled {
				live = append(live, w)
			}
		}
		clear(s.onWire[len(live):])
		s.onWire = live
	}
	if !s.timerSet {
		s.armTimerLocked()
	}
}

// armTimerLocked sets the response timer for the oldest request still
// awaiting its response, if any.
func (s *MSRPSession) armTimerLocked() {
	for len(s.onWire) > 0 && s.onWire[0].settled {
		s.onWire[0] = nil
		s.onWire = s.onWire[1:]
	}
	s.timerSet = len(s.onWire) > 0
	if !s.timerSet {
		return
	}
	now := time.Now()
	it := s.onWire[0]
	d := it.hardDeadline.Sub(now)
	if !s.clockStopped { // while it stands still, only the hard deadline comes
		d = min(d, it.deadline.Sub(s.clockAt(now)))
	}
	if s.respTimer == nil {
		s.respTimer = time.AfterFunc(d, s.responseTimeouts)
	} else {
		s.respTimer.Reset(d)
	}
}

// responseTimeouts answers with 408 every request whose time is up.
func (s *MSRPSession) responseTimeouts() {
	s.mu.Lock()
	defer s.unlock()
	if s.state >= StateClosing {
		return
	}
	wall := time.Now()
	now := s.clockAt(wall)
	for len(s.onWire) > 0 && (s.onWire[0].settled || !now.Before(s.onWire[0].deadline) || !wall.Before(s.onWire[0].hardDeadline)) {
		it := s.onWire[0]
		s.onWire[0] = nil
		s.onWire = s.onWire[1:]
		s.settleLocked(it, nil, &TransactionError{Code: 408, Comment: "No response within " + s.cfg.responseTimeout().String()})
	}
	s.armTimerLocked()
	signal(s.writerWake) // a message window may have opened
}

// clockLocked is the clock of response deadlines. It stands still while
// the reader waits for the application to Receive, since an answer may be
// waiting, unread, behind the messages not taken; each request also has a
// hard deadline, twice ResponseTimeout after it was written, so that a
// peer that has gone is still found however the application keeps up. The
// clock runs on while the reader waits for callbacks: a callback that waits
// for an answer behind the ones it holds up must still get its 408.
func (s *MSRPSession) clockLocked() time.Time { return s.clockAt(time.Now()) }

func (s *MSRPSession) clockAt(now time.Time) time.Time {
	return now.Add(-s.stoppedFor - s.standstillLocked(now))
}

// standstillLocked is how long the clock has stood still in the current
// wait for Receive.
func (s *MSRPSession) standstillLocked(now time.Time) time.Duration {
	if !s.clockStopped {
		return 0
	}
	return now.Sub(s.stoppedAt)
}

// setPausedLocked records whether the reader waits for room, and whether
// the response clock stands still meanwhile.
func (s *MSRPSession) setPausedLocked(paused, stopClock bool) {
	s.readerPaused = paused
	stop := paused && stopClock
	if stop == s.clockStopped {
		return
	}
	now := time.Now()
	if stop {
		s.stoppedAt = now
	} else {
		s.stoppedFor += s.standstillLocked(now)
	}
	s.clockStopped = stop
	if len(s.onWire) > 0 && s.state < StateClosing {
		s.armTimerLocked() // the deadlines moved in real time
	}
}

// ---- Keepalive ------------------------------------------------------------------

// keepaliveDue runs when the connection may have been silent for
// KeepaliveInterval: it sends an empty SEND if it was, and looks again
// later if not.
func (s *MSRPSession) keepaliveDue() {
	s.mu.Lock()
	defer s.unlock()
	if s.state != StateConnected || s.keepaliveOut {
		return
	}
	interval := s.cfg.keepaliveInterval()
	if s.readerPaused {
		s.touchLocked() // the peer sends, and we hold it back: it is there
	}
	if idle := time.Since(s.lastActivity); idle < interval {
		s.keepaliveTimer.Reset(interval - idle)
		return
	}
	it := &outItem{c: s.t.MakeSendRequest("", nil, 1, 0), internal: s.keepaliveAnswered}
	s.byTID[it.c.TransactionID] = it
	s.keepaliveOut = true
	s.queueLocked(it)
}

// keepaliveAnswered takes the outcome of a keepalive: no response at all
// (408) ends the session; any answer, even a refusal, shows that the peer
// is there. Called with mu held.
func (s *MSRPSession) keepaliveAnswered(_ *Chunk, err error) {
	s.keepaliveOut = false
	var te *TransactionError
	if errors.As(err, &te) && te.Code == 408 {
		s.endLocked(fmt.Errorf("msrp: keepalive got no response: %w", err))
		return
	}
	if s.state == StateConnected {
		s.keepaliveTimer.Reset(s.cfg.keepaliveInterval())
	}
}
