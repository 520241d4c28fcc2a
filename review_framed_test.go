package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp/internal/leakcheck"
)

// reviewConn is a MessageConn that, like ws.Conn, returns every message in
// one reused buffer, and scribbles over that buffer before each read, so
// that anything that kept a reference to an earlier message sees garbage.
// It records the read limit in force at each read.
type reviewConn struct {
	mu         sync.Mutex
	in         [][]byte
	buf        []byte
	out        [][]byte
	limit      int64
	limitsSeen []int64
	block      bool
	closed     chan struct{}
	closeOnce  sync.Once
}

func newReviewConn(msgs ...[]byte) *reviewConn {
	return &reviewConn{in: msgs, closed: make(chan struct{})}
}

func (f *reviewConn) ReadMessage(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	f.limitsSeen = append(f.limitsSeen, f.limit)
	for i := range f.buf[:cap(f.buf)] {
		f.buf[:cap(f.buf)][i] = 0xA5 // poison what the last message held
	}
	if len(f.in) > 0 {
		m := f.in[0]
		f.in = f.in[1:]
		f.buf = append(f.buf[:0], m...)
		f.mu.Unlock()
		return f.buf, nil
	}
	block := f.block
	f.mu.Unlock()
	if !block {
		return nil, io.EOF
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *reviewConn) WriteMessage(_ context.Context, msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, bytes.Clone(msg))
	return nil
}

func (f *reviewConn) SetReadLimit(n int64) { f.mu.Lock(); f.limit = n; f.mu.Unlock() }
func (f *reviewConn) Close() error         { f.closeOnce.Do(func() { close(f.closed) }); return nil }
func (f *reviewConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (f *reviewConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// outcome is what one ReadChunk gave: "tid" for a chunk, "413:tid",
// "frame:tid", "trunc:tid" or "err:tid" for parse errors naming a chunk.
func reviewReadAll(t *testing.T, tr *MSRPTransport) (got []string, chunks []*Chunk) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		c, err := tr.ReadChunk(context.Background())
		var pe *ChunkParseError
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return got, chunks
		case errors.As(err, &pe):
			if pe.Chunk == nil {
				continue // garbage, unanswered
			}
			kind := "err:"
			switch {
			case errors.Is(err, ErrMessageFraming):
				kind = "frame:"
			case errors.Is(err, ErrChunkTooLarge):
				kind = "413:"
			case errors.Is(err, ErrTruncatedChunk):
				kind = "trunc:"
			}
			got = append(got, kind+pe.Chunk.TransactionID)
		case err != nil:
			t.Fatalf("unexpected error: %v", err)
		default:
			got = append(got, c.TransactionID)
			chunks = append(chunks, c)
		}
	}
	t.Fatal("no end")
	return
}

// A chunk over MaxChunkSize followed, in the same message, by a whole
// second chunk: the second must not be delivered (RFC 7977 §5.1, and
// checkFraming's own contract). The parser skips the oversized chunk's
// end-line inside a Feed that started "in a chunk", and carries straight
// on into the next one, so checkFraming never counts it as begun.
func TestReviewFramingOversizedThenSecondChunk(t *testing.T) {
	// Over the cap in its header section: the 413 comes before the
	// end-line, and the rest is skipped by a later Feed.
	oc := &Chunk{TransactionID: "over0001", Method: MethodSEND, ContFlag: FlagEnd, Headers: Header{
		{HeaderToPath, "msrp://b.example:2855/s2;ws"}, {HeaderFromPath, "msrp://a.invalid:2855/s1;ws"},
		{HeaderMessageID, "mover0001"}, {"X-Pad", strings.Repeat("p", 1100)},
	}}
	over, err := oc.Encode(nil)
	require.NoError(t, err)
	b := encodeSEND(t, "bbbb2222", "two")
	c := encodeSEND(t, "cccc3333", "three")
	tr := NewMessageTransport(newReviewConn(append(bytes.Clone(over), b...), c), URI{})
	tr.SetLimits(Limits{MaxChunkSize: 1024})
	got, _ := reviewReadAll(t, tr)
	assert.Equal(t, []string{"413:over0001", "frame:bbbb2222", "cccc3333"}, got)
}

// The same with a chunk cut short by a new start line (ErrTruncatedChunk)
// and then a whole chunk, all in one message.
func TestReviewFramingTruncatedThenSecondChunk(t *testing.T) {
	a := encodeSEND(t, "aaaa1111", "one")
	head := a[:bytes.Index(a, []byte("From-Path"))] // start line and To-Path
	b := encodeSEND(t, "bbbb2222", "two")
	c := encodeSEND(t, "cccc3333", "three")
	tr := NewMessageTransport(newReviewConn(append(bytes.Clone(head), b...), c), URI{})
	got, _ := reviewReadAll(t, tr)
	assert.Equal(t, []string{"trunc:aaaa1111", "frame:bbbb2222", "cccc3333"}, got)
}

