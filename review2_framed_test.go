package msrp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp/internal/leakcheck"
)

// Review 2: a model of one-chunk-per-message (ErrMessageFraming's doc).
//
// A message is a sequence of tokens. The model: the message's chunk is
// its first chunk-like token (junk lines and stray CRLFs before it are
// skipped, as over a stream). It is delivered iff it is a complete, valid
// chunk within the limits. No other chunk of the message is delivered. No
// transaction id is reported (delivered or answered) twice. A first token
// that is oversized is answered 413, malformed 400 (err:), cut short by a
// new start line trunc: (or frame: when the message ends it instead).
type r2tok struct {
	kind string // C valid, O oversized (head), B oversized (body), M malformed, T truncated by next start, P prefix (last only), J junk, E CRLF
	tid  string
	raw  []byte
}

func r2chunk(t testing.TB, tid, body string, extra ...HeaderField) []byte {
	c := &Chunk{TransactionID: tid, Method: MethodSEND, ContFlag: FlagEnd, Headers: append(Header{
		{HeaderToPath, "msrp://b.example:2855/s2;ws"}, {HeaderFromPath, "msrp://a.invalid:2855/s1;ws"},
		{HeaderMessageID, "m" + tid}, {HeaderByteRange, "1-*/*"},
	}, extra...)}
	if body != "" {
		c.Headers = append(c.Headers, HeaderField{HeaderContentType, "text/plain"})
		c.Data = []byte(body)
	}
	b, err := c.Encode(nil)
	require.NoError(t, err)
	return b
}

func r2gen(t testing.TB, rng *rand.Rand, tid string, last bool) r2tok {
	for {
		k := "CCCOBMTPJE"[rng.IntN(10)]
		switch k {
		case 'C':
			body := []string{"", "x", "MSRP zz SEND\r\n", "\r\n-------zz" + tid + "+\r\n", strings.Repeat("y", 300)}[rng.IntN(5)]
			return r2tok{"C", tid, r2chunk(t, tid, body)}
		case 'O':
			return r2tok{"O", tid, r2chunk(t, tid, "o", HeaderField{"X-Pad", strings.Repeat("p", 1100)})}
		case 'B':
			return r2tok{"B", tid, r2chunk(t, tid, strings.Repeat("b", 1500))}
		case 'M':
			m := r2chunk(t, tid, "bad")
			return r2tok{"M", tid, bytes.Replace(m, []byte("Byte-Range"), []byte("Byte Range"), 1)}
		case 'T':
			m := r2chunk(t, tid, "cut")
			return r2tok{"T", tid, m[:bytes.Index(m, []byte("Message-ID"))]}
		case 'P':
			if !last {
				continue
			}
			m := r2chunk(t, tid, "partial")
			return r2tok{"P", tid, m[:10+rng.IntN(len(m)-12)]}
		case 'J':
			return r2tok{"J", "", []byte("garbage line\r\n")}
		case 'E':
			return r2tok{"E", "", []byte("\r\n")}
		}
	}
}

