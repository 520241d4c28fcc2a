package msrp

// Tests of the short path: StartSession, Send, Receive, and the routes for
// REPORTs and NICKNAMEs that spare the application a switch on the method.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startPair prepares a direct connector and acceptor on loopback and starts
// a session on each with StartSession.
func startPair(t *testing.T, cfgA, cfgB SessionConfig) (active, passive *MSRPSession) {
	t.Helper()
	return startPairWith(t, false, ConnectConfig{}, ConnectConfig{}, cfgA, cfgB)
}

// startPairWith is startPair with connector configurations of our own
// (TLS, Limits, a Dial that wraps connections).
func startPairWith(t *testing.T, useTLS bool, ctor, acc ConnectConfig, cfgA, cfgB SessionConfig) (active, passive *MSRPSession) {
	t.Helper()
	ctx := context.Background()
	if useTLS {
		acc.TLSConfig, ctor.TLSConfig = tlsConfigs("127.0.0.1")
	}
	a, c := GetAcceptor(nil, acc), GetConnector(nil, ctor)
	accPath, err := a.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: useTLS})
	require.NoError(t, err)
	connPath, err := c.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: useTLS})
	require.NoError(t, err)
	type started struct {
		s   *MSRPSession
		err error
	}
	done := make(chan started, 1)
	go func() {
		s, err := StartSession(ctx, a, connPath, cfgB)
		done <- started{s, err}
	}()
	active, err = StartSession(ctx, c, accPath, cfgA)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	t.Cleanup(func() { active.Close(); r.s.Close() })
	return active, r.s
}

func TestSendAndReceive(t *testing.T) {
	leakcheck.Check(t)
	a, b := startPair(t, SessionConfig{}, SessionConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, a.Send(ctx, "text/plain", []byte("hello B"), MessageOptions{}))
	m, err := b.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello B", string(m.Data))
	assert.Equal(t, "text/plain", m.ContentType)
	assert.Equal(t, int64(7), m.Size)

	// Both ways at once, and a body of many chunks.
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sent := make(chan error, 1)
	go func() { sent <- b.Send(ctx, "application/octet-stream", big, MessageOptions{}) }()
	require.NoError(t, a.Send(ctx, "text/plain", []byte("and back"), MessageOptions{}))
	m, err = b.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "and back", string(m.Data))
	m, err = a.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, big, m.Data)
	require.NoError(t, <-sent)

	// The end: Receive says the session is over, once what came is taken.
	require.NoError(t, a.Send(ctx, "text/plain", []byte("last"), MessageOptions{}))
	require.NoError(t, a.Shutdown(ctx))
	<-b.Done()
	m, err = b.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "last", string(m.Data))
	_, err = b.Receive(ctx)
	assert.ErrorIs(t, err, ErrSessionClosed)
	assert.ErrorIs(t, err, ErrPeerClosed)
	assert.NoError(t, b.Err(), "a clean end")
}

// Receive is off where messages go elsewhere, and says so at once.
func TestReceiveOffWhenCallbacksTakeMessages(t *testing.T) {
	for name, cfg := range map[string]SessionConfig{
		"OnMessage":  {MessageConfig: MessageConfig{OnMessage: func(*MSRPSession, *IncomingMessage) {}}},
		"OnIncoming": {OnIncoming: func(*MSRPSession, *Chunk) {}},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := sessionAndPeer(t, cfg)
			_, err := s.Receive(context.Background())
			assert.ErrorIs(t, err, ErrReceiveOff)
		})
	}
	// OnIncoming beside OnMessage: messages go to OnMessage.
	got := make(chan *IncomingMessage, 1)
	s, peer := sessionAndPeer(t, SessionConfig{
		OnIncoming:    func(*MSRPSession, *Chunk) {},
		MessageConfig: MessageConfig{OnMessage: func(_ *MSRPSession, m *IncomingMessage) { got <- m }},
	})
	require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "to OnMessage")))
	assert.Equal(t, "to OnMessage", string((<-got).Data))
	_, err := s.Receive(context.Background())
	assert.ErrorIs(t, err, ErrReceiveOff)
}