// A message that ends inside an over-long start line leaves the parser
// skipping "the rest of that line": the first line of the NEXT message,
// so a good chunk in its own message is lost (and never answered).
func TestReviewFramingLongStartLineLeaksIntoNextMessage(t *testing.T) {
	for name, first := range map[string][]byte{
		"text without a newline":  bytes.Repeat([]byte("x"), DefaultMaxLineLength+100),
		"an over-long start line": append([]byte("MSRP "), bytes.Repeat([]byte("t"), DefaultMaxLineLength+100)...),
	} {
		t.Run(name, func(t *testing.T) {
			b := encodeSEND(t, "bbbb2222", "two")
			tr := NewMessageTransport(newReviewConn(first, b), URI{})
			got, _ := reviewReadAll(t, tr)
			assert.Equal(t, []string{"bbbb2222"}, got)
		})
	}
}

// No state crosses a message boundary for cuts anywhere in a chunk: every
// prefix of a, then b whole, gives at most one error and then b.
func TestReviewFramingEveryCut(t *testing.T) {
	a := encodeSEND(t, "aaaa1111", "body with -------aaaa1111 inside\r\n-------aaaa1111")
	b := encodeSEND(t, "bbbb2222", "two")
	for cut := 1; cut < len(a); cut++ {
		tr := NewMessageTransport(newReviewConn(a[:cut], b), URI{})
		got, chunks := reviewReadAll(t, tr)
		require.NotEmpty(t, got, "cut %d", cut)
		assert.Equal(t, "bbbb2222", got[len(got)-1], "cut %d: %v", cut, got)
		assert.LessOrEqual(t, len(got), 2, "cut %d: %v", cut, got)
		require.Len(t, chunks, 1, "cut %d", cut)
		assert.Equal(t, "two", string(chunks[0].Data))
	}
}

// The reused read buffer: chunks, their headers, bodies and error data are
// kept after later messages overwrite the buffer.
func TestReviewReadBufferAliasing(t *testing.T) {
	var msgs [][]byte
	want := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		size := []int{0, 3, 100, 3000, 6000, 12000, 40000, 70000}[i%8]
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + rng.IntN(26))
		}
		tid := "tid" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		want[tid] = string(body)
		msgs = append(msgs, encodeSEND(t, tid, string(body)))
		if i%5 == 0 {
			m := encodeSEND(t, "cut"+tid, string(body)+"tail")
			msgs = append(msgs, m[:len(m)-5]) // cut short: an error holding the chunk
		}
	}
	f := newReviewConn(msgs...)
	tr := NewMessageTransport(f, URI{})
	var kept []*Chunk
	var errs []*ChunkParseError
	for {
		c, err := tr.ReadChunk(context.Background())
		var pe *ChunkParseError
		if errors.As(err, &pe) {
			errs = append(errs, pe)
			continue
		}
		if err != nil {
			break
		}
		kept = append(kept, c)
	}
	require.Len(t, kept, 60)
	for _, c := range kept {
		assert.Equal(t, want[c.TransactionID], string(c.Data), c.TransactionID)
		assert.Equal(t, "text/plain", c.Headers.Get(HeaderContentType), c.TransactionID)
		assert.Equal(t, "m"+c.TransactionID, c.Headers.Get(HeaderMessageID))
	}
	require.Len(t, errs, 12)
	for _, pe := range errs {
		require.NotNil(t, pe.Chunk)
		assert.True(t, strings.HasPrefix(pe.Chunk.TransactionID, "cut"), pe.Chunk.TransactionID)
		assert.Equal(t, "text/plain", pe.Chunk.Headers.Get(HeaderContentType))
		assert.NotContains(t, string(pe.Data), "\xA5")
	}
}

// Deadlines moved, cleared and set in the past from other goroutines
// while reads and writes run: no race, every op ends, no timer survives.
func TestReviewMessageNetConnDeadlineChurn(t *testing.T) {
	leakcheck.Check(t)
	f := newReviewConn()
	f.block = true
	mc := &messageNetConn{mc: f}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var timeouts atomic.Int64
	for range 1 { // the transport reads from one goroutine (readMu)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := mc.readMessage(); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("read: %v", err)
						return
					}
					timeouts.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = mc.Write([]byte("x"))
		}
	})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		var d time.Time
		switch rng.IntN(4) {
		case 0: // zero: none
		case 1:
			d = time.Now().Add(-time.Second)
		default:
			d = time.Now().Add(time.Duration(rng.IntN(200)) * time.Microsecond)
		}
		switch rng.IntN(3) {
		case 0:
			mc.SetReadDeadline(d)
		case 1:
			mc.SetWriteDeadline(d)
		default:
			mc.SetDeadline(d)
		}
	}
	mc.SetReadDeadline(time.Unix(1, 0)) // wake the readers
	for deadline := time.Now().Add(5 * time.Second); timeouts.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an op did not end")
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	for i, o := range mc.ops {
		assert.Nil(t, o.timer, "op %d keeps a timer", i)
		assert.Nil(t, o.cancel, "op %d keeps a cancel", i)
	}
	assert.Positive(t, timeouts.Load())
}