func TestReview2FramingModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 12))
	for iter := 0; iter < 3000; iter++ {
		var msgs [][]byte
		var desc []string
		var toks [][]r2tok
		for m := 0; m < 1+rng.IntN(4); m++ {
			n := 1 + rng.IntN(4)
			var msg []byte
			var ts []r2tok
			for i := 0; i < n; i++ {
				tk := r2gen(t, rng, fmt.Sprintf("i%04dm%di%d", iter, m, i), i == n-1)
				// A T followed by E would start T's body: keep the model simple.
				// (A junk line in T's header section is a bad header, so
				// look back past junk too.)
				if tk.kind == "E" {
					for j := len(ts) - 1; j >= 0 && ts[j].kind != "E"; j-- {
						if ts[j].kind == "T" {
							tk = r2tok{"J", "", []byte("garbage line\r\n")}
							break
						}
						if ts[j].kind != "J" {
							break
						}
					}
				}
				ts = append(ts, tk)
				msg = append(msg, tk.raw...)
			}
			toks = append(toks, ts)
			msgs = append(msgs, msg)
			var kinds []string
			for _, tk := range ts {
				kinds = append(kinds, tk.kind)
			}
			desc = append(desc, strings.Join(kinds, ""))
		}
		tr := NewMessageTransport(newReviewConn(msgs...), URI{})
		tr.SetLimits(Limits{MaxChunkSize: 1024})
		got, _ := reviewReadAll(t, tr)
		where := fmt.Sprintf("iter %d messages %v: got %v", iter, desc, got)

		// Expected deliveries and first answers.
		wantDelivered := map[string]bool{}
		wantFirst := map[string]string{}
		allowed := map[string]bool{} // tids that may appear at all
		for _, ts := range toks {
			first := true
			for _, tk := range ts {
				if tk.kind == "J" || tk.kind == "E" {
					continue
				}
				allowed[tk.tid] = true
				if first {
					switch tk.kind {
					case "C":
						wantDelivered[tk.tid] = true
					case "O", "B":
						wantFirst[tk.tid] = "413:"
					case "M":
						wantFirst[tk.tid] = "err:"
					case "T":
						wantFirst[tk.tid] = "trunc:"
					}
				}
				first = false
			}
		}
		seen := map[string]string{}
		for _, g := range got {
			kind, tid := "", g
			if i := strings.LastIndex(g, ":"); i >= 0 {
				kind, tid = g[:i+1], g[i+1:]
			}
			if prev, dup := seen[tid]; dup {
				t.Fatalf("%s: %s reported twice (%s, %s)", where, tid, prev, g)
			}
			seen[tid] = g
			if !allowed[tid] {
				t.Fatalf("%s: unknown tid %s", where, tid)
			}
			if kind == "" && !wantDelivered[tid] {
				t.Fatalf("%s: %s delivered, but it is not its message's first chunk or not whole", where, tid)
			}
			if w, ok := wantFirst[tid]; ok && kind != w && !(w == "trunc:" && kind == "frame:") {
				t.Errorf("%s: first chunk %s reported as %q, want %q", where, tid, kind, w)
			}
		}
		for tid := range wantDelivered {
			if seen[tid] != tid {
				t.Fatalf("%s: %s, a whole valid first chunk, was not delivered (got %q)", where, tid, seen[tid])
			}
		}
	}
}