// A message that fails reaches Receive with its error, in order; ctx ends a
// wait.
func TestReceiveGivesFailedMessagesAndHonoursCtx(t *testing.T) {
	leakcheck.Check(t)
	s, peer := sessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
	ctx := context.Background()
	abort := peer.MakeSendRequest("aborted", []byte("part"), 1, 100)
	abort.Headers.Set(HeaderContentType, "text/plain")
	abort.ContFlag = FlagContinued
	require.NoError(t, peer.WriteChunk(ctx, abort))
	end := peer.MakeSendRequest("aborted", nil, 5, 100)
	end.ContFlag = FlagAborted
	require.NoError(t, peer.WriteChunk(ctx, end))
	require.NoError(t, peer.WriteChunk(ctx, textSend(peer, "whole")))

	m, err := s.Receive(ctx)
	assert.ErrorIs(t, err, ErrMessageAborted)
	require.NotNil(t, m)
	assert.Equal(t, "aborted", m.MessageID)
	m, err = s.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "whole", string(m.Data))

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = s.Receive(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A message cut short by the end comes too, then the end.
	half := peer.MakeSendRequest("cut-short", []byte("half"), 1, 8)
	half.Headers.Set(HeaderContentType, "text/plain")
	half.ContFlag = FlagContinued
	require.NoError(t, peer.WriteChunk(ctx, half))
	require.Equal(t, 200, peerRead(t, peer).Code)
	require.Equal(t, 200, peerRead(t, peer).Code)
	require.Equal(t, 200, peerRead(t, peer).Code)
	require.Equal(t, 200, peerRead(t, peer).Code)
	require.NoError(t, peer.Close())
	m, err = s.Receive(ctx)
	require.Error(t, err)
	assert.Equal(t, "cut-short", m.MessageID)
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, ErrSessionClosed)
	assert.ErrorIs(t, s.Err(), ErrPeerClosed, "something was lost")
}

// Nobody calls Receive while the peer sends 10,000 messages: the session
// reads ReceiveBuffer of them and stops, the heap stays small, and TCP holds
// the peer, which is neither dropped nor refused. Then every message comes,
// in order, and the peer has its 10,000 answers.
func TestReceiveHoldsThePeerBackByTCP(t *testing.T) {
	leakcheck.Check(t)
	const n, size = 10000, 1024
	a, b := tcpPair(t)
	// Small socket buffers, so that what the kernel holds does not depend
	// on its autotuning: 10 MiB cannot fit in them.
	require.NoError(t, a.(*net.TCPConn).SetReadBuffer(64<<10))
	require.NoError(t, b.(*net.TCPConn).SetWriteBuffer(64<<10))
	aURI := URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	bURI := URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
	ta, peer := NewMSRPTransport(a, aURI), NewMSRPTransport(b, bURI)
	ta.SetRemotePath([]URI{bURI})
	peer.SetRemotePath([]URI{aURI})
	t.Cleanup(func() { peer.Close() })

	heapBefore := settledHeap()
	s := NewMSRPSession(ta, SessionConfig{})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	written := make(chan int, 1)
	go func() {
		body := bytes.Repeat([]byte("x"), size)
		i := 0
		for ; i < n; i++ {
			c := peer.MakeSendRequest(fmt.Sprintf("m%05d", i), body, 1, size)
			c.Headers.Set(HeaderContentType, "text/plain")
			if peer.WriteChunk(ctx, c) != nil {
				break
			}
		}
		written <- i
	}()
	answers := make(chan int, 1)
	go func() {
		ok := 0
		for {
			c, err := peer.ReadChunk(ctx)
			if err != nil {
				break
			}
			if c.Code == 200 {
				ok++
			}
			if ok == n {
				break
			}
		}
		answers <- ok
	}()

	// The session reads ReceiveBuffer messages, then nothing more.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.readerPaused
	}, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(DefaultReceiveBuffer), s.read.Load(), "chunks read before the session stopped")
	grown := int64(settledHeap()) - int64(heapBefore)
	t.Logf("heap growth with %d messages unread by the application: %d KiB", n, grown>>10)
	assert.Less(t, grown, int64(4<<20), "the heap grows with what the peer sends")
	select {
	case i := <-written:
		t.Fatalf("the peer wrote all it had (%d messages): nothing held it back", i)
	default:
	}

	for i := range n {
		m, err := s.Receive(ctx)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("m%05d", i), m.MessageID)
		require.Len(t, m.Data, size)
	}
	assert.Equal(t, n, <-written)
	assert.Equal(t, n, <-answers, "every message was answered with 200")
	assert.Equal(t, StateConnected, s.State(), "the peer was held, not dropped")
}

