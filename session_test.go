package msrp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects what a session hands to the application.
type recorder struct {
	mu       sync.Mutex
	chunks   []*Chunk
	messages []*IncomingMessage
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) onChunk(_ *MSRPSession, c *Chunk) {
	r.mu.Lock()
	r.chunks = append(r.chunks, c)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) onMessage(_ *MSRPSession, m *IncomingMessage) {
	r.mu.Lock()
	r.messages = append(r.messages, m)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// snapshot returns copies of what was recorded so far.
func (r *recorder) snapshot() ([]*Chunk, []*IncomingMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Chunk(nil), r.chunks...), append([]*IncomingMessage(nil), r.messages...)
}

// waitFor waits until cond holds over what was recorded.
func (r *recorder) waitFor(t *testing.T, what string, cond func(chunks []*Chunk, msgs []*IncomingMessage) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.chunks, r.messages)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sessionPair starts sessions on both ends of a loopback TCP connection.
func sessionPair(t *testing.T, cfgA, cfgB SessionConfig) (*MSRPSession, *MSRPSession) {
	ta, tb := pipePair(t)
	a, b := NewMSRPSession(ta, cfgA), NewMSRPSession(tb, cfgB)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// sessionAndPeer starts a session on one end and returns the raw transport
// of the other, to script the peer's behaviour.
func sessionAndPeer(t *testing.T, cfg SessionConfig) (*MSRPSession, *MSRPTransport) {
	ts, peer := pipePair(t)
	s := NewMSRPSession(ts, cfg)
	t.Cleanup(func() { s.Close() })
	return s, peer
}

func textSend(t *MSRPTransport, text string) *Chunk {
	c := t.MakeSendRequest("", []byte(text), 1, 0)
	c.Headers.Set(HeaderContentType, "text/plain")
	return c
}

func TestSessionExchange(t *testing.T) {
	leakcheck.Check(t)
	ra, rb := newRecorder(), newRecorder()
	a, b := sessionPair(t, SessionConfig{OnIncoming: ra.onChunk}, SessionConfig{OnIncoming: rb.onChunk})
	ctx := context.Background()
	resp, err := a.DeliverChunk(ctx, textSend(a.Transport(), "hello B"))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)
	rb.waitFor(t, "B to get the chunk", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) == 1 })
	bChunks, _ := rb.snapshot()
	assert.Equal(t, "hello B", string(bChunks[0].Data))

	resp, err = b.DeliverChunk(ctx, textSend(b.Transport(), "hello A"))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)
	ra.waitFor(t, "A to get the chunk", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) == 1 })

	require.NoError(t, a.Shutdown(ctx))
	<-a.Done()
	assert.Equal(t, StateDone, a.State())
	assert.NoError(t, a.Err())
	<-b.Done()
	assert.NoError(t, b.Err(), "B saw a clean end: nothing of its own was lost")
	_, err = a.DeliverChunk(ctx, textSend(a.Transport(), "too late"))
	assert.ErrorIs(t, err, ErrSessionClosed)
}

// peerExpect reads chunks at the raw peer until one satisfies match.
func peerRead(t *testing.T, peer *MSRPTransport) *Chunk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := peer.ReadChunk(ctx)
	require.NoError(t, err)
	return c
}

// peerSendExpect writes a request, as it is, at the raw peer and returns the
// session's response, or nil if it sends none. The session answers requests in the
// order they arrive, so a probe sent after the request, which is always
// answered (501) and never delivered, tells when no response is coming.
// REPORTs the session sends meanwhile are skipped.
func peerSendExpect(t *testing.T, peer *MSRPTransport, req *Chunk) *Chunk {
	t.Helper()
	_, err := peer.netConn().Write(encodeUnchecked(req)) // the peer may break the rules
	require.NoError(t, err)
	probe := peer.MakeRequest("PROBE")
	require.NoError(t, peer.WriteChunk(context.Background(), probe))
	var got *Chunk
	for {
		c := peerRead(t, peer)
		switch {
		case c.IsRequest():
		case c.TransactionID == probe.TransactionID:
			require.Equal(t, 501, c.Code)
			return got
		case c.TransactionID == req.TransactionID:
			require.Nil(t, got, "answered twice")
			got = c
		}
	}
}

