package webrtc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/leakcheck"
	msrpwebrtc "github.com/go-msrp/msrp/webrtc"
)

// reviewPeer is newPeer that also returns the pion channel.
func reviewPeer(t testing.TB, cfg msrpwebrtc.Config) (*peer, *pion.DataChannel) {
	pc, err := loopbackAPI().NewPeerConnection(pion.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	negotiated, id, protocol := true, uint16(0), "msrp"
	dc, err := pc.CreateDataChannel("chat", &pion.DataChannelInit{Negotiated: &negotiated, ID: &id, Protocol: &protocol})
	require.NoError(t, err)
	c, err := msrpwebrtc.NewConn(dc, cfg)
	require.NoError(t, err)
	return &peer{pc: pc, conn: c}, dc
}

func waitOpen(t testing.TB, dc *pion.DataChannel) {
	deadline := time.Now().Add(10 * time.Second)
	for dc.ReadyState() != pion.DataChannelStateOpen {
		require.True(t, time.Now().Before(deadline), "channel never opened")
		time.Sleep(10 * time.Millisecond)
	}
}

func stacksWith(sub string) (int, string) {
	buf := make([]byte, 4<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	n, keep := 0, []string{}
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, sub) {
			n++
			keep = append(keep, g)
		}
	}
	return n, strings.Join(keep, "\n\n")
}

// A reader that stops (no ReadMessage) with a full queue, then the peer
// connection is closed: pion's readLoop stays blocked in Conn's OnMessage
// handler, because OnClose (the only thing closing c.closed besides
// Conn.Close) is called by that very readLoop after its read fails.
func TestReviewDCBlockedOnMessageLeaksAfterPCClose(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 2})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 6 {
		require.NoError(t, a.conn.WriteMessage(ctx, []byte(fmt.Sprint("m", i))))
	}
	time.Sleep(500 * time.Millisecond) // b's queue (2) is full, readLoop is in OnMessage
	require.NoError(t, b.pc.Close())
	require.NoError(t, a.pc.Close())
	time.Sleep(3 * time.Second)
	assert.Equal(t, pion.DataChannelStateClosed, bdc.ReadyState())
	n, stacks := stacksWith("msrp/webrtc.NewConn.func")
	if n > 0 {
		t.Errorf("after PeerConnection.Close, %d goroutine(s) still blocked in Conn's OnMessage:\n%s", n, stacks)
	}
	// and b.conn never learns it is closed: ReadMessage with nothing to read
	// would give the queued messages, then one more, then EOF (not checked:
	// reading is what unblocks it). Release it for the other tests.
	b.conn.Close()
}

// pion's PeerConnection.GracefulClose waits for readLoops: it hangs while
// OnMessage is blocked on the full queue.
func TestReviewDCGracefulCloseHangsOnFullQueue(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 1})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 4 {
		require.NoError(t, a.conn.WriteMessage(ctx, []byte("x")))
	}
	time.Sleep(500 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- b.pc.GracefulClose() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("b.pc.GracefulClose() still blocked after 5s (readLoop stuck in Conn's OnMessage)")
		b.conn.Close()
		<-done
	}
}

// Messages queued before the peer closes the channel are all read before
// io.EOF, however slow the reader.
func TestReviewDCQueuedBeforeEOF(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 4})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const n = 40
	for i := range n {
		require.NoError(t, a.conn.WriteMessage(ctx, []byte(fmt.Sprint("m", i))))
	}
	require.NoError(t, a.conn.Close())
	time.Sleep(300 * time.Millisecond)
	for i := range n {
		m, err := b.conn.ReadMessage(ctx)
		require.NoError(t, err, "message %d", i)
		require.Equal(t, fmt.Sprint("m", i), string(m))
		if i%8 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_, err := b.conn.ReadMessage(ctx)
	assert.ErrorIs(t, err, io.EOF)
	_, err = b.conn.ReadMessage(ctx)
	assert.ErrorIs(t, err, io.EOF)
}

