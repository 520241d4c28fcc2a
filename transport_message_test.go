package msrp

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMessageConn delivers queued messages, then io.EOF, and records what
// is written; with block set, a read with nothing queued waits for its
// context.
type fakeMessageConn struct {
	mu      sync.Mutex
	in      [][]byte
	out     [][]byte
	block   bool
	limit   int64
	closed  bool
	nowShut bool
}

func (f *fakeMessageConn) ReadMessage(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	if len(f.in) > 0 {
		m := f.in[0]
		f.in = f.in[1:]
		f.mu.Unlock()
		return m, nil
	}
	block := f.block
	f.mu.Unlock()
	if !block {
		return nil, io.EOF
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeMessageConn) WriteMessage(_ context.Context, msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, append([]byte(nil), msg...))
	return nil
}

func (f *fakeMessageConn) SetReadLimit(n int64) { f.limit = n }
func (f *fakeMessageConn) Close() error         { f.closed = true; return nil }
func (f *fakeMessageConn) CloseNow() error      { f.nowShut = true; return nil }
func (f *fakeMessageConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (f *fakeMessageConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

func encodeSEND(t testing.TB, tid, body string) []byte {
	c := &Chunk{TransactionID: tid, Method: MethodSEND, ContFlag: FlagEnd, Headers: Header{
		{HeaderToPath, "msrp://b.example:2855/s2;ws"}, {HeaderFromPath, "msrp://a.invalid:2855/s1;ws"},
		{HeaderMessageID, "m" + tid}, {HeaderByteRange, "1-*/*"}, {HeaderContentType, "text/plain"},
	}, Data: []byte(body)}
	b, err := c.Encode(nil)
	require.NoError(t, err)
	return b
}

// readAll reads chunks until the end of the connection and returns what
// came: a chunk's tid, or "error:<tid>" for a framing error. Lines the
// parser skips while it looks for a start line are left out.
func readAll(t *testing.T, tr *MSRPTransport) []string {
	var got []string
	for {
		c, err := tr.ReadChunk(context.Background())
		var pe *ChunkParseError
		switch {
		case errors.Is(err, io.EOF):
			return got
		case errors.As(err, &pe) && errors.Is(err, ErrMessageFraming):
			tid := ""
			if pe.Chunk != nil {
				tid = pe.Chunk.TransactionID
			}
			got = append(got, "error:"+tid)
		case errors.As(err, &pe) && pe.Chunk == nil:
		case err != nil:
			t.Fatalf("unexpected error: %v", err)
		default:
			got = append(got, c.TransactionID)
		}
	}
}

func TestMessageTransportFraming(t *testing.T) {
	a, b, c := encodeSEND(t, "aaaa1111", "one"), encodeSEND(t, "bbbb2222", "two"), encodeSEND(t, "cccc3333", "three")
	for _, tc := range []struct {
		name string
		msgs [][]byte
		want []string
	}{
		{"one chunk per message", [][]byte{a, b, c}, []string{"aaaa1111", "bbbb2222", "cccc3333"}},
		{"empty messages are nothing", [][]byte{{}, a, {}, b}, []string{"aaaa1111", "bbbb2222"}},
		{"half a chunk, in its headers", [][]byte{a[:20], b}, []string{"error:aaaa1111", "bbbb2222"}},
		{"half a chunk, in its body", [][]byte{a[:len(a)-12], b}, []string{"error:aaaa1111", "bbbb2222"}},
		{"half a start line", [][]byte{a[:7], b}, []string{"error:", "bbbb2222"}},
		{"the rest of the half", [][]byte{a[:30], a[30:], c}, []string{"error:aaaa1111", "cccc3333"}},
		{"two chunks", [][]byte{append(append([]byte{}, a...), b...), c}, []string{"aaaa1111", "error:bbbb2222", "cccc3333"}},
		{"one and a half", [][]byte{append(append([]byte{}, a...), b[:40]...), c}, []string{"aaaa1111", "error:bbbb2222", "cccc3333"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewMessageTransport(&fakeMessageConn{in: tc.msgs}, URI{})
			assert.Equal(t, tc.want, readAll(t, tr))
		})
	}
}

func TestMessageTransportWritesOneChunkPerMessage(t *testing.T) {
	f := &fakeMessageConn{}
	tr := NewMessageTransport(f, URI{Host: "a.invalid", Port: 2855, SessionID: "s1", Transport: "ws"})
	assert.EqualValues(t, DefaultMaxChunkSize+messageSlack, f.limit, "the read limit follows MaxChunkSize")
	tr.SetLimits(Limits{MaxChunkSize: 1000})
	assert.EqualValues(t, 1000+messageSlack, f.limit)
	tr.SetRemotePath([]URI{{Host: "b.example", Port: 2855, SessionID: "s2", Transport: "ws"}})
	big := make([]byte, 200<<10) // over inlineBodyMax: a stream would write it in three pieces
	for i := range big {
		big[i] = 'x'
	}
	for _, body := range [][]byte{[]byte("hi"), big} {
		c := tr.MakeSendRequest("", body, 1, int64(len(body)))
		c.Headers.Set(HeaderContentType, "text/plain")
		require.NoError(t, tr.WriteChunk(context.Background(), c))
	}
	require.Len(t, f.out, 2)
	for _, msg := range f.out {
		var p Parser
		c, n, err := p.Feed(msg)
		require.NoError(t, err)
		require.NotNil(t, c)
		assert.Equal(t, len(msg), n)
	}
	tr.closeNow()
	assert.True(t, f.nowShut, "closeNow skips the closing handshake")
}

// A deadline ends a read in progress, as on a net.Conn, and a read after a
// deadline that passed fails at once.
func TestMessageTransportDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeMessageConn{block: true}
		tr := NewMessageTransport(f, URI{})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := tr.ReadChunk(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 3*time.Second, time.Since(start))

		mc := tr.conn.(*messageNetConn)
		mc.SetReadDeadline(time.Now().Add(-time.Second))
		_, err = mc.readMessage()
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)

		// A deadline set while a read waits moves its end.
		mc.SetReadDeadline(time.Now().Add(time.Hour))
		done := make(chan error, 1)
		go func() { _, err := mc.readMessage(); done <- err }()
		synctest.Wait()
		mc.SetReadDeadline(time.Now().Add(time.Second))
		start = time.Now()
		assert.ErrorIs(t, <-done, os.ErrDeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

// FuzzMessageTransport feeds arbitrary bytes cut into arbitrary messages:
// nothing panics, every read ends, and no message yields more than one
// chunk.
func FuzzMessageTransport(f *testing.F) {
	for _, tc := range rfcExamples {
		f.Add(tc.raw, uint64(1))
	}
	f.Add(append(encodeSEND(f, "aaaa1111", "one"), encodeSEND(f, "bbbb2222", "two")...), uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		size := len(data)
		var msgs [][]byte
		for len(data) > 0 {
			n := min(len(data), rng.IntN(len(data)+1)+1)
			msgs = append(msgs, data[:n])
			data = data[n:]
		}
		tr := NewMessageTransport(&fakeMessageConn{in: msgs}, URI{})
		tr.SetLimits(Limits{MaxLineLength: 200, MaxHeaders: 8, MaxChunkSize: 2048})
		good := 0
		for reads := 0; ; reads++ {
			if reads > size+len(msgs)+2 { // each read takes a byte or ends a message
				t.Fatalf("%d reads from %d messages of %d bytes", reads, len(msgs), size)
			}
			c, err := tr.ReadChunk(context.Background())
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			var pe *ChunkParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if c != nil {
				good++
			}
		}
		if good > len(msgs) {
			t.Fatalf("%d chunks from %d messages", good, len(msgs))
		}
	})
}