// peerExpectNothingMore checks that the session sends nothing before the
// answer to a probe.
func peerExpectNothingMore(t *testing.T, peer *MSRPTransport) {
	t.Helper()
	probe := peer.MakeRequest("PROBE")
	require.NoError(t, peer.WriteChunk(context.Background(), probe))
	c := peerRead(t, peer)
	assert.Equal(t, probe.TransactionID, c.TransactionID, "nothing before the probe's answer, got %s", c)
}

func TestSessionIncomingRules(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	s, peer := sessionAndPeer(t, SessionConfig{AcceptTypes: []string{"text/plain", "image/*"}, OnIncoming: rec.onChunk})
	codeOf := func(req *Chunk) int {
		t.Helper()
		resp := peerSendExpect(t, peer, req)
		if resp == nil {
			return 0
		}
		require.Equal(t, req.TransactionID, resp.TransactionID)
		return resp.Code
	}
	modify := func(f func(c *Chunk)) *Chunk {
		c := textSend(peer, "body")
		f(c)
		return c
	}

	assert.Equal(t, 200, codeOf(textSend(peer, "plain")))
	assert.Equal(t, 200, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderContentType, "text/plain; charset=utf-8") })), "msrplib 0.19.0: parameters ignored")
	assert.Equal(t, 200, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderContentType, "image/png") })))
	assert.Equal(t, 415, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderContentType, "application/pdf") })))
	assert.Equal(t, 415, codeOf(modify(func(c *Chunk) { c.Headers.Del(HeaderContentType) })))
	assert.Equal(t, 481, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderToPath, "msrp://127.0.0.1:2/other;tcp") })))
	assert.Equal(t, 481, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderFromPath, "msrp://127.0.0.1:9/stranger;tcp") })))
	// A From-Path that does not parse gets its 400 along the path the
	// session knows (a response's To-Path is otherwise built from it).
	assert.Equal(t, 400, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderFromPath, "not a uri") })))
	assert.Equal(t, 200, codeOf(peer.MakeSendRequest("", nil, 1, 0)), "empty SEND, as in binding and keepalive")

	// Failure-Report rules (RFC 4975 §7.1.2).
	assert.Equal(t, 0, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderFailureReport, "no") })), "no response at all")
	assert.Equal(t, 0, codeOf(modify(func(c *Chunk) { c.Headers.Set(HeaderFailureReport, "partial") })), "no 200 for partial")
	assert.Equal(t, 415, codeOf(modify(func(c *Chunk) {
		c.Headers.Set(HeaderFailureReport, "partial")
		c.Headers.Set(HeaderContentType, "application/pdf")
	})), "negative responses for partial")

	// REPORTs are never answered, and reach the application.
	report := peer.MakeRequest(MethodREPORT)
	report.Headers.Add(HeaderMessageID, "m1234567")
	report.Headers.Add(HeaderByteRange, "1-4/4")
	report.Headers.Add(HeaderStatus, "000 200 OK")
	assert.Equal(t, 0, codeOf(report))

	// Other methods: 501, unless Failure-Report forbids any response.
	assert.Equal(t, 501, codeOf(peer.MakeRequest("FROBNICATE")))

	rec.waitFor(t, "the accepted chunks and the REPORT", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) >= 5 })
	var methods []string
	chunks, _ := rec.snapshot()
	for _, c := range chunks {
		methods = append(methods, c.Method)
	}
	assert.Equal(t, []string{"SEND", "SEND", "SEND", "SEND", "SEND", "SEND", "REPORT"}, methods,
		"accepted SENDs (plain, charset, image, empty, Failure-Report no and partial) and the REPORT; refused ones never")
	assert.Equal(t, StateConnected, s.State())
}

// msrplib §11.2 #8: a malformed header value killed the session; here it
// gets 400 and the session goes on.
func TestMsrplibBug8MalformedHeaderGets400(t *testing.T) {
	s, peer := sessionAndPeer(t, SessionConfig{})
	for _, h := range []HeaderField{
		{HeaderByteRange, "x"}, {HeaderSuccessReport, "maybe"}, {HeaderFailureReport, "sometimes"},
		{HeaderMessageID, "a b"}, {HeaderContentType, "text"},
	} {
		c := textSend(peer, "body")
		c.Headers.Set(h.Name, h.Value)
		resp := peerSendExpect(t, peer, c)
		require.NotNil(t, resp, h.Name)
		assert.Equal(t, 400, resp.Code, h.Name)
	}
	// A header line the parser itself refuses gets 400 too.
	raw, err := textSend(peer, "body").Encode(nil)
	require.NoError(t, err)
	raw = bytes.Replace(raw, []byte("Content-Type"), []byte("Bad Header: x\r\nContent-Type"), 1)
	_, err = peer.netConn().Write(raw)
	require.NoError(t, err)
	assert.Equal(t, 400, peerRead(t, peer).Code)
	assert.Equal(t, 200, peerSendExpect(t, peer, textSend(peer, "still fine")).Code)
	assert.Equal(t, StateConnected, s.State())
}