// A channel that never opens: writes, reads and both StartSession roles are
// bounded by ctx; Close ends them.
func TestReviewDCNeverOpens(t *testing.T) {
	leakcheck.Check(t)
	a, _ := reviewPeer(t, msrpwebrtc.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, a.conn.WriteMessage(ctx, []byte("x")), context.DeadlineExceeded)
	self := msrp.URI{Host: "a.invalid", Port: 9, SessionID: "s1", Transport: "dc"}
	peerURI := msrp.URI{Host: "b.invalid", Port: 9, SessionID: "s2", Transport: "dc"}
	for _, active := range []bool{true, false} {
		a, _ := reviewPeer(t, msrpwebrtc.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		s, err := msrpwebrtc.StartSession(ctx, a.conn, self, []msrp.URI{peerURI}, active, msrp.SessionConfig{})
		cancel()
		assert.Error(t, err, "active=%v", active)
		assert.Nil(t, s)
		assert.Less(t, time.Since(start), 3*time.Second, "active=%v", active)
		a.pc.Close()
	}
	b, _ := reviewPeer(t, msrpwebrtc.Config{})
	errs := make(chan error, 2)
	go func() { errs <- b.conn.WriteMessage(context.Background(), []byte("x")) }()
	go func() { _, err := b.conn.ReadMessage(context.Background()); errs <- err }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, b.conn.Close())
	for range 2 {
		select {
		case err := <-errs:
			assert.Error(t, err)
		case <-time.After(3 * time.Second):
			t.Fatal("Close did not end a blocked read or write")
		}
	}
	a.pc.Close()
	b.pc.Close()
}

// Both ends passive: neither sends, each waits, bounded by ctx. Both active:
// each binds.
func TestReviewDCBothPassiveBothActive(t *testing.T) {
	for _, active := range []bool{false, true} {
		t.Run(fmt.Sprint("active=", active), func(t *testing.T) {
			a, _ := reviewPeer(t, msrpwebrtc.Config{})
			b, _ := reviewPeer(t, msrpwebrtc.Config{})
			aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			type res struct {
				s   *msrp.MSRPSession
				err error
			}
			rb := make(chan res, 1)
			go func() {
				s, err := msrpwebrtc.StartSession(ctx, b.conn, bURI, bSeesA.MSRP.Path, active, msrp.SessionConfig{})
				rb <- res{s, err}
			}()
			sa, errA := msrpwebrtc.StartSession(ctx, a.conn, aURI, aSeesB.MSRP.Path, active, msrp.SessionConfig{})
			r := <-rb
			t.Logf("after %v: a: %v, b: %v", time.Since(start).Round(time.Millisecond), errA, r.err)
			assert.Less(t, time.Since(start), 5*time.Second)
			if !active {
				assert.Error(t, errA)
				assert.Error(t, r.err)
				return
			}
			require.NoError(t, errA)
			require.NoError(t, r.err)
			defer sa.Close()
			defer r.s.Close()
			ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel2()
			require.NoError(t, sa.Send(ctx2, "text/plain", []byte("hi"), msrp.MessageOptions{}))
			m, err := r.s.Receive(ctx2)
			require.NoError(t, err)
			assert.Equal(t, "hi", string(m.Data))
		})
	}
}

