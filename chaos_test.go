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
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/require"
)

// TestSessionChaos runs sessions over real loopback connections through
// random interleavings of everything that can end or upset them: the peer
// answering, refusing, staying silent, stalling, dropping mid-chunk or
// half-closing; writes that fail or hang; response timeouts and
// keepalives; Close and Shutdown from the application and from callbacks;
// contexts ending; and SendMessage from slow, blocked, short and over-long
// readers. After each round it checks that every outcome came exactly
// once, that Done closed, and (at the end) that no goroutine was left.
//
// MSRP_CHAOS_SEED replays a run; MSRP_CHAOS_ROUNDS sets its length.
func TestSessionChaos(t *testing.T) {
	leakcheck.Check(t)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("MSRP_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	rounds := 600
	if testing.Short() {
		rounds = 100
	}
	if n, err := strconv.Atoi(os.Getenv("MSRP_CHAOS_ROUNDS")); err == nil {
		rounds = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with MSRP_CHAOS_SEED=%d", seed)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	start := time.Now()
	for round := range rounds {
		r := &chaosRound{rng: rand.New(rand.NewPCG(seed, uint64(round))), ln: ln}
		if err := r.run(); err != nil {
			buf := make([]byte, 1<<20)
			t.Fatalf("seed %d, round %d: %v\n%s", seed, round, err, buf[:runtime.Stack(buf, true)])
		}
	}
	t.Logf("seed %d: %d rounds in %v", seed, rounds, time.Since(start).Round(time.Millisecond))
}

// chaosRound is one session and its peer under random faults.
type chaosRound struct {
	rng *rand.Rand
	mu  sync.Mutex // guards rng, which the round's goroutines share
	ln  net.Listener

	s        *MSRPSession
	peer     *MSRPTransport
	conn     *faultConn
	app      sync.WaitGroup // the application's goroutines
	problems []string
	pipes    []*io.PipeWriter // blocked readers' pipes, closed when the round ends

	outcomes sync.Map // *atomic.Int32 by a SendChunk's number: how often its callback ran
	messages sync.Map // *atomic.Int32 by Message-ID: how often OnMessage ran
	peerTIDs sync.Map // Message-ID by transaction id of the peer's message chunks
	accepted sync.Map // Message-IDs of which the session accepted a chunk: each must end once
	fromCB   atomic.Bool
}

func (r *chaosRound) intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

func (r *chaosRound) chance(percent int) bool { return r.intn(100) < percent }

func (r *chaosRound) pause() {
	if d := r.intn(3000); d > 2000 {
		time.Sleep(time.Duration(d-2000) * time.Microsecond)
	} else if d > 1000 {
		runtime.Gosched()
	}
}

func (r *chaosRound) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *chaosRound) run() error {
	client, server, err := chaosConnPair(r.ln)
	if err != nil {
		return err
	}
	defer client.Close()
	defer server.Close()
	r.conn = &faultConn{Conn: client, closed: make(chan struct{})}
	local := URI{Host: "127.0.0.1", Port: 1, SessionID: "chaos" + strconv.Itoa(r.intn(1e6)), Transport: "tcp"}
	remote := URI{Host: "127.0.0.1", Port: 2, SessionID: "peer", Transport: "tcp"}
	t := NewMSRPTransport(r.conn, local)
	t.SetRemotePath([]URI{remote})
	r.peer = NewMSRPTransport(server, remote)
	r.peer.SetRemotePath([]URI{local})

	cfg := SessionConfig{
		KeepaliveInterval: -1,
		ResponseTimeout:   []time.Duration{2 * time.Millisecond, 20 * time.Millisecond, time.Minute}[r.intn(3)],
		MaxPending:        []int{4, 64, 0}[r.intn(3)],
		OnIncoming:        r.onIncoming,
		MessageConfig:     MessageConfig{OnMessage: r.onMessage, ChunkSize: []int{16, 1000, 0}[r.intn(3)]},
	}
	if r.chance(30) {
		cfg.KeepaliveInterval = time.Millisecond
	}
	if r.chance(20) {
		cfg.MaxMessageSize = 3 // most of the peer's messages are refused (413)
	}
	if r.chance(30) {
		cfg.MessageWriter = r.messageWriter
	}
	receiving := r.chance(30) // messages go to Receive, which may be slow, or wait for the end
	if receiving {
		cfg.OnIncoming, cfg.OnMessage = nil, nil
		cfg.ReceiveBuffer = []int{1, 3, 0}[r.intn(3)]
		cfg.MaxOutgoingMessages = []int{1, 2, 0}[r.intn(3)]
	}
	r.s = NewMSRPSession(t, cfg)
	if receiving {
		r.app.Go(r.receive)
	}
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		r.runPeer()
	}()
	for range 1 + r.intn(4) {
		r.app.Go(r.runApp)
	}
	if r.chance(20) {
		r.conn.fail.Store(int32(1 + r.intn(2))) // writes fail, or hang
	}

	// The application ends the session, or the faults do; either way, once
	// everything has been given the chance to happen, Close must finish it.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		r.pause()
		switch r.intn(3) {
		case 0:
			r.s.Close()
		case 1:
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.intn(5))*time.Millisecond)
			r.s.Shutdown(ctx)
			cancel()
		}
		r.s.Close()
	}()
	if err := waitFor(closed, "Close to return"); err != nil {
		return err
	}
	if err := waitFor(r.s.Done(), "Done"); err != nil {
		return err
	}
	r.mu.Lock()
	pipes := r.pipes
	r.mu.Unlock()
	for _, pw := range pipes {
		pw.Close()
	}
	appDone := make(chan struct{})
	go func() {
		r.app.Wait()
		close(appDone)
	}()
	if err := waitFor(appDone, "the application's calls to return"); err != nil {
		return err
	}
	server.Close()
	if err := waitFor(peerDone, "the peer"); err != nil {
		return err
	}
	r.outcomes.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			r.problem("SendChunk %v: callback ran %d times", k, n)
		}
		return true
	})
	r.messages.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			r.problem("message %v: OnMessage ran %d times", k, n)
		}
		return true
	})
	r.accepted.Range(func(k, _ any) bool {
		if _, ok := r.messages.Load(k); !ok {
			r.problem("message %v: a chunk was accepted, and OnMessage never ran", k)
		}
		return true
	})
	if len(r.problems) > 0 {
		return errors.New(fmt.Sprint(r.problems))
	}
	return nil
}