// While a connection binds, its first chunk must fit in bindingMaxChunk
// (32 KiB) — the server's documented cost bound for unbound connections.
// Over a message-framed link the whole message is read before the parser
// sees it, so the read limit is what bounds the memory of a pending
// connection; it stays at MaxChunkSize + slack (4 MiB + 4 KiB) instead.
func TestReviewBindingReadLimit(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: time.Second}}
	defer srv.Close()
	a := srv.Acceptor(ServerAcceptorConfig{})
	defer a.Cleanup()
	_, err := a.Prepare(context.Background(), URI{Host: "chat.example", Port: 443, Transport: "ws"})
	require.NoError(t, err)
	f := newReviewConn(encodeSEND(t, "aaaa1111", "hi")) // names no session of ours: refused
	_ = srv.ServeMessageConn(context.Background(), func() (MessageConn, error) { return f, nil })
	require.NotEmpty(t, f.limitsSeen)
	assert.LessOrEqual(t, f.limitsSeen[0], int64(bindingMaxChunk+messageSlack),
		"read limit while binding: a pending WebSocket may make the server buffer this much")
}

// A WebSocket whose first chunk names (by its exact To-Path) a session
// prepared for TCP is bound.
// ServeMessageConn's doc says its first chunk "must name a session whose
// Prepare used a \"ws\" URI".
func TestReviewTransportKindMismatchBinds(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 2 * time.Second}}
	defer srv.Close()

	tcpA := srv.Acceptor(ServerAcceptorConfig{})
	defer tcpA.Cleanup()
	tcpPath, err := tcpA.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	peer := WebSocketClientURI(false)
	done := make(chan error, 1)
	go func() {
		t, err := tcpA.Complete(ctx, []URI{peer})
		if t != nil {
			t.Close()
		}
		done <- err
	}()
	req := NewRequest(MethodSEND, tcpPath, []URI{peer})
	req.TransactionID = "wsbind01"
	req.Headers.Set(HeaderMessageID, "msg00001")
	msg, err := req.Encode(nil)
	require.NoError(t, err)
	f := newReviewConn(msg)
	f.block = true
	err = srv.ServeMessageConn(ctx, func() (MessageConn, error) { return f, nil })
	assert.Error(t, err, "a WebSocket bound a session prepared for TCP")
	f.Close()
	<-done
}

// The TCP path: a session's writer still batches several queued chunks
// into one write (framed is false, nothing message-framed runs).
func TestReviewTCPStillBatches(t *testing.T) {
	leakcheck.Check(t)
	ta, tb := pipePair(t)
	g := &gatedConn{Conn: ta.conn, gate: make(chan struct{})}
	ta.conn, ta.vectored = g, false
	require.False(t, ta.framed)
	a := NewMSRPSession(ta, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 2048}}) // direct sessions default to chunks over inlineBodyMax, which go alone
	b := NewMSRPSession(tb, SessionConfig{})
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		go a.Send(ctx, "text/plain", []byte("m"+string(rune('a'+i))), MessageOptions{})
	}
	time.Sleep(100 * time.Millisecond) // the first write waits at the gate; the rest queue
	close(g.gate)
	for range 20 {
		_, err := b.Receive(ctx)
		require.NoError(t, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	assert.Greater(t, g.maxChunks, 1, "one write carried several chunks")
}

type gatedConn struct {
	net.Conn
	gate      chan struct{}
	mu        sync.Mutex
	maxChunks int
}

func (g *gatedConn) Write(p []byte) (int, error) {
	<-g.gate
	n := bytes.Count(p, []byte("\r\n-------"))
	g.mu.Lock()
	g.maxChunks = max(g.maxChunks, n)
	g.mu.Unlock()
	return g.Conn.Write(p)
}

// Random cuts of a stream of chunks (some over the cap, some malformed)
// into messages: no transaction is reported twice (e.g. 413 then 400),
// and no message yields more than one delivered chunk.
func TestReviewFramingNoDoubleAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for iter := 0; iter < 300; iter++ {
		var stream []byte
		for i := range 6 {
			tid := fmt.Sprintf("t%03d%02d", iter, i)
			switch rng.IntN(4) {
			case 0:
				stream = append(stream, encodeSEND(t, tid, strings.Repeat("b", 1500))...) // over the cap
			case 1:
				m := encodeSEND(t, tid, "bad")
				stream = append(stream, bytes.Replace(m, []byte("Byte-Range"), []byte("Byte Range"), 1)...)
			default:
				stream = append(stream, encodeSEND(t, tid, "ok")...)
			}
		}
		var msgs [][]byte
		for len(stream) > 0 {
			n := min(len(stream), 1+rng.IntN(400))
			msgs = append(msgs, stream[:n])
			stream = stream[n:]
		}
		tr := NewMessageTransport(newReviewConn(msgs...), URI{})
		tr.SetLimits(Limits{MaxChunkSize: 1024})
		seen := map[string]string{}
		got, chunks := reviewReadAll(t, tr)
		for _, g := range got {
			tid := g[strings.LastIndex(g, ":")+1:]
			if prev, dup := seen[tid]; dup {
				t.Fatalf("iteration %d: %s reported twice: %s then %s", iter, tid, prev, g)
			}
			seen[tid] = g
		}
		require.LessOrEqual(t, len(chunks), len(msgs))
	}
}