// peerWriter writes what it is given to peer, in order, from one goroutine:
// in a synctest bubble, a second writer waiting on the transport's write
// lock is not durably blocked, and time would stand still.
func peerWriter(t *testing.T, peer *MSRPTransport) chan<- *Chunk {
	toPeer := make(chan *Chunk, 64)
	go func() {
		for c := range toPeer {
			_ = peer.WriteChunk(context.Background(), c)
		}
	}()
	t.Cleanup(func() { close(toPeer) })
	return toPeer
}

// stillWaiting advances a synctest bubble's clock by d, and fails if a
// result came meanwhile.
func stillWaiting(t *testing.T, d time.Duration, result <-chan error, what string) {
	t.Helper()
	time.Sleep(d)
	synctest.Wait()
	select {
	case err := <-result:
		t.Fatalf("%s: %v", what, err)
	default:
	}
}

func settledHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// While the reader is held because nobody takes messages, the response to
// a request of ours may be waiting behind them, unread: its deadline stands
// still, and the answer counts once read.
func TestResponseDeadlineStandsStillWhileTheReaderIsHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{
			KeepaliveInterval: -1,
			MessageConfig:     MessageConfig{ReceiveBuffer: 1},
		})
		ctx := context.Background()
		require.NoError(t, peer.WriteChunk(ctx, textSend(peer, "first"))) // read: the buffer is full
		synctest.Wait()
		go func() {
			answered := false
			for {
				c, err := peer.ReadChunk(ctx)
				if err != nil {
					return
				}
				if c.IsRequest() && !answered {
					answered = true
					// Our request's answer goes behind a message the
					// session will not read until Receive makes room.
					_ = peer.WriteChunk(ctx, textSend(peer, "second"))
					r, _ := NewResponse(c, 200, "")
					_ = peer.WriteChunk(ctx, r)
				}
			}
		}()
		result := make(chan error, 1)
		go func() {
			_, err := s.DeliverChunk(ctx, textSend(s.Transport(), "ours"))
			result <- err
		}()
		// The clock stands still for up to one ResponseTimeout while the
		// reader waits for Receive: the request lives on past its own.
		stillWaiting(t, DefaultResponseTimeout*3/2, result, "the request ended while its answer waited unread")
		for _, want := range []string{"first", "second"} {
			m, err := s.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, want, string(m.Data))
		}
		require.NoError(t, <-result)

		// A peer that does not answer is still found, once reading goes on.
		go func() {
			_, err := s.DeliverChunk(ctx, textSend(s.Transport(), "unanswered"))
			result <- err
		}()
		synctest.Wait()
		time.Sleep(DefaultResponseTimeout + time.Second)
		assert.ErrorIs(t, <-result, ErrTimeout)

		// And while the reader waits for Receive, a peer that has gone is
		// found too: the clock stands still for one ResponseTimeout only.
		require.NoError(t, peer.WriteChunk(ctx, textSend(peer, "fills the buffer")))
		synctest.Wait()
		start := time.Now()
		go func() {
			_, err := s.DeliverChunk(ctx, textSend(s.Transport(), "to a peer that has gone"))
			result <- err
		}()
		assert.ErrorIs(t, <-result, ErrTimeout)
		assert.Equal(t, 2*DefaultResponseTimeout, time.Since(start).Round(time.Second))
	})
}