func waitFor(c <-chan struct{}, what string) error {
	select {
	case <-c:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("hang: waited 20 s for %s", what)
	}
}

// runApp is one goroutine of the application: a few random calls.
func (r *chaosRound) runApp() {
	for range 1 + r.intn(6) {
		switch r.intn(6) {
		case 0, 1:
			r.sendChunk()
		case 2:
			ctx, cancel := r.someContext()
			r.s.DeliverChunk(ctx, textSend(r.s.Transport(), "deliver"))
			cancel()
		case 3:
			r.sendMessage()
		case 4:
			ctx, cancel := r.someContext()
			r.s.Send(ctx, "text/plain", bytes.Repeat([]byte("s"), 1+r.intn(3000)), MessageOptions{}) // must return
			cancel()
		case 5:
			if r.chance(30) {
				r.s.Close()
			} else {
				ctx, cancel := r.someContext()
				r.s.Shutdown(ctx)
				cancel()
			}
		}
		r.pause()
	}
}

// someContext is a context that ends soon, later, or never.
func (r *chaosRound) someContext() (context.Context, context.CancelFunc) {
	switch r.intn(3) {
	case 0:
		return context.WithTimeout(context.Background(), time.Duration(r.intn(3000))*time.Microsecond)
	case 1:
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			r.pause()
			cancel()
		}()
		return ctx, cancel
	}
	return context.WithTimeout(context.Background(), time.Minute) // longer than any round
}

var chaosCount atomic.Int64

func (r *chaosRound) sendChunk() {
	c := textSend(r.s.Transport(), "chunk")
	if r.chance(20) {
		c.Headers.Set(HeaderFailureReport, []string{"no", "partial"}[r.intn(2)])
	}
	n := &atomic.Int32{}
	id := chaosCount.Add(1)
	if err := r.s.SendChunk(c, func(*Chunk, error) { n.Add(1) }); err == nil {
		r.outcomes.Store(id, n)
	}
}

