package msrp

import (
	"bytes"
	"io"
)

// This file puts incoming messages together from their chunks.

// IncomingMessage is a message put together from incoming chunks. The
// session fills it in on the callback goroutine before OnMessage.
type IncomingMessage struct {
	MessageID   string
	ContentType string // of the first chunk that arrived
	Headers     Header // of the first chunk that arrived
	Size        int64  // from Byte-Range; Unknown if no chunk said
	Received    int64  // body bytes received in order from the first: all of them once complete
	Data        []byte // the body, when kept in memory and complete
	Err         error  // nil once complete; else why the message ended
}

// inMessage is the session's side of an incoming message, guarded by the
// session's mutex.
type inMessage struct {
	m        *IncomingMessage // the application's, filled in on the callback goroutine
	sink     *messageSink     // where the body goes, on the callback goroutine
	head     *Chunk           // its first chunk without the body, for failure REPORTs
	size     int64
	written  int64     // bytes handed to the sink in order: the next byte is written+1
	ahead    fragments // parts beyond a gap
	aheadN   int64     // their bytes, and fragmentCost each
	endPos   int64     // last byte, once the final chunk has arrived
	highest  int64     // the last byte position of any chunk taken so far
	lastSeen bool      // the final chunk ("$") has arrived
	inMemory bool      // no MessageWriter: the size cap is checked here
	err      error
}

// messageSink is where an incoming message's body goes. Only the callback
// goroutine touches it.
type messageSink struct {
	w        io.Writer
	mem      *bytes.Buffer
	limit    int64
	err      error
	reported bool
}

func (k *messageSink) open(s *MSRPSession, m *IncomingMessage, writerFor func(*MSRPSession, *IncomingMessage) io.Writer) {
	if k.w = writerFor(s, m); k.w == nil {
		k.mem = &bytes.Buffer{}
	}
}

func (k *messageSink) write(segments [][]byte) {
	for _, d := range segments {
		if k.err != nil {
			return
		}
		if k.mem != nil {
			if int64(k.mem.Len()+len(d)) > k.limit {
				k.err = &TransactionError{Code: 413, Comment: "Message too large"}
				return
			}
			k.mem.Write(d)
			continue
		}
		if _, err := k.w.Write(d); err != nil {
			k.err = &TransactionError{Code: 413, Comment: "Cannot store message: " + err.Error()}
		}
	}
}

// incomingMessages reassembles a session's incoming messages. Guarded by
// the session's mutex.
type incomingMessages struct {
	cfg     *MessageConfig
	on      bool // messages are put together: OnMessage is set, or Receive is on
	active  map[string]*inMessage
	refused recentIDs // recently refused Message-IDs: their later chunks get 413 too
}

// maxRefusedIDs bounds the refused Message-IDs a session remembers.
const maxRefusedIDs = 256

// recentIDs remembers the last maxRefusedIDs ids added, forgetting the
// oldest first.
type recentIDs struct {
	set   map[string]struct{}
	order []string // ring, oldest at next once full
	next  int
}

