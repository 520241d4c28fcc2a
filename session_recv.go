package msrp

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// This file is the read path of a session: the reader goroutine, responses
// to our requests, and the peer's requests with the answers and REPORTs
// they are owed.

// reader reads chunks until the connection ends, and handles each with the
// session's mutex held. It never runs application code: what the
// application is given goes to the callback goroutine, and when too much
// waits there, or too many answers wait to be written, the reader waits
// before it reads on, so that TCP holds the peer back.
func (s *MSRPSession) reader() {
	defer s.ioExited()
	for {
		c, err := s.t.readChunk(s.ctx, false) // the session's end closes the transport, which ends the read
		if c != nil || err == nil || errors.As(err, new(*ChunkParseError)) {
			s.read.Add(1) // before mu: a Shutdown from now on answers it
		}
		s.mu.Lock()
		var pe *ChunkParseError
		switch {
		case s.state >= StateClosing:
			s.unlock()
			return // what was read after the end is not handled
		case errors.As(err, &pe):
			s.answerMalformedLocked(pe)
		case err != nil:
			s.readEndedLocked(err)
			s.unlock()
			return
		case c.IsRequest():
			s.touchLocked()
			s.handleRequestLocked(c)
		default:
			s.touchLocked()
			s.handleResponseLocked(c)
		}
		s.handled++
		s.checkFlushedLocked()
		s.unlock()
		if !s.waitForRoom() {
			return
		}
	}
}

// readEndedLocked takes the end of the peer's stream. A clean end (EOF at a
// chunk boundary) may be a half-close: the answers owed are written first,
// and the writer ends the session once they are. Anything else ends it now.
func (s *MSRPSession) readEndedLocked(err error) {
	if s.state >= StateClosing {
		return
	}
	if !errors.Is(err, io.EOF) || (len(s.queue) == 0 && s.writing == 0) {
		s.endLocked(err)
		return
	}
	s.peerGone = err
	signal(s.writerWake)
}

// waitForRoom waits while the answers queued reach MaxPending, the
// callback goroutine's backlog is full, or messages wait for Receive. It reports false once the session
// has ended.
func (s *MSRPSession) waitForRoom() bool {
	for {
		s.mu.Lock()
		ended := s.state >= StateClosing
		busy := len(s.queue) >= s.cfg.MaxPending || s.backlogFullLocked()
		unread := s.receiveFullLocked()
		full := busy || unread
		s.setPausedLocked(full && !ended, unread && !busy && s.state == StateConnected)
		s.mu.Unlock()
		switch {
		case ended:
			return false
		case !full:
			return true
		}
		select {
		case <-s.roomWake:
		case <-s.closing:
		}
	}
}

// answerMalformedLocked answers a request the parser could not accept
// whole: 413 for one too large, 400 otherwise. REPORTs are never answered.
func (s *MSRPSession) answerMalformedLocked(pe *ChunkParseError) {
	c := pe.Chunk
	if c == nil || !c.IsRequest() || c.Method == MethodREPORT {
		return
	}
	code := 400
	if errors.Is(pe, ErrChunkTooLarge) {
		code = 413
	}
	s.respondLocked(c, code, "")
}

// respondLocked queues the response to a request, if its Failure-Report
// allows one. Answers bypass MaxPending: the reader waits for room instead.
func (s *MSRPSession) respondLocked(req *Chunk, code int, comment string) {
	if !req.ResponseWanted(code) || s.state >= StateClosing {
		return
	}
	resp, err := s.t.newResponse(req, code, comment)
	if err != nil {
		return // no path to answer along
	}
	s.queueLocked(&outItem{c: resp})
}

func (s *MSRPSession) respondErrorLocked(c *Chunk, err error) {
	var te *TransactionError
	if errors.As(err, &te) {
		s.respondLocked(c, te.Code, te.Comment)
		return
	}
	s.respondLocked(c, 400, "")
}