// sendMessage sends from a reader that may be slow, blocked, short or too
// long, and waits for the outcome, which must come.
func (r *chaosRound) sendMessage() {
	body := bytes.Repeat([]byte("m"), 1+r.intn(5000))
	size := int64(len(body))
	var src io.Reader = bytes.NewReader(body)
	switch r.intn(5) {
	case 0: // slow
		src = &slowReader{r: src, pause: r.pause}
	case 1: // blocked until the round ends
		pr, pw := io.Pipe()
		r.mu.Lock()
		r.pipes = append(r.pipes, pw)
		r.mu.Unlock()
		src = pr
	case 2: // ends early
		size += 10
	case 3: // has more than the message
		size -= int64(len(body) / 2)
	}
	if r.chance(30) {
		size = Unknown
	}
	var opts MessageOptions
	if r.chance(30) {
		opts.OnProgress = func(int64, int64) { r.fromCallback(r.s) }
	}
	m, err := r.s.SendMessage(src, size, "text/plain", opts)
	if err != nil {
		return
	}
	if r.chance(20) {
		r.pause()
		m.Abort()
	}
	m.Wait(context.Background()) // must return: the round ends the session
}

type slowReader struct {
	r     io.Reader
	pause func()
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.pause()
	return s.r.Read(p[:min(len(p), 100)])
}

func (r *chaosRound) onIncoming(s *MSRPSession, _ *Chunk) { r.fromCallback(s) }

