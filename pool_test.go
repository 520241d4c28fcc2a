package msrp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Review of the pooled chunk bodies (smallBody / recycleBody / endBody).

// prSizes are body sizes around the pools' boundaries.
var prSizes = []int{1, 100, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 8191, 8192, 8193,
	16383, 16384, 16385, 20000, 28673, 32768, 40000}

func prRandom(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// prScribble writes garbage into a chunk's spare capacity, as an
// application that appends to Data would.
func prScribble(c *Chunk) {
	d := c.Data[len(c.Data):cap(c.Data)]
	for i := range d {
		d[i] = 0xA5
	}
}

func prSendChunk(t *MSRPTransport, mid string, data []byte, start, total int64) *Chunk {
	c := t.MakeSendRequest(mid, data, start, total)
	c.Headers.Set(HeaderContentType, "text/plain")
	return c
}

// Chunks kept by the caller are never touched by the parsing and
// recycling of later chunks, nor by appends to other chunks' Data.
func TestPoolBodiesParserKeptChunksSurviveRecycling(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var wire []byte
	var want [][]byte
	for i := range 400 {
		data := prRandom(rng, prSizes[rng.IntN(len(prSizes))])
		c := NewRequest(MethodSEND, []URI{{Host: "127.0.0.1", Port: 1, SessionID: "a", Transport: "tcp"}},
			[]URI{{Host: "127.0.0.1", Port: 2, SessionID: "b", Transport: "tcp"}})
		c.Headers.Set(HeaderMessageID, fmt.Sprint("mid-", i))
		c.Headers.Set(HeaderContentType, "text/plain")
		c.Data = data
		raw, err := c.Encode(nil)
		require.NoError(t, err)
		wire = append(wire, raw...)
		want = append(want, data)
	}
	type kept struct {
		c    *Chunk
		want []byte
	}
	var keep []kept
	var p Parser
	i := 0
	for len(wire) > 0 {
		piece := wire[:min(len(wire), 1+rng.IntN(20000))]
		wire = wire[len(piece):]
		in := append([]byte(nil), piece...) // the caller's read buffer
		for len(in) > 0 {
			c, n, err := p.Feed(in)
			require.NoError(t, err)
			in = in[n:]
			if c == nil {
				continue
			}
			require.True(t, bytes.Equal(want[i], c.Data), "chunk %d (%d bytes) parsed wrong", i, len(want[i]))
			if rng.IntN(2) == 0 {
				prScribble(c)
				keep = append(keep, kept{c, want[i]})
			} else {
				recycleBody(c.Data)
			}
			i++
		}
	}
	require.Equal(t, len(want), i)
	for j, k := range keep {
		require.True(t, bytes.Equal(k.want, k.c.Data), "kept chunk %d (%d bytes) changed", j, len(k.want))
	}
}

// Over a real loopback connection: the transport reads bodies into the
// parser's buffer (bodySpace), hands them over or copies them into pooled
// buffers; ReleaseChunk gives some back at once while others are kept,
// scribbled over past their length, and checked at the end.
func TestPoolBodiesTransportLoopbackReleaseChunk(t *testing.T) {
	a, b := pipePair(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 600
	want := make([][]byte, n)
	chunks := make([]*Chunk, n)
	for i := range n {
		want[i] = prRandom(rng, prSizes[rng.IntN(len(prSizes))])
		chunks[i] = prSendChunk(a, "", want[i], 1, 0)
	}
	go func() {
		ctx := context.Background()
		for i := 0; i < n; {
			// Sometimes several chunks in one write, so that a read holds
			// the end of one and the start of the next.
			k := min(n-i, 1+rng.IntN(3))
			var raw []byte
			for _, c := range chunks[i : i+k] {
				r, err := c.Encode(nil)
				if err != nil {
					panic(err)
				}
				raw = append(raw, r...)
			}
			if k == 1 && rng.IntN(2) == 0 {
				if a.WriteChunk(ctx, chunks[i]) != nil {
					return
				}
			} else if _, err := a.netConn().Write(raw); err != nil {
				return
			}
			i += k
		}
	}()
	type kept struct {
		c    *Chunk
		want []byte
	}
	var keep []kept
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		c, err := b.ReadChunk(ctx)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want[i], c.Data), "chunk %d (%d bytes) arrived changed", i, len(want[i]))
		if i%3 == 0 {
			prScribble(c)
			keep = append(keep, kept{c, want[i]})
		} else {
			b.ReleaseChunk(c)
		}
		for j, k := range keep[max(0, len(keep)-5):] {
			require.True(t, bytes.Equal(k.want, k.c.Data), "kept chunk %d changed after chunk %d", j, i)
		}
	}
	for j, k := range keep {
		require.True(t, bytes.Equal(k.want, k.c.Data), "kept chunk %d (%d bytes) changed", j, len(k.want))
	}
}