// reportLocked queues a REPORT the session sends of its own accord.
func (s *MSRPSession) reportLocked(c *Chunk, code int, comment string, byteRange *ByteRange) {
	if s.state >= StateClosing {
		return
	}
	r, err := s.makeReport(c, code, comment)
	if err != nil {
		return
	}
	if byteRange != nil {
		r.Headers.Set(HeaderByteRange, byteRange.String())
	}
	s.queueLocked(&outItem{c: r})
}

// handleResponseLocked settles the request a response answers. One that
// answers nothing of ours (or a request we stopped waiting for) goes to
// OnIncoming when it is negative, as with Failure-Report: partial.
func (s *MSRPSession) handleResponseLocked(c *Chunk) {
	if it, ok := s.byTID[c.TransactionID]; ok && !it.queued {
		s.settleLocked(it, c, nil)
		signal(s.writerWake) // a message window may have opened
		return
	}
	if c.Code != 200 {
		s.deliverLocked(c)
	}
}

func (s *MSRPSession) handleRequestLocked(c *Chunk) {
	switch c.Method {
	case MethodSEND:
		s.handleSendLocked(c)
	case MethodREPORT:
		// Never answered (RFC 4975 §7.1.2); one that names another session,
		// or has no valid Status, is dropped.
		if s.t.checkIncomingREPORT(c) == nil {
			if st, err := c.Status(); err == nil {
				s.reportReceivedLocked(c, st)
			}
		}
	case MethodNICKNAME:
		if err := s.t.CheckIncomingSENDChunk(c); err != nil {
			s.respondErrorLocked(c, err)
			return
		}
		_, hasNick := c.Headers.Lookup(HeaderUseNickname)
		_, hasSR := c.Headers.Lookup(HeaderSuccessReport)
		_, hasFR := c.Headers.Lookup(HeaderFailureReport)
		if !hasNick || hasSR || hasFR { // RFC 7701 §6.1
			s.respondLocked(c, 400, "")
			return
		}
		s.nicknameLocked(c)
	default:
		s.respondLocked(c, 501, "")
	}
}

// reportReceivedLocked hands a REPORT to OnReport, or else to OnIncoming.
func (s *MSRPSession) reportReceivedLocked(c *Chunk, st Status) {
	on := s.cfg.OnReport
	if on == nil {
		s.deliverLocked(c)
		return
	}
	r := &Report{Status: st, Chunk: c}
	r.MessageID, _ = c.MessageID()
	if br, err := c.ByteRange(); err == nil {
		r.ByteRange = br
	}
	s.callLocked(chunkCost(c), func() { on(s, r) })
}

// nicknameLocked has a checked NICKNAME answered: by OnNickname's code, by
// the application through OnIncoming and Respond, or with 501.
func (s *MSRPSession) nicknameLocked(c *Chunk) {
	on := s.cfg.OnNickname
	switch {
	case on != nil:
		nick := unquote(c.Headers.Get(HeaderUseNickname))
		s.answersOwed++ // a Shutdown waits for it
		s.callLocked(chunkCost(c), func() {
			code := on(s, nick)
			if code < 200 || code > 999 {
				code = 500 // not a status code: the request still gets an answer
			}
			s.mu.Lock()
			s.answersOwed--
			s.respondLocked(c, code, "") // an answer, so MaxPending does not apply
			s.checkFlushedLocked()
			s.unlock()
		})
	case s.cfg.OnIncoming != nil:
		s.deliverLocked(c) // the application answers it with Respond
	default:
		s.respondLocked(c, 501, "")
	}
}

// unquote reads a quoted-string (RFC 7701's nickname), or returns s as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deliverLocked hands a chunk to OnIncoming, if it is set.
func (s *MSRPSession) deliverLocked(c *Chunk) {
	if on := s.cfg.OnIncoming; on != nil {
		s.callLocked(chunkCost(c), func() { on(s, c) })
	}
}

// chunkCost is about what a chunk holds in memory, headers included, for
// the bounds on what waits for the application.
func chunkCost(c *Chunk) int {
	return cap(c.Data) + headerCost(c.Headers)
}