// msrplib §11.2 #9: NICKNAME or an unknown method with Failure-Report: no
// crashed the writer. Here they get no response, and the session goes on.
func TestMsrplibBug9NoResponseWanted(t *testing.T) {
	rec := newRecorder()
	s, peer := sessionAndPeer(t, SessionConfig{OnIncoming: rec.onChunk})
	for _, method := range []string{"FROBNICATE", MethodNICKNAME} {
		c := peer.MakeRequest(method)
		c.Headers.Set(HeaderFailureReport, "no")
		assert.Nil(t, peerSendExpect(t, peer, c), method)
	}
	assert.Equal(t, 200, peerSendExpect(t, peer, textSend(peer, "still fine")).Code)
	assert.Equal(t, StateConnected, s.State())
}

func TestSessionNickname(t *testing.T) {
	rec := newRecorder()
	s, peer := sessionAndPeer(t, SessionConfig{OnIncoming: rec.onChunk})
	bare := peer.MakeRequest(MethodNICKNAME)
	assert.Equal(t, 400, peerSendExpect(t, peer, bare).Code, "Use-Nickname is required")
	nick := peer.MakeRequest(MethodNICKNAME)
	nick.Headers.Set(HeaderUseNickname, `"Alice"`)
	require.NoError(t, peer.WriteChunk(context.Background(), nick))
	rec.waitFor(t, "the NICKNAME", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) == 1 })
	nicks, _ := rec.snapshot()
	require.NoError(t, s.Respond(nicks[0], 425, ""))
	resp := peerRead(t, peer)
	assert.Equal(t, 425, resp.Code)
	assert.Equal(t, nick.TransactionID, resp.TransactionID)
}

// Success-Report: yes brings a REPORT 000 200 whose Byte-Range covers the
// chunk's bytes exactly; REPORTs carry no Success-/Failure-Report.
func TestSessionSuccessReport(t *testing.T) {
	_, peer := sessionAndPeer(t, SessionConfig{})
	c := peer.MakeSendRequest("m1234567", []byte("0123456789"), 11, 30)
	c.Headers.Set(HeaderContentType, "text/plain")
	c.Headers.Set(HeaderSuccessReport, "yes")
	require.NoError(t, peer.WriteChunk(context.Background(), c))
	resp := peerRead(t, peer)
	assert.Equal(t, 200, resp.Code)
	report := peerRead(t, peer)
	assert.Equal(t, MethodREPORT, report.Method)
	assert.NotEqual(t, c.TransactionID, report.TransactionID)
	assert.Equal(t, "m1234567", report.Headers.Get(HeaderMessageID))
	assert.Equal(t, "11-20/30", report.Headers.Get(HeaderByteRange))
	assert.Equal(t, "000 200 OK", report.Headers.Get(HeaderStatus))
	assert.Equal(t, peer.LocalURI().String(), report.Headers.Get(HeaderToPath))
	_, has := report.Headers.Lookup(HeaderSuccessReport)
	assert.False(t, has)

	// With automatic reports off, none is sent.
	_, peer2 := sessionAndPeer(t, SessionConfig{DisableAutomaticReports: true})
	require.NoError(t, peer2.WriteChunk(context.Background(), c))
	assert.Equal(t, 200, peerRead(t, peer2).Code)
	peerExpectNothingMore(t, peer2)
}