func TestSendRefusedAndCancelled(t *testing.T) {
	leakcheck.Check(t)
	a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 1024, Window: 1}},
		SessionConfig{AcceptTypes: []string{"text/plain"}})
	ctx := context.Background()

	err := a.Send(ctx, "image/png", []byte("not text"), MessageOptions{})
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 415, te.Code)

	// ctx ends a Send: the rest of the message is not sent, and the body
	// is not read once Send has returned (the race detector watches).
	body := bytes.Repeat([]byte("y"), 1<<20)
	sendCtx, cancel := context.WithCancel(ctx)
	progress := make(chan struct{}, 1)
	opts := MessageOptions{OnProgress: func(sent, _ int64) {
		if sent >= 4096 {
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}}
	sent := make(chan error, 1)
	go func() { sent <- a.Send(sendCtx, "text/plain", body, opts) }()
	<-progress
	cancel()
	assert.ErrorIs(t, <-sent, context.Canceled)
	clear(body)
	m, err := b.Receive(ctx)
	assert.ErrorIs(t, err, ErrMessageAborted)
	assert.Less(t, m.Received, int64(len(body)))
}

// SendMessage is bounded like SendChunk: at MaxOutgoingMessages it says so,
// and Send waits for room, or for its ctx.
func TestOutgoingMessagesAreBounded(t *testing.T) {
	leakcheck.Check(t)
	a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{MaxOutgoingMessages: 1}}, SessionConfig{})
	ctx := context.Background()
	pr, pw := io.Pipe()
	first, err := a.SendMessage(pr, 5, "text/plain", MessageOptions{})
	require.NoError(t, err)
	_, err = a.SendMessage(bytes.NewReader([]byte("x")), 1, "text/plain", MessageOptions{})
	assert.ErrorIs(t, err, ErrTooManyMessages)

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, a.Send(short, "text/plain", []byte("x"), MessageOptions{}), context.DeadlineExceeded)

	waiting := make(chan error, 1)
	go func() { waiting <- a.Send(ctx, "text/plain", []byte("second"), MessageOptions{}) }()
	_, err = pw.Write([]byte("first"))
	require.NoError(t, err)
	require.NoError(t, first.Wait(ctx))
	require.NoError(t, <-waiting)
	for _, want := range []string{"first", "second"} {
		m, err := b.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(m.Data))
	}
	// Ending the session ends a wait for room.
	pr2, pw2 := io.Pipe()
	defer pw2.Close() // the message's reader goroutine is the application's to end
	_, err = a.SendMessage(pr2, 5, "text/plain", MessageOptions{})
	require.NoError(t, err)
	go func() { waiting <- a.Send(ctx, "text/plain", []byte("never"), MessageOptions{}) }()
	time.Sleep(10 * time.Millisecond) // let it wait, if it is going to; it must end either way
	a.Close()
	assert.ErrorIs(t, <-waiting, ErrSessionClosed)
}

func TestStartSessionCleansUpWhenCompleteFails(t *testing.T) {
	leakcheck.Check(t)
	acc := GetAcceptor(nil, ConnectConfig{})
	path, err := acc.Prepare(context.Background(), URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = StartSession(ctx, acc, []URI{newPeerURI()}, SessionConfig{})
	require.ErrorIs(t, err, context.Canceled)
	// Cleaned up: nothing listens any more.
	c, err := net.Dial("tcp", path[0].HostPort())
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, "the acceptor still listens")
}

// StartSession through an MSRPServer: the per-session acceptor is a
// Connector like the others.
func TestStartSessionOnAServer(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{}
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	acc := srv.Acceptor(ServerAcceptorConfig{})
	local, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	conn := GetConnector(nil, ConnectConfig{})
	remote, err := conn.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	passive := make(chan *MSRPSession, 1)
	go func() {
		s, err := StartSession(ctx, acc, remote, SessionConfig{})
		assert.NoError(t, err)
		passive <- s
	}()
	active, err := StartSession(ctx, conn, local, SessionConfig{})
	require.NoError(t, err)
	defer active.Close()
	s := <-passive
	require.NotNil(t, s)
	defer s.Close()
	require.NoError(t, active.Send(ctx, "text/plain", []byte("via the server"), MessageOptions{}))
	m, err := s.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "via the server", string(m.Data))
}