// headerCost is about what headers hold in memory.
func headerCost(h Header) int {
	n := 256 // the chunk or message itself
	for _, f := range h {
		n += len(f.Name) + len(f.Value) + 32
	}
	return n
}

// handleSendLocked checks an incoming SEND, answers it, puts it in its
// message, hands it on and sends the success REPORT it asks for.
func (s *MSRPSession) handleSendLocked(c *Chunk) {
	if err := s.checkSend(c); err != nil {
		s.respondErrorLocked(c, err)
		return
	}
	ended, err := s.incoming.add(s, c) // reassembly may refuse the chunk (413)
	if err != nil {
		s.respondErrorLocked(c, err)
		s.failureReportLocked(c, ended, err)
		s.messageEndedLocked(ended)
		return
	}
	s.respondLocked(c, 200, "")
	s.deliverLocked(c)
	if !s.cfg.DisableAutomaticReports && len(c.Data) > 0 {
		if yes, _ := c.SuccessReport(); yes {
			s.reportLocked(c, 200, "", nil)
		}
	}
	s.messageEndedLocked(ended)
}

// failureReportLocked tells the sender that a message failed after some of
// it had been accepted with 200 (RFC 4975 §7.1.2): a REPORT with the
// failure's code covering the bytes accepted, when Failure-Report is yes or
// partial.
func (s *MSRPSession) failureReportLocked(c *Chunk, im *inMessage, err error) {
	var te *TransactionError
	if im == nil || im.written == 0 || !errors.As(err, &te) {
		return
	}
	if fr, _ := c.FailureReport(); fr == FailureReportNo {
		return
	}
	head := *c
	head.Data = nil
	s.reportLocked(&head, te.Code, te.Comment, &ByteRange{Start: 1, End: im.written, Total: im.size})
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
	if _, err := c.MessageID(); err != nil && !errors.Is(err, ErrHeaderMissing) {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	if br, err := c.ByteRange(); err == nil {
		if reason := rangeDisagrees(br, int64(len(c.Data)), c.ContFlag); reason != "" {
			return &TransactionError{Code: 400, Comment: "Byte-Range " + br.String() + ": " + reason}
		}
	} else if !errors.Is(err, ErrHeaderMissing) {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	if len(c.Data) == 0 {
		return nil
	}
	ct, err := c.contentType(&s.t.valid)
	if errors.Is(err, ErrHeaderMissing) {
		return &TransactionError{Code: 415, Comment: "Content-Type header missing"}
	}
	if err != nil {
		return &TransactionError{Code: 400, Comment: err.Error()}
	}
	if !containsMIMEType(s.cfg.AcceptTypes, ct) {
		return &TransactionError{Code: 415, Comment: "Unsupported media type"}
	}
	return nil
}

// rangeDisagrees says how a chunk's Byte-Range and body of n bytes
// disagree (RFC 4975 §7.1.1), or "": a numeric end must match the body,
// the body must not run past the total, and the last chunk ("$") must end
// at the total when it is known.
func rangeDisagrees(br ByteRange, n int64, flag byte) string {
	end := br.Start - 1 + n
	switch {
	case br.End != Unknown && br.End != end:
		return fmt.Sprintf("the body has %d bytes", n)
	case br.Total != Unknown && end > br.Total:
		return "the body runs past the total"
	case br.Total != Unknown && (flag == FlagEnd || flag == 0) && end != br.Total:
		return "the last chunk does not end at the total"
	}
	return ""
}

// containsMIMEType reports whether mediaType (parameters are ignored) is
// matched by one of patterns: "*", an exact type, or "type/*". Matching
// ignores case. msrplib's contains_mime_type.
func containsMIMEType(patterns []string, mediaType string) bool {
	mt, _, _ := strings.Cut(mediaType, ";")
	mt = strings.TrimSpace(mt)
	for _, p := range patterns {
		p, _, _ = strings.Cut(p, ";") // "A format entry with parameters matches the same without" (§8.6)
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