// pipeSessionAndPeer is sessionAndPeer over net.Pipe, for synctest.
func pipeSessionAndPeer(t *testing.T, cfg SessionConfig) (*MSRPSession, *MSRPTransport) {
	a, b := net.Pipe()
	aURI := URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	bURI := URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
	ta, peer := NewMSRPTransport(a, aURI), NewMSRPTransport(b, bURI)
	ta.SetRemotePath([]URI{bURI})
	peer.SetRemotePath([]URI{aURI})
	s := NewMSRPSession(ta, cfg)
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// answerEvery answers each request the peer reads with code, until the
// connection ends, and counts them.
func answerEvery(peer *MSRPTransport, code int) *atomic.Int32 {
	var n atomic.Int32
	go func() {
		for {
			c, err := peer.ReadChunk(context.Background())
			if err != nil {
				return
			}
			n.Add(1)
			peer.WriteResponse(context.Background(), c, code, "")
		}
	}()
	return &n
}

// drain reads and discards at the peer until it closes.
func drain(peer *MSRPTransport) {
	for {
		if _, err := peer.ReadChunk(context.Background()); err != nil {
			return
		}
	}
}

func TestSessionResponseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		go drain(peer) // reads everything, answers nothing
		start := time.Now()
		_, err := s.DeliverChunk(context.Background(), textSend(s.Transport(), "anyone?"))
		var te *TransactionError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, 408, te.Code)
		assert.ErrorIs(t, err, ErrTimeout)
		assert.Equal(t, DefaultResponseTimeout, time.Since(start))
		assert.Equal(t, StateConnected, s.State(), "a timed-out transaction does not end the session")
	})
}

// msrplib §11.2 #11: with Failure-Report partial or no the peer sends no
// 200, so success is reported when the chunk is written, not 408 after 30 s.
// msrplib §11.2 #10: DeliverChunk with Failure-Report: no crashed.
func TestMsrplibBug10And11LocalSuccess(t *testing.T) {
	for _, fr := range []string{"no", "partial"} {
		t.Run(fr, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: rec.onChunk})
				got := make(chan *Chunk, 1)
				go func() {
					c, err := peer.ReadChunk(context.Background())
					if err == nil {
						got <- c
					}
					drain(peer)
				}()
				start := time.Now()
				c := textSend(s.Transport(), "fire and forget")
				c.Headers.Set(HeaderFailureReport, fr)
				resp, err := s.DeliverChunk(context.Background(), c)
				require.NoError(t, err)
				assert.Equal(t, 200, resp.Code)
				assert.Zero(t, time.Since(start), "no wait for a response that will not come")
				sent := <-got
				if fr == "partial" {
					// A negative response that arrives anyway reaches the application.
					neg, err := NewResponse(sent, 415, "")
					require.NoError(t, err)
					require.NoError(t, peer.WriteChunk(context.Background(), neg))
					synctest.Wait()
					chunks, _ := rec.snapshot()
					require.Len(t, chunks, 1)
					assert.Equal(t, 415, chunks[0].Code)
				}
			})
		})
	}
}

// msrplib §11.2 #12: when the connection drops, pending transactions fail
// at once with the cause, not 30 s later.
func TestMsrplibBug12DropFailsPendingAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		read := make(chan struct{})
		go func() {
			peer.ReadChunk(context.Background())
			close(read)
		}()
		errs := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := s.DeliverChunk(context.Background(), textSend(s.Transport(), "pending"))
			errs <- err
		}()
		<-read
		peer.Close()
		err := <-errs
		assert.ErrorIs(t, err, ErrSessionClosed)
		assert.ErrorIs(t, err, io.EOF)
		assert.Zero(t, time.Since(start))
		<-s.Done()
		assert.ErrorIs(t, s.Err(), ErrPeerClosed, "the request was lost")
		assert.ErrorIs(t, s.Err(), io.EOF)
	})
}

// The peer closing at a chunk boundary in the middle of a message of its
// own: the message ends with ErrPeerClosed, and so does the session.
func TestSessionPeerClosesMidMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
		first := peer.MakeSendRequest("m1234567", []byte("half"), 1, 8)
		first.Headers.Set(HeaderContentType, "text/plain")
		require.NoError(t, peer.WriteChunk(context.Background(), first))
		assert.Equal(t, 200, peerRead(t, peer).Code)
		peer.Close()
		<-s.Done()
		assert.ErrorIs(t, s.Err(), ErrPeerClosed)
		_, msgs := rec.snapshot()
		require.Len(t, msgs, 1)
		assert.ErrorIs(t, msgs[0].Err, ErrPeerClosed)
		assert.ErrorIs(t, msgs[0].Err, ErrSessionClosed)
	})
}

func TestSessionKeepalive(t *testing.T) {
	t.Run("answered: the session stays", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{})
			keepalives := answerEvery(peer, 200)
			time.Sleep(5*DefaultKeepaliveInterval + time.Second)
			synctest.Wait()
			assert.EqualValues(t, 5, keepalives.Load(), "one empty SEND per silent minute")
			assert.Equal(t, StateConnected, s.State())
		})
	})
	t.Run("unanswered: 408 ends the session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{})
			go drain(peer)
			start := time.Now()
			<-s.Done()
			assert.Equal(t, DefaultKeepaliveInterval+DefaultResponseTimeout, time.Since(start))
			assert.ErrorIs(t, s.Err(), ErrTimeout)
		})
	})
}