// REPORTs reach OnReport decoded; NICKNAMEs are answered by OnNickname.
func TestReportAndNicknameRoutes(t *testing.T) {
	leakcheck.Check(t)
	reports := make(chan *Report, 4)
	a, b := startPair(t, SessionConfig{OnReport: func(_ *MSRPSession, r *Report) { reports <- r }},
		SessionConfig{OnNickname: func(_ *MSRPSession, nick string) int {
			if nick == "taken" {
				return 425
			}
			return 200
		}})
	ctx := context.Background()
	require.NoError(t, a.Send(ctx, "text/plain", []byte("report me"), MessageOptions{MessageID: "mid-1", SuccessReport: true}))
	r := <-reports
	assert.Equal(t, "mid-1", r.MessageID)
	assert.Equal(t, 200, r.Status.Code)
	assert.Equal(t, ByteRange{Start: 1, End: 9, Total: 9}, r.ByteRange)
	_, err := b.Receive(ctx)
	require.NoError(t, err)

	for nick, code := range map[string]int{"free": 200, "taken": 425} {
		req := a.Transport().MakeRequest(MethodNICKNAME)
		req.Headers.Set(HeaderUseNickname, `"`+nick+`"`)
		resp, err := a.DeliverChunk(ctx, req)
		if code == 200 {
			require.NoError(t, err)
			continue
		}
		require.ErrorAs(t, err, new(*TransactionError))
		assert.Equal(t, code, resp.Code)
	}
}

// With no route for NICKNAME, it is refused rather than left unanswered.
func TestNicknameWithoutARouteGets501(t *testing.T) {
	s, peer := sessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
	_ = s
	req := peer.MakeRequest(MethodNICKNAME)
	req.Headers.Set(HeaderUseNickname, `"nobody"`)
	require.NoError(t, peer.WriteChunk(context.Background(), req))
	assert.Equal(t, 501, peerRead(t, peer).Code)
}

// Bodies of relay-sized chunks come from pooled buffers that the session
// takes back once they are written where they go: messages sent at once,
// interleaved in 3, 8 and 16 KiB chunks, in memory and through a
// MessageWriter, must arrive byte for byte.
func TestPooledBodiesKeepEveryMessageWhole(t *testing.T) {
	leakcheck.Check(t)
	for _, chunkSize := range []int{3000, 8 << 10, 16 << 10} {
		t.Run(fmt.Sprint(chunkSize), func(t *testing.T) {
			sendInterleavedAndCompare(t, chunkSize, 8, 200<<10, 100<<10, rand.New(rand.NewPCG(uint64(chunkSize), 7)))
		})
	}
}

// sendInterleavedAndCompare sends count messages of size to size+spread
// random bytes at once, in chunks of chunkSize, half kept in memory and
// half through a MessageWriter, and checks that each arrives whole and
// unchanged.
func sendInterleavedAndCompare(t *testing.T, chunkSize, count, size, spread int, rng *rand.Rand) {
	t.Helper()
	var mu sync.Mutex
	written := map[string]*bytes.Buffer{}
	a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: chunkSize}},
		SessionConfig{MessageConfig: MessageConfig{MessageWriter: func(_ *MSRPSession, m *IncomingMessage) io.Writer {
			if m.ContentType == "text/plain" {
				return nil // in memory
			}
			mu.Lock()
			defer mu.Unlock()
			written[m.MessageID] = &bytes.Buffer{}
			return written[m.MessageID]
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bodies := map[string][]byte{}
	var wg sync.WaitGroup
	for i := range count {
		body := prRandom(rng, size+rng.IntN(spread))
		id := fmt.Sprintf("msg-%d", i)
		bodies[id] = body
		ct := []string{"text/plain", "application/octet-stream"}[i%2]
		wg.Go(func() { assert.NoError(t, a.Send(ctx, ct, body, MessageOptions{MessageID: id})) })
	}
	for range bodies {
		m, err := b.Receive(ctx)
		require.NoError(t, err)
		require.NoError(t, m.Err)
		got := m.Data
		if m.ContentType != "text/plain" {
			mu.Lock()
			got = written[m.MessageID].Bytes()
			mu.Unlock()
		}
		require.True(t, bytes.Equal(bodies[m.MessageID], got), "message %s arrived changed", m.MessageID)
	}
	wg.Wait()
}