// A chunk over the size cap is skipped (413) between pooled bodies: the
// bodies around it arrive whole.
func TestPoolBodiesTooLargeBetweenPooledBodies(t *testing.T) {
	a, b := pipePair(t)
	b.SetLimits(Limits{MaxChunkSize: 12000})
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{4097, 11000, 8192, 2049, 4096, 8193}
	var want [][]byte
	for i := range 30 {
		d := prRandom(rng, sizes[i%len(sizes)])
		if i%4 == 3 {
			d = prRandom(rng, 16385) // over the cap
		}
		want = append(want, d)
	}
	go func() {
		for _, d := range want {
			if a.WriteChunk(context.Background(), prSendChunk(a, "", d, 1, 0)) != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var keep []*Chunk
	var keepWant [][]byte
	for i := range 30 {
		c, err := b.ReadChunk(ctx)
		if i%4 == 3 {
			require.ErrorIs(t, err, ErrChunkTooLarge)
			continue
		}
		require.NoError(t, err)
		require.True(t, bytes.Equal(want[i], c.Data), "chunk %d", i)
		if i%2 == 0 {
			prScribble(c)
			keep, keepWant = append(keep, c), append(keepWant, want[i])
		} else {
			b.ReleaseChunk(c)
		}
	}
	for j := range keep {
		require.True(t, bytes.Equal(keepWant[j], keep[j].Data), "kept chunk %d changed", j)
	}
}

// prMessagePlan is the chunks a raw peer sends for one message, in a
// hostile order: every piece but the first shuffled, with duplicates and
// overlapping chunks among them, then the first, which completes it.
func prMessagePlan(rng *rand.Rand, peer *MSRPTransport, mid string, body []byte) []*Chunk {
	total := int64(len(body))
	var pieces []*Chunk
	for pos := 0; pos < len(body); {
		n := min(len(body)-pos, prSizes[2+rng.IntN(len(prSizes)-2)])
		pieces = append(pieces, prSendChunk(peer, mid, body[pos:pos+n], int64(pos+1), total))
		pos += n
	}
	rest := append([]*Chunk(nil), pieces[1:]...)
	for range len(rest) / 3 {
		// a duplicate of a piece, or an overlap of two neighbours
		j := rng.IntN(len(rest))
		c := rest[j]
		if rng.IntN(2) == 0 {
			d := c.Clone()
			d.TransactionID = peer.MakeRequest(MethodSEND).TransactionID
			rest = append(rest, d)
			continue
		}
		r, _ := c.ByteRange()
		from := r.Start - 1 + int64(rng.IntN(len(c.Data)))
		to := min(total, from+int64(prSizes[2+rng.IntN(len(prSizes)-2)]))
		if from == 0 {
			from = 1 // the first piece must complete the message
		}
		rest = append(rest, prSendChunk(peer, mid, body[from:to], from+1, total))
	}
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return append(rest, pieces[0])
}

// prPeerAnswers reads at the raw peer until it closes, and collects the
// codes of responses that are not 200.
func prPeerAnswers(peer *MSRPTransport) (func() []int, <-chan struct{}) {
	var mu sync.Mutex
	var bad []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := peer.ReadChunk(context.Background())
			if err != nil {
				return
			}
			if !c.IsRequest() && c.Code != 200 {
				mu.Lock()
				bad = append(bad, c.Code)
				mu.Unlock()
			}
		}
	}()
	return func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), bad...) }, done
}