// msrplib §11.2 #20: peers that answer keepalives with an error are
// tolerated; only silence (408) ends the session.
func TestMsrplibBug20KeepaliveTolerance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{})
		refused := answerEvery(peer, 400)
		time.Sleep(3*DefaultKeepaliveInterval + time.Second)
		synctest.Wait()
		assert.EqualValues(t, 3, refused.Load(), "a keepalive each silent minute, each refused")
		assert.Equal(t, StateConnected, s.State())
	})
}

func TestSessionSendChunkChecks(t *testing.T) {
	s, peer := sessionAndPeer(t, SessionConfig{MaxPending: 3, KeepaliveInterval: -1})
	go drain(peer)
	c := textSend(s.Transport(), "x")
	require.NoError(t, s.SendChunk(c, func(*Chunk, error) {}))
	assert.ErrorContains(t, s.SendChunk(c, func(*Chunk, error) {}), "already pending", "duplicate transaction id")
	require.NoError(t, s.SendChunk(textSend(s.Transport(), "y"), func(*Chunk, error) {}))
	require.NoError(t, s.SendChunk(textSend(s.Transport(), "z"), func(*Chunk, error) {}))
	assert.ErrorIs(t, s.SendChunk(textSend(s.Transport(), "w"), func(*Chunk, error) {}), ErrTooManyPending)
	bad := textSend(s.Transport(), "v")
	bad.Headers.Add("X-Bad", "a\r\nb")
	_, err := s.DeliverChunk(context.Background(), bad)
	assert.Error(t, err)
}

func TestSessionShutdownFlushes(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	a, b := sessionPair(t, SessionConfig{}, SessionConfig{OnIncoming: rec.onChunk})
	var answered sync.WaitGroup
	for i := range 50 {
		answered.Add(1)
		require.NoError(t, a.SendChunk(textSend(a.Transport(), strings.Repeat("x", i)), func(resp *Chunk, err error) {
			assert.NoError(t, err)
			answered.Done()
		}))
	}
	require.NoError(t, a.Shutdown(context.Background()))
	answered.Wait()
	// b answers as it reads and runs OnIncoming after; it ends when a
	// closes, and its Done waits for the last callback.
	<-b.Done()
	chunks, _ := rec.snapshot()
	assert.Len(t, chunks, 50, "everything queued went out and was answered")
}

func TestSessionCloseFailsQueued(t *testing.T) {
	leakcheck.Check(t)
	s, peer := sessionAndPeer(t, SessionConfig{})
	go drain(peer)
	errs := make(chan error, 10)
	for range 10 {
		require.NoError(t, s.SendChunk(textSend(s.Transport(), "x"), func(_ *Chunk, err error) { errs <- err }))
	}
	require.NoError(t, s.Close())
	for range 10 {
		assert.ErrorIs(t, <-errs, ErrSessionClosed)
	}
	assert.NoError(t, s.Err(), "closed on purpose")
	<-s.Done() // once the last callback has returned
	assert.Equal(t, StateDone, s.State())
}

func TestContainsMIMEType(t *testing.T) {
	assert.True(t, containsMIMEType([]string{"*"}, "anything/here"))
	assert.True(t, containsMIMEType([]string{"text/plain"}, "TEXT/Plain; charset=utf-8"))
	assert.True(t, containsMIMEType([]string{"message/*"}, "message/cpim"))
	assert.False(t, containsMIMEType([]string{"message/*"}, "message/"))
	assert.False(t, containsMIMEType([]string{"text/plain"}, "text/html"))
	assert.False(t, containsMIMEType(nil, "text/plain"))
}