func (r *recentIDs) add(id string) {
	if _, ok := r.set[id]; ok {
		return
	}
	if r.set == nil {
		r.set = map[string]struct{}{}
	}
	if len(r.order) < maxRefusedIDs {
		r.order = append(r.order, id)
	} else {
		delete(r.set, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % maxRefusedIDs
	}
	r.set[id] = struct{}{}
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

// overMaxSize refuses a chunk whose message is announced, or runs, past
// MaxSize, by its Byte-Range alone.
func (in *incomingMessages) overMaxSize(c *Chunk) error {
	max := in.cfg.MaxSize
	if max <= 0 {
		return nil
	}
	r, err := c.ByteRange()
	if err != nil {
		return nil
	}
	if (r.Total != Unknown && r.Total > max) || r.Start-1+int64(len(c.Data)) > max {
		return &TransactionError{Code: 413, Comment: "Message larger than max-size"}
	}
	return nil
}

func (in *incomingMessages) init(cfg *MessageConfig, on bool) {
	in.cfg = cfg
	in.on = on
	in.active = map[string]*inMessage{}
}

// add places a SEND chunk in its message, handing the bytes that are now in
// order to the callback goroutine. It returns an error to answer the chunk
// with (413) instead of 200, and the message if the chunk ended it.
func (in *incomingMessages) add(s *MSRPSession, c *Chunk) (*inMessage, error) {
	if !in.on {
		return nil, in.overMaxSize(c) // no reassembly, but max-size holds
	}
	mid, err := c.MessageID()
	if err != nil || (len(c.Data) == 0 && c.ContFlag == FlagEnd && !c.hasBodySection()) {
		return nil, nil // an empty SEND: binding or keepalive, no message
	}
	if in.refused.has(mid) {
		return nil, &TransactionError{Code: 413, Comment: "Message refused"}
	}
	r, err := c.ByteRange()
	if err != nil {
		r = ByteRange{Start: 1, End: int64(len(c.Data)), Total: int64(len(c.Data))}
	}
	im, ok := in.active[mid]
	if !ok && c.ContFlag == FlagAborted {
		return nil, nil // the end of a message not in progress: nothing to end
	}
	if !ok {
		if len(in.active) >= in.cfg.maxIncoming() {
			return nil, &TransactionError{Code: 413, Comment: "Too many messages at once"}
		}
		head := *c
		head.Data = nil
		im = &inMessage{
			m:        &IncomingMessage{MessageID: mid, Headers: c.Headers, Size: r.Total},
			head:     &head,
			size:     r.Total,
			inMemory: in.cfg.MessageWriter == nil,
			sink:     &messageSink{limit: in.cfg.maxMessageSize()},
		}
		im.m.ContentType, _ = c.ContentType()
		if max := in.cfg.MaxSize; max > 0 && im.size != Unknown && im.size > max {
			return in.refuse(im, &TransactionError{Code: 413, Comment: "Message larger than max-size"})
		}
		if im.inMemory {
			if im.size != Unknown && im.size > in.cfg.maxMessageSize() {
				return in.refuse(im, &TransactionError{Code: 413, Comment: "Message too large"})
			}
			im.sink.mem = &bytes.Buffer{}
		} else {
			k, m, writerFor := im.sink, im.m, in.cfg.MessageWriter
			s.callLocked(0, func() { k.open(s, m, writerFor) })
		}
		in.active[mid] = im
	}
	if c.ContFlag == FlagAborted {
		im.err = ErrMessageAborted
		return in.end(im), nil
	}
	if reason := im.contradicts(r, int64(len(c.Data)), c.ContFlag); reason != "" {
		return in.refuse(im, &TransactionError{Code: 400, Comment: reason})
	}
	if err := in.overMaxSize(c); err != nil {
		return in.refuse(im, err)
	}
	if im.size == Unknown {
		im.size = r.Total // a later chunk may tell the size
	}
	segments, bodies, err := in.place(im, r.Start, c.Data)
	if err != nil {
		return in.refuse(im, err)
	}
	im.highest = max(im.highest, r.Start+int64(len(c.Data))-1)
	if len(segments) > 0 {
		release := s.cfg.OnIncoming == nil // else the application has the chunk
		k, n := im.sink, 0
		for _, d := range segments {
			n += len(d)
		}
		s.callLocked(n, func() {
			k.write(segments)
			if k.err != nil && !k.reported {
				k.reported = true
				s.storageFailed(im, k.err)
			}
			if release {
				for _, b := range bodies {
					recycleBody(b)
				}
			}
		})
	}
	if c.ContFlag == FlagEnd {
		im.endPos, im.lastSeen = r.Start+int64(len(c.Data))-1, true
	}
	if im.complete() {
		if im.size == Unknown {
			im.size = im.endPos // the last chunk tells the size, "*" or not
		}
		return in.end(im), nil
	}
	return nil, nil
}

// contradicts says how a chunk of n bytes at r, with flag, disagrees with
// what the message's earlier chunks said, or "" if it does not. Each chunk
// agrees with itself already (rangeDisagrees); here the message must keep
// one size, hold no byte past it, and end with its last chunk no earlier
// than bytes already taken.
func (im *inMessage) contradicts(r ByteRange, n int64, flag byte) string {
	end := r.Start + n - 1
	size := im.size
	switch {
	case size != Unknown && r.Total != Unknown && r.Total != size:
		return "Byte-Range total differs from the message's"
	case size == Unknown && r.Total != Unknown && r.Total < im.highest:
		return "Byte-Range total is below bytes already received"
	case size == Unknown && r.Total != Unknown && im.lastSeen && r.Total != im.endPos:
		return "Byte-Range total differs from where the last chunk ended"
	}
	if size == Unknown {
		size = r.Total
	}
	switch {
	case size != Unknown && end > size:
		return "bytes past the message's total"
	case im.lastSeen && end > im.endPos:
		return "bytes after the message's last chunk"
	case flag == FlagEnd && end < im.highest:
		return "the last chunk ends before bytes already received"
	case flag == FlagEnd && size != Unknown && end != size:
		return "the last chunk does not end at the message's total"
	}
	return ""
}

// place takes data at 1-based position start: what follows the bytes
// written so far is returned as segments to write, in order, with the
// chunk bodies they came from; what lies beyond a gap is held, bounded;
// what was received already is skipped.
func (in *incomingMessages) place(im *inMessage, start int64, data []byte) (segments, bodies [][]byte, err error) {
	next := im.written + 1
	end := start + int64(len(data)) - 1
	switch {
	case len(data) == 0 || end < next:
		return nil, nil, nil // nothing new
	case start > next:
		if cap(data)-len(data) > len(data)/8 {
			// A body in a pooled buffer may have room to spare: held, it
			// costs only what it carries.
			data = append(make([]byte, 0, len(data)), data...)
		}
		cost := int64(len(data)) + fragmentCost
		held := im.aheadN + cost
		if im.inMemory {
			held += im.written // what is in order is kept too
		}
		if len(im.ahead) >= maxFragments || held > in.cfg.maxMessageSize() {
			return nil, nil, &TransactionError{Code: 413, Comment: "Too much out of order"}
		}
		im.ahead.push(fragment{start: start, data: data})
		im.aheadN += cost
		return nil, nil, nil
	}
	if err := in.take(im, data[next-start:]); err != nil {
		return nil, nil, err
	}
	segments, bodies = append(segments, data[next-start:]), append(bodies, data)
	// Fragments held beyond the gap may follow on now, lowest first.
	for len(im.ahead) > 0 && im.ahead[0].start <= im.written+1 {
		f := im.ahead.pop()
		im.aheadN -= int64(len(f.data)) + fragmentCost
		if skip := im.written + 1 - f.start; skip < int64(len(f.data)) {
			if err := in.take(im, f.data[skip:]); err != nil {
				return nil, nil, err
			}
			segments = append(segments, f.data[skip:])
		}
		bodies = append(bodies, f.data)
	}
	return segments, bodies, nil
}

// Bounds on the fragments held beyond a gap. A fragment costs the message's
// memory limit its bytes and fragmentCost more, a little over what the heap
// holds for it (its entry here and the smallest allocation of a body), so
// that many tiny fragments cannot hold more than the limit says.
const (
	fragmentCost = 128
	maxFragments = 1 << 17
)

// fragment is a part of a message that came beyond a gap.
type fragment struct {
	start int64
	data  []byte // a chunk's whole body
}

// fragments is a min-heap of fragments by start: holding one, and taking
// the lowest, cost O(log n), however the peer orders its chunks.
type fragments []fragment

func (h *fragments) push(f fragment) {
	*h = append(*h, f)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if a[parent].start <= a[i].start {
			break
		}
		a[parent], a[i] = a[i], a[parent]
		i = parent
	}
}

func (h *fragments) pop() fragment {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a[last] = fragment{}
	a = a[:last]
	for i := 0; ; {
		low, l, r := i, 2*i+1, 2*i+2
		if l < len(a) && a[l].start < a[low].start {
			low = l
		}
		if r < len(a) && a[r].start < a[low].start {
			low = r
		}
		if low == i {
			break
		}
		a[i], a[low] = a[low], a[i]
		i = low
	}
	*h = a
	return top
}

// take counts bytes written in order, within the cap of a message kept in
// memory.
func (in *incomingMessages) take(im *inMessage, data []byte) error {
	if im.inMemory && im.written+int64(len(data)) > in.cfg.maxMessageSize() {
		return &TransactionError{Code: 413, Comment: "Message too large"}
	}
	im.written += int64(len(data))
	return nil
}

// complete tells whether every byte up to the last chunk's ("$") has come:
// a message is never complete before its last chunk.
func (im *inMessage) complete() bool {
	return im.lastSeen && len(im.ahead) == 0 && im.written >= im.endPos
}

// refuse ends a message with err, and remembers its id so that its later
// chunks are refused too.
func (in *incomingMessages) refuse(im *inMessage, err error) (*inMessage, error) {
	in.refused.add(im.m.MessageID)
	im.err = err
	if in.active[im.m.MessageID] != im {
		return im, err
	}
	return in.end(im), err
}

// end forgets a message; the caller hands it to OnMessage.
func (in *incomingMessages) end(im *inMessage) *inMessage {
	delete(in.active, im.m.MessageID)
	im.ahead = nil
	return im
}

// endAll fails every message in progress; the session has ended.
func (in *incomingMessages) endAll(s *MSRPSession, err error) {
	for _, im := range in.active {
		im.err = err
		s.messageEndedLocked(in.end(im))
	}
}

// messageEndedLocked hands an ended message to OnMessage, or to Receive's
// queue, after the writes of its body.
func (s *MSRPSession) messageEndedLocked(im *inMessage) {
	if im == nil || !s.incoming.on {
		return
	}
	m, k, on := im.m, im.sink, s.cfg.OnMessage
	size, received, err := im.size, im.written, im.err
	held := headerCost(im.m.Headers) // Receive's bounds count what a message holds
	if im.inMemory && err == nil {
		held += int(received)
	}
	if on == nil {
		s.received.owed++ // counted now, so that the reader stops in time
		s.received.bytes += held
	}
	s.callLocked(0, func() {
		m.Size, m.Received, m.Err = size, received, err
		if m.Err == nil && k.err != nil {
			m.Err = k.err
		}
		if m.Err == nil && k.mem != nil {
			m.Data = k.mem.Bytes()
		}
		if on != nil {
			on(s, m)
			return
		}
		s.mu.Lock()
		s.received.push(m, held)
		s.mu.Unlock()
	})
}

// storageFailed takes a failed write of a message's body, on the callback
// goroutine: the message is refused (413 for its later chunks) and its
// sender gets a failure REPORT for what it had sent.
func (s *MSRPSession) storageFailed(im *inMessage, err error) {
	s.mu.Lock()
	defer s.unlock()
	if s.incoming.active[im.m.MessageID] == im {
		s.incoming.refuse(im, err)
		s.messageEndedLocked(im)
	}
	s.failureReportLocked(im.head, im, err)
}