// Messages whose chunks come out of order, duplicated and overlapping,
// interleaved with each other, from a raw peer over loopback TCP: in
// memory (Receive) and through a MessageWriter, every byte arrives.
func TestPoolBodiesSessionOutOfOrderFromRawPeer(t *testing.T) {
	for _, mode := range []string{"memory", "writer", "writer+onincoming"} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			written := map[string]*bytes.Buffer{}
			var kept []*Chunk
			var keptWant [][]byte
			cfg := SessionConfig{}
			if mode != "memory" {
				cfg.MessageWriter = func(_ *MSRPSession, m *IncomingMessage) io.Writer {
					mu.Lock()
					defer mu.Unlock()
					written[m.MessageID] = &bytes.Buffer{}
					return written[m.MessageID]
				}
			}
			msgs := make(chan *IncomingMessage, 64)
			if mode == "writer+onincoming" {
				// The application has every chunk: none may be recycled.
				cfg.OnIncoming = func(_ *MSRPSession, c *Chunk) {
					if len(c.Data) > 0 {
						mu.Lock()
						keptWant = append(keptWant, append([]byte(nil), c.Data...))
						prScribble(c)
						kept = append(kept, c)
						mu.Unlock()
					}
				}
				cfg.OnMessage = func(_ *MSRPSession, m *IncomingMessage) { msgs <- m }
			}
			s, peer := sessionAndPeer(t, cfg)
			bad, _ := prPeerAnswers(peer)
			rng := rand.New(rand.NewPCG(7, uint64(len(mode))))
			bodies := map[string][]byte{}
			var plans [][]*Chunk
			for i := range 6 {
				mid := fmt.Sprintf("msg%d-%s", i, mode)
				bodies[mid] = prRandom(rng, 60<<10+rng.IntN(60<<10))
				plans = append(plans, prMessagePlan(rng, peer, mid, bodies[mid]))
			}
			go func() {
				for len(plans) > 0 {
					j := rng.IntN(len(plans))
					if peer.WriteChunk(context.Background(), plans[j][0]) != nil {
						return
					}
					if plans[j] = plans[j][1:]; len(plans[j]) == 0 {
						plans = append(plans[:j], plans[j+1:]...)
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for range bodies {
				var m *IncomingMessage
				if cfg.OnMessage != nil {
					select {
					case m = <-msgs:
					case <-ctx.Done():
						t.Fatal("timed out")
					}
				} else {
					var err error
					m, err = s.Receive(ctx)
					require.NoError(t, err)
				}
				require.NoError(t, m.Err)
				got := m.Data
				if mode != "memory" {
					mu.Lock()
					got = written[m.MessageID].Bytes()
					mu.Unlock()
				}
				require.True(t, bytes.Equal(bodies[m.MessageID], got), "message %s arrived changed", m.MessageID)
			}
			assert.Empty(t, bad(), "every chunk answered 200")
			mu.Lock()
			defer mu.Unlock()
			for j := range kept {
				require.True(t, bytes.Equal(keptWant[j], kept[j].Data), "chunk %d given to OnIncoming changed", j)
			}
		})
	}
}

// Messages that end without being written (aborted with fragments held,
// refused as too large) leave their bodies alone; the next messages, whose
// chunks reuse pooled buffers, arrive whole.
func TestPoolBodiesAbortedAndRefusedThenWhole(t *testing.T) {
	s, peer := sessionAndPeer(t, SessionConfig{MessageConfig: MessageConfig{MaxMessageSize: 256 << 10}})
	bad, _ := prPeerAnswers(peer)
	rng := rand.New(rand.NewPCG(9, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 4 {
		// aborted: held fragments, then "#"
		ab := prRandom(rng, 100<<10)
		mid := fmt.Sprint("aborted", round)
		for pos := 8192; pos+8192 <= len(ab); pos += 16384 {
			require.NoError(t, peer.WriteChunk(ctx, prSendChunk(peer, mid, ab[pos:pos+8192], int64(pos+1), int64(len(ab)))))
		}
		abort := prSendChunk(peer, mid, ab[:4097], 1, int64(len(ab)))
		abort.ContFlag = FlagAborted
		require.NoError(t, peer.WriteChunk(ctx, abort))
		// refused: over MaxMessageSize, in order, then out of order
		big := prRandom(rng, 300<<10)
		mid = fmt.Sprint("refused", round)
		for pos := 0; pos < len(big); pos += 16384 {
			end := min(len(big), pos+16384)
			require.NoError(t, peer.WriteChunk(ctx, prSendChunk(peer, mid, big[pos:end], int64(pos+1), Unknown)))
		}
		// whole: out of order
		body := prRandom(rng, 90<<10+rng.IntN(8192))
		mid = fmt.Sprint("whole", round)
		for _, c := range prMessagePlan(rng, peer, mid, body) {
			require.NoError(t, peer.WriteChunk(ctx, c))
		}
		for {
			m, err := s.Receive(ctx)
			require.NotNil(t, m, "%v", err)
			if m.MessageID == mid {
				require.NoError(t, err)
				require.True(t, bytes.Equal(body, m.Data), "message %s arrived changed", mid)
				break
			}
			assert.Error(t, m.Err, m.MessageID)
		}
	}
	t.Logf("codes other than 200: %v", bad())
}

// Session to session, over loopback, with chunk sizes around the pools'
// sizes, in memory and through a MessageWriter.
func TestPoolBodiesSessionsChunkSizes(t *testing.T) {
	for _, chunkSize := range []int{2049, 4096, 4097, 8192, 16384, 16385} {
		t.Run(fmt.Sprint(chunkSize), func(t *testing.T) {
			sendInterleavedAndCompare(t, chunkSize, 4, 64<<10, 64<<10, rand.New(rand.NewPCG(uint64(chunkSize), 11)))
		})
	}
}

// recycleBody puts each buffer in the pool of its capacity, and smallBody
// hands out buffers of the class that fits.
func TestPoolBodiesPoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{2048, 0}, {2049, 0}, {3071, 0}, {3072, 4096}, {4096, 4096}, {4097, 0}, {6144, 8192}, {8192, 8192},
		{8193, 0}, {12288, 16384}, {16384, 16384}, {16385, 0},
	} {
		b := smallBody(tc.n, DefaultMaxChunkSize)
		if tc.cap == 0 {
			assert.Nil(t, b, "n=%d", tc.n)
			continue
		}
		require.NotNil(t, b)
		assert.Equal(t, tc.cap, cap(b), "n=%d", tc.n)
		assert.Zero(t, len(b))
	}
	for _, c := range []int{4096, 8192, 16384} {
		recycleBody(make([]byte, 10, c))
	}
	// Sizes that are not a class are not pooled (they would be handed out
	// for a body they cannot hold, or waste memory).
	for _, c := range []int{2048, 3000, 6000, 12288, 20000} {
		recycleBody(make([]byte, 1, c))
	}
	for range 50 {
		for _, n := range []int{3072, 6500, 12300, 16000} {
			b := smallBody(n, DefaultMaxChunkSize)
			require.GreaterOrEqual(t, cap(b), n)
			require.LessOrEqual(t, cap(b), n*4/3)
		}
	}
	assert.Nil(t, smallBody(8000, 8100), "no buffer beyond the size cap")
}