func TestSessionMessages(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	a, _ := sessionPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: DefaultChunkSize}},
		SessionConfig{MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
	body := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160,000 bytes: 20 chunks of 8 KiB
	var progress []int64
	lastProgress := make(chan struct{})
	m, err := a.SendMessage(bytes.NewReader(body), int64(len(body)), "application/octet-stream",
		MessageOptions{OnProgress: func(sent, size int64) {
			progress = append(progress, sent)
			if sent == size {
				close(lastProgress)
			}
		}})
	require.NoError(t, err)
	require.NoError(t, m.Wait(context.Background()))
	<-lastProgress // progress is reported on the callback goroutine, which Wait does not wait for
	rec.waitFor(t, "the message", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 1 })
	_, msgs := rec.snapshot()
	got := msgs[0]
	require.NoError(t, got.Err)
	assert.Equal(t, m.ID, got.MessageID)
	assert.Equal(t, "application/octet-stream", got.ContentType)
	assert.Equal(t, int64(len(body)), got.Size)
	assert.True(t, bytes.Equal(body, got.Data))
	assert.Len(t, progress, 20)
	assert.Equal(t, int64(len(body)), progress[len(progress)-1])

	// Unknown size: the reader's end ends the message.
	m, err = a.SendMessage(io.LimitReader(bytes.NewReader(body), 20000), Unknown, "text/plain", MessageOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Wait(context.Background()))
	rec.waitFor(t, "the second message", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 2 })
	_, msgs = rec.snapshot()
	assert.Equal(t, body[:20000], msgs[1].Data)
	assert.Equal(t, int64(20000), msgs[1].Size, "the last chunk tells the size")
}

// Chunks arriving in any order, with gaps, overlaps, duplicates, a "*" total,
// or an abort, are put together right.
func TestSessionReassembly(t *testing.T) {
	rec := newRecorder()
	_, peer := sessionAndPeer(t, SessionConfig{MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
	ctx := context.Background()
	send := func(mid string, data string, start, total int64, flag byte) {
		t.Helper()
		c := peer.MakeSendRequest(mid, []byte(data), start, total)
		c.Headers.Set(HeaderContentType, "text/plain")
		c.ContFlag = flag
		require.NoError(t, peer.WriteChunk(ctx, c))
		assert.Equal(t, 200, peerRead(t, peer).Code)
	}
	// Reverse order, with an overlap and a duplicate.
	send("msg-reverse", "klmnop", 11, 16, '$')
	send("msg-reverse", "fghij", 6, 16, '+')
	send("msg-reverse", "fghij", 6, 16, '+')
	send("msg-reverse", "abcdefg", 1, 16, '+')
	// Unknown total: the "$" chunk says where the end is.
	send("msg-star", "world", 7, Unknown, '$')
	send("msg-star", "hello ", 1, Unknown, '+')
	// Aborted by the sender.
	send("msg-abort", "partial", 1, 100, '+')
	send("msg-abort", "", 8, 100, '#')
	rec.waitFor(t, "three messages", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 3 })
	byID := map[string]*IncomingMessage{}
	_, msgs := rec.snapshot()
	for _, m := range msgs {
		byID[m.MessageID] = m
	}
	assert.Equal(t, "abcdefghijklmnop", string(byID["msg-reverse"].Data))
	assert.NoError(t, byID["msg-reverse"].Err)
	assert.Equal(t, "hello world", string(byID["msg-star"].Data))
	assert.Equal(t, int64(11), byID["msg-star"].Size, "known once the last chunk has come")
	assert.ErrorIs(t, byID["msg-abort"].Err, ErrMessageAborted)
}

// A message over the receiver's cap is refused with 413; the sender stops
// and ends the message with "#" (RFC 4975 §10.5).
func TestSession413StopsTheMessage(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	a, _ := sessionPair(t, SessionConfig{}, SessionConfig{MessageConfig: MessageConfig{OnMessage: rec.onMessage, MaxMessageSize: 50000}})
	body := make([]byte, 1<<20)
	m, err := a.SendMessage(bytes.NewReader(body), Unknown, "application/octet-stream", MessageOptions{})
	require.NoError(t, err)
	err = m.Wait(context.Background())
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 413, te.Code)
	rec.waitFor(t, "the refused message", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 1 })
	_, msgs := rec.snapshot()
	require.ErrorAs(t, msgs[0].Err, &te)
	assert.Equal(t, 413, te.Code)
	assert.Equal(t, StateConnected, a.State())

	// The sender can Abort a message itself. Its reader holds the message
	// back, so that no chunk can bring a 413 before the Abort.
	pr, pw := io.Pipe()
	defer pw.Close()
	m, err = a.SendMessage(pr, Unknown, "application/octet-stream", MessageOptions{})
	require.NoError(t, err)
	m.Abort()
	assert.ErrorIs(t, m.Wait(context.Background()), ErrMessageAborted)
}