// Directed cases the brief names.
func TestReview2FramingDirected(t *testing.T) {
	a := r2chunk(t, "aaaa1111", "one")
	b := r2chunk(t, "bbbb2222", "two")
	c := r2chunk(t, "cccc3333", "three")
	over := r2chunk(t, "over0001", "o", HeaderField{"X-Pad", strings.Repeat("p", 1100)})
	overBody := r2chunk(t, "ovrb0001", strings.Repeat("b", 1500))
	headOf := func(m []byte) []byte { return bytes.Clone(m[:bytes.Index(m, []byte("From-Path"))]) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		msgs [][]byte
		want []string
	}{
		{"truncated first, then whole", [][]byte{cat(headOf(a), b), c}, []string{"trunc:aaaa1111", "frame:bbbb2222", "cccc3333"}},
		{"junk lines then a chunk", [][]byte{cat([]byte("junk\r\nmore junk\r\n\r\n"), a), b}, []string{"aaaa1111", "bbbb2222"}},
		{"only junk", [][]byte{[]byte("junk\r\n"), a}, []string{"aaaa1111"}},
		{"junk without CRLF", [][]byte{[]byte("junk"), a}, []string{"aaaa1111"}},
		{"oversized head first, second truncated, third whole", [][]byte{cat(over, headOf(b), c), a}, []string{"413:over0001", "frame:bbbb2222", "frame:cccc3333", "aaaa1111"}},
		{"oversized body first, second truncated by end", [][]byte{cat(overBody, headOf(b)), a}, []string{"413:ovrb0001", "frame:bbbb2222", "aaaa1111"}},
		{"oversized cut by message end", [][]byte{over[:len(over)-5], a}, []string{"413:over0001", "aaaa1111"}},
		{"two truncated in a row", [][]byte{cat(headOf(a), headOf(b), c), cat(a[:0], r2chunk(t, "dddd4444", "d"))}, []string{"trunc:aaaa1111", "frame:bbbb2222", "frame:cccc3333", "dddd4444"}},
		{"whole then truncated then whole", [][]byte{cat(a, headOf(b), c), r2chunk(t, "dddd4444", "d")}, []string{"aaaa1111", "frame:bbbb2222", "frame:cccc3333", "dddd4444"}},
		{"over-long junk line then a chunk", [][]byte{cat([]byte(strings.Repeat("j", DefaultMaxLineLength+10)+"\r\n"), a), b}, []string{"aaaa1111", "bbbb2222"}},
		{"over-long header in first, then whole", [][]byte{cat(headOf(a), []byte("X-Long: "+strings.Repeat("h", 900)+"\r\n"), b), c}, []string{"trunc:aaaa1111", "frame:bbbb2222", "cccc3333"}},
		{"start line only", [][]byte{[]byte("MSRP aaaa1111 SEND\r\n"), b}, []string{"frame:aaaa1111", "bbbb2222"}},
		{"whole then start line only", [][]byte{cat(a, []byte("MSRP zzzz9999 SEND\r\n")), b}, []string{"aaaa1111", "frame:zzzz9999", "bbbb2222"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewMessageTransport(newReviewConn(tc.msgs...), URI{})
			tr.SetLimits(Limits{MaxChunkSize: 1024})
			got, _ := reviewReadAll(t, tr)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Pool hygiene across Reset: oversized or cut messages, then normal ones,
// then idle. No body buffer is held while idle, and bodies handed out are
// never overwritten by later messages.
func TestReview2ResetBuffers(t *testing.T) {
	var msgs [][]byte
	want := map[string]string{}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200; i++ {
		tid := fmt.Sprintf("buf%05d", i)
		size := []int{0, 10, 3000, 5000, 9000, 17000, 40000, 70000}[rng.IntN(8)]
		body := strings.Repeat(string(rune('a'+i%26)), size)
		m := r2chunk(t, tid, body)
		switch rng.IntN(4) {
		case 0:
			msgs = append(msgs, m[:len(m)-1-rng.IntN(20)]) // cut near its end-line
		case 1:
			msgs = append(msgs, append(bytes.Clone(m), r2chunk(t, "x"+tid, body)...))
			want[tid] = body
		default:
			msgs = append(msgs, m)
			want[tid] = body
		}
	}
	tr := NewMessageTransport(newReviewConn(msgs...), URI{})
	tr.SetLimits(Limits{MaxChunkSize: 64 << 10})
	var kept []*Chunk
	for {
		c, err := tr.ReadChunk(context.Background())
		var pe *ChunkParseError
		if errors.As(err, &pe) {
			continue
		}
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		kept = append(kept, c)
		if rng.IntN(2) == 0 {
			// The application releases some bodies: those must not come
			// back inside a kept chunk.
			cp := *c
			cp.Data = bytes.Clone(c.Data)
			tr.ReleaseChunk(c)
			kept[len(kept)-1] = &cp
		}
	}
	for _, c := range kept {
		w, ok := want[c.TransactionID]
		if !assert.True(t, ok, "delivered %s", c.TransactionID) {
			continue
		}
		assert.Equal(t, len(w), len(c.Data), c.TransactionID)
		assert.True(t, w == string(c.Data), "%s: body overwritten", c.TransactionID)
	}
	tr.readMu.Lock()
	defer tr.readMu.Unlock()
	assert.Nil(t, tr.parser.acc, "an idle framed transport holds a body buffer")
	assert.Nil(t, tr.pending)
}

// ---- closeWithin / Shutdown ----------------------------------------------

// blockingCloseConn is a MessageConn (say a WebRTC data channel) whose
// graceful Close waits for the peer's goodbye, which never comes, until
// CloseNow; ReadMessage returns ctx's error when ctx ends, without
// closing the connection (MessageConn's doc: it "may" close it).
type blockingCloseConn struct {
	mu       sync.Mutex
	in       [][]byte
	out      [][]byte
	gone     chan struct{}
	goneOnce sync.Once
	closing  atomic.Bool
}

func newBlockingCloseConn(msgs ...[]byte) *blockingCloseConn {
	return &blockingCloseConn{in: msgs, gone: make(chan struct{})}
}

func (f *blockingCloseConn) ReadMessage(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	if len(f.in) > 0 {
		m := f.in[0]
		f.in = f.in[1:]
		f.mu.Unlock()
		return m, nil
	}
	f.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.gone:
		return nil, net.ErrClosed
	}
}

func (f *blockingCloseConn) WriteMessage(_ context.Context, msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, bytes.Clone(msg))
	return nil
}

func (f *blockingCloseConn) Close() error {
	f.closing.Store(true)
	<-f.gone // the peer never answers: only CloseNow ends this
	return nil
}

func (f *blockingCloseConn) CloseNow() error {
	f.goneOnce.Do(func() { close(f.gone) })
	return nil
}
func (f *blockingCloseConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (f *blockingCloseConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// Shutdown's ctx bounds the graceful close ("Shutdown's close follows its
// ctx"), whatever the MessageConn: once ctx ends, closeWithin must stop
// waiting for Close.
func TestReview2ShutdownCtxBoundsMessageConnClose(t *testing.T) {
	for _, reading := range []bool{true, false} {
		t.Run(fmt.Sprintf("reader-idle-in-read=%v", reading), func(t *testing.T) {
			f := newBlockingCloseConn()
			tr := NewMessageTransport(f, URI{Host: "a.invalid", Port: 2855, SessionID: "s1", Transport: "ws"})
			tr.SetRemotePath([]URI{{Host: "b.example", Port: 2855, SessionID: "s2", Transport: "ws"}})
			if !reading {
				// No read in progress when the close starts: abortRead has
				// nothing to end.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				done := make(chan error, 1)
				go func() { done <- tr.closeWithin(ctx) }()
				select {
				case <-done:
				case <-time.After(3 * time.Second):
					f.CloseNow()
					<-done
					t.Errorf("closeWithin ignored its ended ctx: Close of a MessageConn is waited for without bound")
				}
				cancel()
				return
			}
			s := NewMSRPSession(tr, SessionConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Shutdown(ctx) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				f.CloseNow()
				<-done
				t.Errorf("Shutdown outlived its ctx by more than 2.7 s: closeWithin only aborts the read, and this MessageConn's Close does not end")
			}
		})
	}
}

// Shutdown with a ctx already done, nothing pending: it returns at once
// and leaks nothing; over a TLS pipe the peer sees the end.
func TestReview2ShutdownDoneCtx(t *testing.T) {
	leakcheck.Check(t)
	for i := 0; i < 20; i++ {
		ta, tb := pipePair(t)
		a := NewMSRPSession(ta, SessionConfig{})
		b := NewMSRPSession(tb, SessionConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		err := a.Shutdown(ctx)
		assert.Less(t, time.Since(start), time.Second)
		assert.True(t, err == nil || errors.Is(err, context.Canceled), "%v", err)
		select {
		case <-b.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("peer did not see the end")
		}
		b.Close()
	}
}

// ---- ServeMessageConn slots ----------------------------------------------

// Under concurrency with MaxPendingConnections 2: never more than 2
// accepts run at once, every call ends, failed accepts release their slot,
// and Close racing the calls waits for those that got in (accept called
// means Close waited).
func TestReview2ServeMessageConnSlots(t *testing.T) {
	leakcheck.Check(t)
	for round := 0; round < 30; round++ {
		srv := &MSRPServer{MaxPendingConnections: 2, ConnectConfig: ConnectConfig{BindTimeout: 200 * time.Millisecond}}
		var inAccept, maxIn, accepted atomic.Int64
		var busy, closed, other atomic.Int64
		var wg sync.WaitGroup
		var conns []*reviewConn
		var connsMu sync.Mutex
		for i := 0; i < 12; i++ {
			wg.Go(func() {
				err := srv.ServeMessageConn(context.Background(), func() (MessageConn, error) {
					n := inAccept.Add(1)
					for {
						m := maxIn.Load()
						if n <= m || maxIn.CompareAndSwap(m, n) {
							break
						}
					}
					defer inAccept.Add(-1)
					accepted.Add(1)
					time.Sleep(time.Millisecond)
					if i%3 == 0 {
						return nil, errors.New("upgrade failed")
					}
					f := newReviewConn()
					f.block = true
					connsMu.Lock()
					conns = append(conns, f)
					connsMu.Unlock()
					return f, nil
				})
				switch {
				case errors.Is(err, ErrServerBusy):
					busy.Add(1)
				case errors.Is(err, ErrServerClosed):
					closed.Add(1)
				default:
					other.Add(1)
				}
			})
		}
		if round%2 == 1 {
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			srv.Close()
		}
		wg.Wait()
		srv.Close()
		assert.LessOrEqual(t, maxIn.Load(), int64(2), "round %d: more accepts at once than MaxPendingConnections", round)
		// All slots are free again.
		for range 2 {
			select {
			case srv.slots <- struct{}{}:
			default:
				t.Fatalf("round %d: a slot leaked", round)
			}
		}
		connsMu.Lock()
		for _, f := range conns {
			select {
			case <-f.closed:
			default:
				t.Errorf("round %d: an accepted connection was left open", round)
			}
		}
		connsMu.Unlock()
	}
}

// TLS: a peer that never reads, our send buffer full, no write in flight:
// tls.Conn.Close's close_notify blocks (5 s deadline). closeWithin must
// end it when its ctx does.
func TestReview2CloseWithinTLSFullBuffer(t *testing.T) {
	leakcheck.Check(t)
	a, b := tcpPair(t)
	srvCfg, cliCfg := tlsConfigs("127.0.0.1")
	cliCfg.ServerName = "127.0.0.1"
	sa, sb := tls.Server(a, srvCfg), tls.Client(b, cliCfg)
	hs := make(chan error, 1)
	go func() { hs <- sb.Handshake() }()
	require.NoError(t, sa.Handshake())
	require.NoError(t, <-hs)
	defer sb.Close()
	tr := NewMSRPTransport(sa, URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"})
	// Fill the send path: write until a short deadline trips.
	buf := make([]byte, 64<<10)
	for {
		sa.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := sa.Write(buf); err != nil {
			break
		}
	}
	sa.SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	tr.closeWithin(ctx)
	assert.Less(t, time.Since(start), time.Second, "closeWithin outlived its ctx over TLS")
}

// A TCP listener's accept loop takes a slot before it calls Accept, so an
// idle listener holds one of MaxPendingConnections while nothing binds:
// ServeMessageConn then says ErrServerBusy (ws.Handler: 503) with no
// connection binding at all.
func TestReview2IdleTCPListenerHoldsWebSocketSlot(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{MaxPendingConnections: 1, ConnectConfig: ConnectConfig{BindTimeout: 300 * time.Millisecond}}
	defer srv.Close()
	tcpA := srv.Acceptor(ServerAcceptorConfig{})
	defer tcpA.Cleanup()
	_, err := tcpA.Prepare(context.Background(), URI{Host: "127.0.0.1"}) // starts a TCP listener
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // its accept loop waits in Accept
	called := false
	err = srv.ServeMessageConn(context.Background(), func() (MessageConn, error) {
		called = true
		return newReviewConn(), nil // says nothing: refused at EOF
	})
	assert.True(t, called, "no connection is binding, yet ServeMessageConn said %v", err)
}