// The bound on fragments held beyond a gap counts len+fragmentCost per
// fragment, "a little over what the heap holds for it": the buffers that
// really hold the fragments must stay within about that.
func TestPoolBodiesHeldFragmentsMemoryWithinLimit(t *testing.T) {
	const limit = 1 << 20
	s, peer := sessionAndPeer(t, SessionConfig{MessageConfig: MessageConfig{MaxMessageSize: limit}})
	bad, _ := prPeerAnswers(peer)
	rng := rand.New(rand.NewPCG(12, 13))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const size = 2049 // just over the pools' floor: each body gets 4 KiB
	mid := "held"
	n := limit / (size + fragmentCost) // as many as the limit lets the session hold
	peak, taken, probes := 0, 0, 0
	for i := 1; i <= n; i++ {
		d := prRandom(rng, size)
		require.NoError(t, peer.WriteChunk(ctx, prSendChunk(peer, mid, d, int64(2*i*size+1), Unknown)))
		if i%32 != 0 && i != n {
			continue
		}
		// A probe, answered after the fragments: then see what is held.
		require.NoError(t, peer.WriteChunk(ctx, peer.MakeRequest("PROBE")))
		probes++
		require.Eventually(t, func() bool {
			k := 0
			for _, c := range bad() {
				if c == 501 {
					k++
				}
			}
			return k == probes
		}, 10*time.Second, time.Millisecond)
		s.mu.Lock()
		im := s.incoming.active[mid]
		held := 0
		if im != nil {
			for _, f := range im.ahead {
				held += cap(f.data)
			}
			taken = len(im.ahead)
		}
		s.mu.Unlock()
		peak = max(peak, held)
		if im == nil {
			break // refused once what it held reached the limit
		}
	}
	t.Logf("fragments of %d bytes held at most: %d, in buffers of %d bytes in all (limit %d)", size, taken, peak, limit)
	assert.LessOrEqual(t, peak, limit*5/4, "the buffers holding out-of-order fragments stay near MaxMessageSize")
}

// After a flow of relay-sized chunks, an idle transport holds no body
// buffer: the 32 KiB gathering buffer kept while data flows goes back.
func TestPoolBodiesIdleAfterRelaySizedChunks(t *testing.T) {
	for _, size := range []int{2049, 4097, 8192, 16385} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			a, b := pipePair(t)
			rng := rand.New(rand.NewPCG(uint64(size), 14))
			want := make([][]byte, 40)
			for i := range want {
				want[i] = prRandom(rng, size)
			}
			go func() {
				for i := range want {
					if a.WriteChunk(context.Background(), prSendChunk(a, "", want[i], 1, 0)) != nil {
						return
					}
				}
			}()
			for i := range want {
				c, err := b.ReadChunk(context.Background())
				require.NoError(t, err)
				require.True(t, bytes.Equal(want[i], c.Data))
			}
			assert.Nil(t, b.bulk, "the bulk read buffer went back to the pool")
			assert.Nil(t, b.parser.acc, "and the body buffer too")
		})
	}
}