// A message refused after part of it was accepted brings a failure REPORT
// for the accepted part (RFC 4975 §7.1.2).
func TestSessionFailureReportAfterAcceptance(t *testing.T) {
	_, peer := sessionAndPeer(t, SessionConfig{MessageConfig: MessageConfig{
		OnMessage: func(*MSRPSession, *IncomingMessage) {}, MaxMessageSize: 10,
	}})
	first := peer.MakeSendRequest("m1234567", []byte("12345678"), 1, Unknown)
	first.Headers.Set(HeaderContentType, "text/plain")
	assert.Equal(t, 200, peerSendExpect(t, peer, first).Code)
	second := peer.MakeSendRequest("m1234567", []byte("9abcdefg"), 9, Unknown)
	second.Headers.Set(HeaderContentType, "text/plain")
	require.NoError(t, peer.WriteChunk(context.Background(), second))
	resp := peerRead(t, peer)
	assert.Equal(t, 413, resp.Code)
	report := peerRead(t, peer)
	assert.Equal(t, MethodREPORT, report.Method)
	assert.Equal(t, "m1234567", report.Headers.Get(HeaderMessageID))
	assert.Equal(t, "000 413 Message too large", report.Headers.Get(HeaderStatus))
	assert.Equal(t, "1-8/*", report.Headers.Get(HeaderByteRange))
	third := peer.MakeSendRequest("m1234567", []byte("h"), 17, Unknown)
	third.Headers.Set(HeaderContentType, "text/plain")
	assert.Equal(t, 413, peerSendExpect(t, peer, third).Code, "later chunks of the refused message too")
}

// A 100 MiB message streams to an io.Writer at the far end and its SHA-256
// matches.
func TestSessionStreams100MiB(t *testing.T) {
	leakcheck.Check(t)
	const size = 100 << 20
	h := sha256.New()
	rec := newRecorder()
	a, _ := sessionPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 64 << 10}},
		SessionConfig{MessageConfig: MessageConfig{
			OnMessage:     rec.onMessage,
			MessageWriter: func(*MSRPSession, *IncomingMessage) io.Writer { return h },
		}})
	src := sha256.New()
	r := io.TeeReader(io.LimitReader(newPatternReader(), size), src)
	m, err := a.SendMessage(r, size, "application/octet-stream", MessageOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Wait(context.Background()))
	rec.waitFor(t, "the message", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 1 })
	_, msgs := rec.snapshot()
	require.NoError(t, msgs[0].Err)
	assert.Nil(t, msgs[0].Data, "streamed, not kept")
	assert.Equal(t, src.Sum(nil), h.Sum(nil))
}

// patternReader yields an endless, cheap, non-repeating-looking stream.
type patternReader struct{ n uint64 }

func newPatternReader() *patternReader { return &patternReader{n: 88172645463325252} }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		p.n ^= p.n << 13
		p.n ^= p.n >> 7
		p.n ^= p.n << 17
		b[i] = byte(p.n)
	}
	return len(b), nil
}

// A chat message queued behind a large transfer goes out within a few of
// its chunks.
func TestSessionChatOvertakesTransfer(t *testing.T) {
	leakcheck.Check(t)
	var mu sync.Mutex
	var order []string // "big" or "chat", as chunks arrive
	chatSeen := make(chan struct{})
	a, _ := sessionPair(t, SessionConfig{}, SessionConfig{OnIncoming: func(_ *MSRPSession, c *Chunk) {
		mu.Lock()
		defer mu.Unlock()
		if c.Headers.Get(HeaderContentType) == "text/plain" {
			order = append(order, "chat")
			close(chatSeen)
		} else if len(c.Data) > 0 {
			order = append(order, "big")
		}
	}})
	big, err := a.SendMessage(io.LimitReader(newPatternReader(), 64<<20), 64<<20, "application/octet-stream", MessageOptions{})
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond) // the transfer is under way
	_, err = a.DeliverChunk(context.Background(), textSend(a.Transport(), "are you still there?"))
	require.NoError(t, err)
	<-chatSeen
	big.Abort()
	_ = big.Wait(context.Background())
	mu.Lock()
	defer mu.Unlock()
	i := 0
	for order[i] != "chat" {
		i++
	}
	before := i
	assert.Less(t, before, 64<<20/DefaultDirectChunkSize, "the chat did not wait for the whole transfer")
	t.Logf("%d chunks of the transfer arrived before the chat message, which went out while %d were", before, len(order))
}