// Shutdown by the passive end ends both cleanly; Close (not Shutdown) by
// one end is seen by the other; nothing leaks once the peers are closed.
func TestReviewDCShutdownEitherEnd(t *testing.T) {
	leakcheck.Check(t)
	for _, which := range []string{"passive shuts down", "active closes", "peer connection closes"} {
		t.Run(which, func(t *testing.T) {
			a, _ := reviewPeer(t, msrpwebrtc.Config{})
			b, _ := reviewPeer(t, msrpwebrtc.Config{})
			sa, sb := startSessions(t, a, b, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			require.NoError(t, sa.Send(ctx, "text/plain", []byte("x"), msrp.MessageOptions{}))
			_, err := sb.Receive(ctx)
			require.NoError(t, err)
			var other *msrp.MSRPSession
			start := time.Now()
			switch which {
			case "passive shuts down":
				require.NoError(t, sb.Shutdown(ctx))
				other = sa
			case "active closes":
				sa.Close()
				other = sb
			case "peer connection closes":
				b.pc.Close()
				other = sa
			}
			select {
			case <-other.Done():
			case <-time.After(12 * time.Second):
				t.Fatalf("%s: the other session did not end", which)
			}
			t.Logf("%s: other ended after %v, Err=%v", which, time.Since(start).Round(time.Millisecond), other.Err())
			if which == "passive shuts down" {
				assert.NoError(t, other.Err())
				assert.NoError(t, sb.Err())
			}
			sa.Close()
			sb.Close()
			a.pc.Close()
			b.pc.Close()
		})
	}
}

// bindRaw binds a transport on a's Conn against a session on b.
func bindRaw(t *testing.T, ctx context.Context, a, b *peer) (*msrp.MSRPTransport, *msrp.MSRPSession) {
	aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
	done := make(chan *msrp.MSRPSession, 1)
	go func() {
		s, err := msrpwebrtc.StartSession(ctx, b.conn, bURI, bSeesA.MSRP.Path, false, msrp.SessionConfig{})
		assert.NoError(t, err)
		done <- s
	}()
	ta := msrp.NewMessageTransport(a.conn, aURI)
	require.NoError(t, ta.Bind(ctx, aSeesB.MSRP.Path))
	sb := <-done
	require.NotNil(t, sb)
	t.Cleanup(func() { sb.Close() })
	return ta, sb
}

func rawSend(t *testing.T, ta *msrp.MSRPTransport, tid string, body []byte) []byte {
	c := ta.MakeSendRequest("", body, 1, int64(len(body)))
	c.TransactionID = tid
	c.Headers.Set(msrp.HeaderContentType, "text/plain")
	raw, err := c.Encode(nil)
	require.NoError(t, err)
	return raw
}

// A browser may send the chunk as a string; empty messages carry nothing.
func TestReviewDCTextAndEmptyMessages(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, _ := reviewPeer(t, msrpwebrtc.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ta, sb := bindRaw(t, ctx, a, b)
	require.NoError(t, adc.Send(nil))
	require.NoError(t, adc.SendText(""))
	require.NoError(t, adc.SendText(string(rawSend(t, ta, "text0001", []byte("as a string")))))
	require.NoError(t, adc.Send(rawSend(t, ta, "bin00001", []byte("as binary"))))
	for _, tid := range []string{"text0001", "bin00001"} {
		r, err := ta.ReadChunk(ctx)
		require.NoError(t, err)
		assert.Equal(t, [2]any{tid, 200}, [2]any{r.TransactionID, r.Code})
	}
	for _, want := range []string{"as a string", "as binary"} {
		m, err := sb.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(m.Data))
	}
}

// A message over the receiver's MaxChunkSize (which Conn cannot refuse
// before reading: it has no SetReadLimit) is answered 413 and the channel
// carries on.
func TestReviewDCOversizedMessage(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, _ := reviewPeer(t, msrpwebrtc.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	aURI, bURI, aSeesB, bSeesA := connect(t, a, b)
	done := make(chan *msrp.MSRPSession, 1)
	go func() {
		tb := msrp.NewMessageTransport(b.conn, bURI)
		tb.SetLimits(msrp.Limits{MaxChunkSize: 64 << 10})
		assert.NoError(t, tb.AcceptBinding(ctx, bSeesA.MSRP.Path))
		done <- msrp.NewMSRPSession(tb, msrp.SessionConfig{})
	}()
	ta := msrp.NewMessageTransport(a.conn, aURI)
	require.NoError(t, ta.Bind(ctx, aSeesB.MSRP.Path))
	sb := <-done
	defer sb.Close()
	big := bytes.Repeat([]byte("y"), 200<<10)
	require.NoError(t, adc.Send(rawSend(t, ta, "big00001", big)))
	r, err := ta.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]any{"big00001", 413}, [2]any{r.TransactionID, r.Code})
	require.NoError(t, adc.Send(rawSend(t, ta, "good0001", []byte("still here"))))
	r, err = ta.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]any{"good0001", 200}, [2]any{r.TransactionID, r.Code})
	m, err := sb.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "still here", string(m.Data))
}

// pion's receiver holds 1 MiB (SCTP receive buffer) though its SDP says
// max-message-size 1073741823: a bigger message passes WriteMessage's
// check (MaxMessageSize from the peer's SDP) and then never arrives.
func TestReviewDCOverPionReceiveBuffer(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{MaxMessageSize: 1073741823})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// pion's SDP says 1 GiB but a message over its 1 MiB receive buffer
	// wedges the channel: the Conn refuses it, and the channel goes on.
	require.Error(t, a.conn.WriteMessage(ctx, make([]byte, 1100<<10)))
	require.NoError(t, a.conn.WriteMessage(ctx, []byte("next")))
	msg, err := b.conn.ReadMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, "next", string(msg))
}

// ChunkSize reserves 2 KiB of each data channel message for the chunk's
// head; MessageOptions.Headers can make the head larger, and then every
// chunk but the last is over max-message-size.
func TestReviewDCLargeHeadersOverMaxMessageSize(t *testing.T) {
	a, _ := reviewPeer(t, msrpwebrtc.Config{})
	b, _ := reviewPeer(t, msrpwebrtc.Config{})
	sa, sb := startSessions(t, a, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	h := msrp.Header{}
	h.Set("Content-Disposition", "attachment; filename=\""+strings.Repeat("n", 1500)+"\"")
	h.Set("Content-Description", strings.Repeat("d", 1500))
	body := bytes.Repeat([]byte("z"), 200<<10)
	err := sa.Send(ctx, "application/octet-stream", body, msrp.MessageOptions{Headers: h})
	t.Logf("Send: %v; session Err: %v", err, sa.Err())
	require.NoError(t, err, "a 200 KiB message with 3 KiB of headers")
	m, err := sb.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(body), len(m.Data))
}