// messageWriter streams a message somewhere that may fail, or keeps it in
// memory.
func (r *chaosRound) messageWriter(s *MSRPSession, _ *IncomingMessage) io.Writer {
	r.fromCallback(s)
	switch r.intn(3) {
	case 0:
		return nil
	case 1:
		return failingWriter{}
	}
	return io.Discard
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// fromCallback sometimes acts from inside a callback, once per round.
func (r *chaosRound) fromCallback(s *MSRPSession) {
	if !r.chance(10) || !r.fromCB.CompareAndSwap(false, true) {
		return
	}
	switch r.intn(4) {
	case 0:
		s.Close()
	case 1:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		s.Shutdown(ctx)
		cancel()
	case 2:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		s.DeliverChunk(ctx, textSend(s.Transport(), "from a callback"))
		cancel()
	case 3:
		r.sendChunk()
	}
}

// receive takes messages with Receive, as fast as they come, slowly, with
// contexts that end, or only once the session has ended; each must come
// once, and Receive must say when the session is over.
func (r *chaosRound) receive() {
	if r.chance(25) {
		<-r.s.Done()
	}
	slow := r.chance(50)
	for {
		if slow {
			r.pause()
		}
		ctx, cancel := r.someContext()
		m, err := r.s.Receive(ctx)
		cancel()
		switch {
		case m != nil:
			r.onMessage(r.s, m)
			if !errors.Is(err, m.Err) {
				r.problem("Receive returned %v with a message whose Err is %v", err, m.Err)
			}
		case errors.Is(err, ErrSessionClosed):
			return
		case ctx.Err() == nil:
			r.problem("Receive returned no message and %v", err)
			return
		}
	}
}

func (r *chaosRound) onMessage(_ *MSRPSession, m *IncomingMessage) {
	n, _ := r.messages.LoadOrStore(m.MessageID, &atomic.Int32{})
	if n.(*atomic.Int32).Add(1) > 1 {
		r.problem("message %s ended again: size %d, received %d, err %v", m.MessageID, m.Size, m.Received, m.Err)
	}
}

// runPeer is the far end: it answers, refuses or ignores what it reads,
// sends chunks of its own, and may stall, drop or half-close.
func (r *chaosRound) runPeer() {
	ctx := context.Background()
	stallAt, dropAt := -1, -1
	if r.chance(15) {
		stallAt = r.intn(10)
	}
	if r.chance(15) {
		dropAt = r.intn(10)
	}
	for i := 0; ; i++ {
		if i == stallAt {
			return // reads nothing more; the round's end closes the connection
		}
		if i == dropAt {
			raw, _ := textSend(r.peer, "cut short").Encode(nil)
			r.peer.netConn().Write(raw[:len(raw)/2])
			if r.chance(50) {
				r.peer.netConn().(*net.TCPConn).CloseWrite() // half-close: still reading
			} else {
				r.peer.Close()
				return
			}
		}
		if r.chance(30) {
			r.peerSends()
		}
		c, err := r.peer.ReadChunk(ctx)
		if err != nil {
			var pe *ChunkParseError
			if errors.As(err, &pe) {
				continue
			}
			return
		}
		if !c.IsRequest() {
			if mid, ok := r.peerTIDs.Load(c.TransactionID); ok && c.Code == 200 {
				r.accepted.Store(mid, true)
			}
			continue
		}
		switch k := r.intn(10); {
		case k < 7:
			r.peer.WriteResponse(ctx, c, 200, "")
		case k == 7:
			r.peer.WriteResponse(ctx, c, []int{400, 413, 481}[r.intn(3)], "")
		case k == 8:
			go func() { // late
				r.pause()
				r.peer.WriteResponse(ctx, c, 200, "")
			}()
		} // else: no answer at all
	}
}

// peerSends sends a request of the peer's own: a chunk of a message, a
// REPORT or a NICKNAME.
func (r *chaosRound) peerSends() {
	ctx := context.Background()
	switch r.intn(4) {
	case 0, 1:
		id := "pm" + strconv.FormatInt(chaosCount.Add(1), 10)
		parts := 1 + r.intn(3)
		order := []int{0, 1, 2}[:parts]
		if r.chance(30) {
			order[0], order[parts-1] = order[parts-1], order[0] // out of order
		}
		for _, p := range order {
			c := r.peer.MakeSendRequest(id, []byte("ab"), int64(1+2*p), int64(2*parts))
			c.Headers.Set(HeaderContentType, "text/plain")
			if r.chance(20) {
				c.Headers.Set(HeaderSuccessReport, "yes")
			}
			aborted := r.chance(10)
			if aborted {
				c.ContFlag = FlagAborted
			}
			if !aborted { // "#" for a message not in progress ends nothing
				r.peerTIDs.Store(c.TransactionID, id)
			}
			r.peer.WriteChunk(ctx, c)
			if aborted {
				break
			}
		}
	case 2:
		rep := r.peer.MakeRequest(MethodREPORT)
		rep.Headers.Add(HeaderMessageID, "m1234567")
		rep.Headers.Add(HeaderByteRange, "1-4/4")
		rep.Headers.Add(HeaderStatus, "000 200 OK")
		r.peer.WriteChunk(ctx, rep)
	case 3:
		nick := r.peer.MakeRequest(MethodNICKNAME)
		nick.Headers.Set(HeaderUseNickname, `"chaos"`)
		r.peer.WriteChunk(ctx, nick)
	}
}

// chaosConnPair dials the listener: a loopback TCP connection.
func chaosConnPair(ln net.Listener) (net.Conn, net.Conn, error) {
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server, ok := <-accepted
	if !ok {
		client.Close()
		return nil, nil, errors.New("accept failed")
	}
	return client, server, nil
}

// faultConn fails or holds writes on demand: fail 1 fails each write (and
// breaks the connection), 2 holds it until its deadline or Close.
type faultConn struct {
	net.Conn
	fail      atomic.Int32
	deadline  atomic.Int64 // unix nanoseconds of the write deadline; 0 for none
	closed    chan struct{}
	closeOnce sync.Once
}

var errInjected = errors.New("injected write failure")

func (c *faultConn) Write(b []byte) (int, error) {
	switch c.fail.Load() {
	case 1:
		c.Conn.Close()
		return 0, errInjected
	case 2:
		var expire <-chan time.Time
		if d := c.deadline.Load(); d != 0 {
			timer := time.NewTimer(time.Until(time.Unix(0, d)))
			defer timer.Stop()
			expire = timer.C
		}
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-expire:
			return 0, os.ErrDeadlineExceeded
		}
	}
	return c.Conn.Write(b)
}

func (c *faultConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(t.UnixNano())
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