// Message chunks are sized for relays when one is on the path, larger on
// a direct connection, and as configured when ChunkSize is set; through a
// relay a message has one chunk in flight at a time.
func TestSessionChunkSize(t *testing.T) {
	relay := URI{UseTLS: true, Host: "relay.example.com", Port: 2855, SessionID: "r1", Transport: "tcp"}
	peer := URI{Host: "10.0.0.2", Port: 2855, SessionID: "p1", Transport: "tcp"}
	for _, tc := range []struct {
		name        string
		local, path []URI
		configured  int
		want        int
	}{
		{"direct", nil, []URI{peer}, 0, DefaultDirectChunkSize},
		{"our relay", []URI{relay}, []URI{peer}, 0, DefaultChunkSize},
		{"their relay", nil, []URI{relay, peer}, 0, DefaultChunkSize},
		{"configured", nil, []URI{peer}, 1000, 1000},
	} {
		tr := NewMSRPTransport(nil, URI{Host: "10.0.0.1", SessionID: "me"})
		tr.SetLocalPath(tc.local)
		tr.SetRemotePath(tc.path)
		s := &MSRPSession{t: tr, cfg: SessionConfig{MessageConfig: MessageConfig{ChunkSize: tc.configured}}}
		assert.Equal(t, tc.want, s.chunkSize(), tc.name)
		wantWindow := DefaultWindow
		if tc.want == DefaultChunkSize {
			wantWindow = 1 // through a relay: one chunk at a time, as Kamailio needs
		}
		assert.Equal(t, wantWindow, s.window(), tc.name)
	}
}

// A chunk whose Byte-Range disagrees with its body is refused with 400
// (RFC 4975 §7.1.1), nothing of it is stored, and a message completes only
// with its last chunk ("$"), never before. Before, a 10-byte body said to be
// bytes 1-4 of 8 completed the message at once with 10 bytes, and the
// message's real last chunk then opened a second one that never completed.
func TestSessionByteRangeMustAgree(t *testing.T) {
	rec := newRecorder()
	_, peer := sessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
	send := func(mid, data, byteRange string, flag byte) int {
		t.Helper()
		c := peer.MakeSendRequest(mid, []byte(data), 1, 0)
		c.Headers.Set(HeaderByteRange, byteRange)
		c.Headers.Set(HeaderContentType, "text/plain")
		c.ContFlag = flag
		resp := peerSendExpect(t, peer, c)
		require.NotNil(t, resp)
		return resp.Code
	}
	for i, tc := range []struct {
		name, data, byteRange string
		flag                  byte
	}{
		{"body longer than the range", "0123456789", "1-4/8", '+'},
		{"a 3,661-byte body said to be 2,048", strings.Repeat("x", 3661), "1-2048/65536", '+'},
		{"body shorter than the range", "ab", "1-4/8", '+'},
		{"body past the total", "abcd", "7-10/8", '+'},
		{"last chunk short of the total", "abcd", "1-4/8", '$'},
	} {
		assert.Equal(t, 400, send(fmt.Sprintf("m-refused-%d", i), tc.data, tc.byteRange, tc.flag), tc.name)
	}
	// Every byte, and no "$" yet: not complete.
	assert.Equal(t, 200, send("m-whole-no-end", "abcd", "1-4/4", '+'))
	peerExpectNothingMore(t, peer)
	_, msgs := rec.snapshot()
	assert.Empty(t, msgs, "no message completed, and no refused chunk started one")
	// The empty last chunk ends it.
	assert.Equal(t, 200, send("m-whole-no-end", "", "5-4/4", '$'))
	rec.waitFor(t, "the message", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 1 })
	_, msgs = rec.snapshot()
	assert.NoError(t, msgs[0].Err)
	assert.Equal(t, "abcd", string(msgs[0].Data))
	// A total that changes, or bytes after the last chunk, refuse the message.
	assert.Equal(t, 200, send("m-total-changes", "ab", "1-2/6", '+'))
	assert.Equal(t, 400, send("m-total-changes", "cd", "3-4/8", '+'))
	assert.Equal(t, 200, send("m-past-the-end", "ab", "3-4/*", '$'))
	assert.Equal(t, 400, send("m-past-the-end", "cd", "5-6/*", '+'))
	rec.waitFor(t, "both refused", func(_ []*Chunk, ms []*IncomingMessage) bool { return len(ms) == 3 })
	_, msgs = rec.snapshot()
	for _, m := range msgs[1:] {
		var te *TransactionError
		require.ErrorAs(t, m.Err, &te, m.MessageID)
		assert.Equal(t, 400, te.Code)
	}
}