// A peer's max-message-size under ~1.3 KB: ChunkSize never goes under
// 1 KiB, so each full chunk is over the limit.
func TestReviewDCSmallMaxMessageSize(t *testing.T) {
	a, _ := reviewPeer(t, msrpwebrtc.Config{MaxMessageSize: 1200})
	b, _ := reviewPeer(t, msrpwebrtc.Config{})
	sa, sb := startSessions(t, a, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	t.Logf("ChunkSize(1200) = %d", msrpwebrtc.ChunkSize(1200))
	err := sa.Send(ctx, "text/plain", bytes.Repeat([]byte("s"), 4000), msrp.MessageOptions{})
	t.Logf("Send: %v; session Err: %v", err, sa.Err())
	require.NoError(t, err)
	_, err = sb.Receive(ctx)
	require.NoError(t, err)
}

// The buffered amount stays within MaxBuffered plus one message behind a
// peer that reads nothing.
func TestReviewDCBufferedBound(t *testing.T) {
	const maxBuf, msgSize = 64 << 10, 20 << 10
	a, adc := reviewPeer(t, msrpwebrtc.Config{MaxBuffered: maxBuf})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 1})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := adc.BufferedAmount(); v > peak.Load() {
				peak.Store(v)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sent := 0
	for {
		if err := a.conn.WriteMessage(ctx, make([]byte, msgSize)); err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			break
		}
		sent++
	}
	close(stop)
	wg.Wait()
	t.Logf("sent %d messages; peak buffered %d (bound %d)", sent, peak.Load(), maxBuf+msgSize)
	assert.LessOrEqual(t, peak.Load(), uint64(maxBuf+msgSize))
	b.conn.Close()
}

// Close racing with reads, writes and incoming messages (-race).
func TestReviewDCCloseRaces(t *testing.T) {
	for i := range 3 {
		a, adc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 2})
		b, bdc := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 2})
		connect(t, a, b)
		waitOpen(t, adc)
		waitOpen(t, bdc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		for _, p := range []*peer{a, b} {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for p.conn.WriteMessage(ctx, []byte("w")) == nil {
				}
			}()
			go func() {
				defer wg.Done()
				for {
					if _, err := p.conn.ReadMessage(ctx); err != nil {
						if !errors.Is(err, io.EOF) {
							t.Errorf("read ended with %v", err)
						}
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(50*(i+1)) * time.Millisecond)
		var cg sync.WaitGroup
		for range 3 {
			cg.Add(1)
			go func() { defer cg.Done(); a.conn.Close() }()
		}
		cg.Wait()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(8 * time.Second):
			n, s := stacksWith("review_webrtc_test")
			t.Fatalf("readers/writers did not end after Close (%d):\n%s", n, s)
		}
		cancel()
		a.pc.Close()
		b.pc.Close()
	}
}

// The receiving app does not call Receive; the peer then closes its peer
// connection. Does b's session end, and does anything stay blocked once b
// closes its own peer connection (without closing the session)?
func TestReviewDCPeerGoneWhileNotReceiving(t *testing.T) {
	a, _ := reviewPeer(t, msrpwebrtc.Config{})
	b, _ := reviewPeer(t, msrpwebrtc.Config{ReadQueue: 2})
	sa, sb := startSessions(t, a, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 300 {
		if _, err := sa.SendMessage(bytes.NewReader([]byte(fmt.Sprint("m", i))), -1, "text/plain", msrp.MessageOptions{}); err != nil {
			t.Logf("SendMessage %d: %v", i, err)
			break
		}
	}
	time.Sleep(time.Second)
	a.pc.Close()
	select {
	case <-sb.Done():
		t.Logf("b's session ended: %v", sb.Err())
	case <-time.After(8 * time.Second):
		// The reader is paused while messages wait for Receive: the end is
		// not seen (by design, as over TCP).
		t.Logf("b's session, paused, did not notice the peer connection closing")
	}
	b.pc.Close()
	time.Sleep(2 * time.Second)
	if n, s := stacksWith("msrp/webrtc.NewConn.func"); n > 0 {
		t.Errorf("%d goroutine(s) blocked in OnMessage after both peer connections closed:\n%.1500s", n, s)
	}
	_ = ctx
}

// WriteMessage after Close: net.ErrClosed, or pion's error, at random.
func TestReviewDCWriteAfterCloseIsErrClosed(t *testing.T) {
	a, adc := reviewPeer(t, msrpwebrtc.Config{})
	b, bdc := reviewPeer(t, msrpwebrtc.Config{})
	connect(t, a, b)
	waitOpen(t, adc)
	waitOpen(t, bdc)
	require.NoError(t, a.conn.Close())
	other := map[string]int{}
	for range 50 {
		if err := a.conn.WriteMessage(context.Background(), []byte("x")); !errors.Is(err, net.ErrClosed) {
			other[fmt.Sprint(err)]++
		}
	}
	assert.Empty(t, other, "of 50 writes after Close, these did not return net.ErrClosed")
}