// A body arriving in one piece is held in about as much memory as it has
// bytes, and never in more than MaxChunkSize: "a peer cannot make the
// parser hold more than it sent". Before the pools, cap(Data) was len(Data).
func TestPoolBodiesParserHoldsNoMoreThanSent(t *testing.T) {
	for _, n := range []int{2049, 3000, 4097, 8193, 16384} {
		c := NewRequest(MethodSEND, []URI{{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}},
			[]URI{{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}})
		c.Headers.Set(HeaderContentType, "text/plain")
		c.Data = bytes.Repeat([]byte("x"), n)
		raw, err := c.Encode(nil)
		require.NoError(t, err)
		p := Parser{Limits: Limits{MaxChunkSize: len(raw)}} // a cap that fits this chunk exactly
		got, _, err := p.Feed(raw)
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.LessOrEqual(t, cap(got.Data), p.MaxChunkSize, "n=%d: a body held in more than MaxChunkSize", n)
		assert.LessOrEqual(t, cap(got.Data), n*9/8, "n=%d: a body held in %d bytes", n, cap(got.Data))
	}
}

// A transport left waiting in the middle of a chunk's start line, after a
// flow of 8 KiB chunks, holds the 32 KiB gathering buffer kept "while data
// flows" (releaseBuffers runs only at a chunk boundary). Before, a copied
// out body let the buffer go (its cap was over twice the body's).
func TestPoolBodiesIdleMidStartLineAfterFlow(t *testing.T) {
	a, b := pipePair(t)
	rng := rand.New(rand.NewPCG(15, 16))
	var raw []byte
	for range 4 {
		r, err := prSendChunk(a, "", prRandom(rng, 8192), 1, 0).Encode(nil)
		require.NoError(t, err)
		raw = append(raw, r...)
	}
	raw = append(raw, "MSRP abcd"...) // the next chunk's start, then nothing
	_, err := a.netConn().Write(raw)
	require.NoError(t, err)
	for range 4 {
		_, err := b.ReadChunk(context.Background())
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = b.ReadChunk(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, b.bulk, "no bulk read buffer while waiting")
	assert.Zero(t, cap(b.parser.acc), "no body buffer while waiting for a start line")
}

// prCheckingWriter checks each write against the body it should be, at
// its offset, while the session recycles the chunks it came from.
type prCheckingWriter struct {
	mu   sync.Mutex
	body []byte
	off  int
	bad  int
}

func (w *prCheckingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off+len(p) > len(w.body) || !bytes.Equal(w.body[w.off:w.off+len(p)], p) {
		w.bad++
	}
	w.off += len(p)
	return len(p), nil
}

// Messages cut short by Close, with the traffic log on (bodies included):
// everything written before the end is right, and nothing races.
func TestPoolBodiesCloseMidMessageWithTrafficLog(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var mu sync.Mutex
	writers := map[string]*prCheckingWriter{}
	bodies := map[string][]byte{}
	for i := range 4 {
		bodies[fmt.Sprintf("cut-%d", i)] = prRandom(rng, 400<<10)
	}
	logged := 0
	cfg := SessionConfig{MessageConfig: MessageConfig{MessageWriter: func(_ *MSRPSession, m *IncomingMessage) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		w := &prCheckingWriter{body: bodies[m.MessageID]}
		writers[m.MessageID] = w
		return w
	}}}
	ts, peer := pipePair(t)
	ts.Logger = &Logger{Slog: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		logged += len(p)
		mu.Unlock()
		return len(p), nil
	}), nil)), LogTraffic: true}
	s := NewMSRPSession(ts, cfg)
	t.Cleanup(func() { s.Close() })
	_, peerDone := prPeerAnswers(peer)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var plans [][]*Chunk
		for mid, body := range bodies {
			plans = append(plans, prMessagePlan(rng, peer, mid, body))
		}
		for k := 0; ; k++ {
			progressed := false
			for j := range plans {
				if k < len(plans[j]) {
					progressed = true
					if peer.WriteChunk(context.Background(), plans[j][k]) != nil {
						return
					}
				}
			}
			if !progressed {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	<-s.Done()
	peer.Close()
	<-sent
	<-peerDone
	mu.Lock()
	defer mu.Unlock()
	for mid, w := range writers {
		w.mu.Lock()
		assert.Zero(t, w.bad, "%s: writes that were not the body's bytes", mid)
		w.mu.Unlock()
	}
	t.Logf("%d writers, %d bytes of traffic log", len(writers), logged)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
