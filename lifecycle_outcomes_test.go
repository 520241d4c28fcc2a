package msrp

// Outcomes that were lost, never delivered, or reported wrongly before a
// review of the lifecycle work (each test failed on 6818867).

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// DeliverChunk of a response returns at once (a response gets no response).
// Before, it was settled with no outcome, and DeliverChunk blocked for good,
// past its ctx.
func TestSessionLifecycleDeliverChunkOfAResponseHonoursCtx(t *testing.T) {
	s, peer := sessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
	go drain(peer)
	req := textSend(peer, "a request of the peer's")
	resp, err := NewResponse(req, 200, "")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() {
		_, err := s.DeliverChunk(ctx, resp)
		returned <- err
	}()
	select {
	case err := <-returned:
		t.Logf("DeliverChunk returned %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("DeliverChunk of a response blocked past its ctx's end (goroutine leaked for good)")
	}
}

// A response gets no response: SendChunk with a callback and DeliverChunk
// refuse one at once, rather than call back on a failure only; without a
// callback it is sent.
func TestSessionLifecycleAResponseHasNoOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		req := textSend(peer, "a request of the peer's")
		resp, err := NewResponse(req, 200, "")
		require.NoError(t, err)
		assert.Error(t, s.SendChunk(resp, func(*Chunk, error) { t.Error("called") }))
		_, err = s.DeliverChunk(context.Background(), resp)
		assert.Error(t, err)
		require.NoError(t, s.SendChunk(resp, nil))
		got := peerRead(t, peer)
		assert.Equal(t, req.TransactionID, got.TransactionID)
		assert.Equal(t, 200, got.Code)
	})
}

// failWriteConn holds each write until fail is closed, then fails it. Its
// Close reaches the connection only a moment later, so that the session's
// writer (not its reader) is the first to see the failure, as happens when
// a write is reset while the reader is busy.
type failWriteConn struct {
	net.Conn
	fail chan struct{}
}

func (c *failWriteConn) Write(b []byte) (int, error) {
	<-c.fail
	return 0, errors.New("connection reset by peer")
}

func (c *failWriteConn) Close() error {
	go func() {
		time.Sleep(time.Millisecond)
		c.Conn.Close()
	}()
	return nil
}

// Shutdown returns why the session ended when that end failed the request
// it was flushing. Before, the writer took the request off the books before
// the end counted what was lost, and Shutdown returned nil.
func TestSessionLifecycleShutdownReportsAFlushThatFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fc *failWriteConn
		s, peer := pipeSessionWith(t, SessionConfig{KeepaliveInterval: -1}, func(c net.Conn) net.Conn {
			fc = &failWriteConn{Conn: c, fail: make(chan struct{})}
			return fc
		})
		go drain(peer)
		outcome := make(chan error, 1)
		require.NoError(t, s.SendChunk(textSend(s.Transport(), "flush me"), func(_ *Chunk, err error) { outcome <- err }))
		synctest.Wait() // the writer is inside the write
		shutdown := make(chan error, 1)
		go func() { shutdown <- s.Shutdown(context.Background()) }()
		synctest.Wait() // Shutdown waits for the flush
		close(fc.fail)
		err := <-shutdown
		require.Error(t, <-outcome, "the request failed")
		assert.Error(t, err, "Shutdown says nothing was lost, yet the request it flushed failed")
		<-s.Done()
	})
}

// The same with a response owed to the peer whose write fails.
func TestSessionLifecycleShutdownReportsAResponseThatFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fc *failWriteConn
		s, peer := pipeSessionWith(t, SessionConfig{KeepaliveInterval: -1}, func(c net.Conn) net.Conn {
			fc = &failWriteConn{Conn: c, fail: make(chan struct{})}
			return fc
		})
		require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "answer me")))
		synctest.Wait() // the writer is inside the write of the 200
		go io.Copy(io.Discard, peer.netConn())
		shutdown := make(chan error, 1)
		go func() { shutdown <- s.Shutdown(context.Background()) }()
		synctest.Wait()
		close(fc.fail)
		assert.Error(t, <-shutdown, "Shutdown says nothing was lost, yet the response owed was never written")
		<-s.Done()
	})
}

// Shutdown from a callback, while the peer keeps sending, still sees the
// answer to our request behind the peer's requests: while Shutdown waits,
// the reader reads further ahead of the callbacks (4096, not 256). Before,
// the reader stopped at 256, the answer stayed unread, and the request
// failed with 408 after 30 s although the peer had answered it.
func TestSessionLifecycleShutdownFromACallbackWhileThePeerSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type result struct {
			err  error
			took time.Duration
		}
		shutdown := make(chan result, 1)
		var once atomic.Bool
		s, peer := pipeSessionAndPeer(t, SessionConfig{
			KeepaliveInterval: -1,
			OnIncoming: func(s *MSRPSession, c *Chunk) {
				if once.CompareAndSwap(false, true) {
					start := time.Now()
					err := s.Shutdown(context.Background())
					shutdown <- result{err, time.Since(start)}
				}
			},
		})
		outcome := make(chan error, 1)
		require.NoError(t, s.SendChunk(textSend(s.Transport(), "ours"), func(_ *Chunk, err error) { outcome <- err }))
		ours := peerRead(t, peer)
		go drain(peer)
		go func() {
			for range 300 {
				if peer.WriteChunk(context.Background(), textSend(peer, "chatter")) != nil {
					return
				}
			}
			peer.WriteResponse(context.Background(), ours, 200, "")
		}()
		r := <-shutdown
		assert.NoError(t, r.err)
		assert.Less(t, r.took, time.Second, "Shutdown waited for an answer the peer had sent")
		assert.NoError(t, <-outcome, "the peer answered 200")
	})
}

// What the end fails, it fails in the order it was sent, whether it was
// still queued or already awaiting its response. Before, those awaiting a
// response failed in map order.
func TestSessionLifecycleFailuresComeInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		go drain(peer) // reads, answers nothing
		var got []int
		send := func(i int) {
			require.NoError(t, s.SendChunk(textSend(s.Transport(), "x"), func(*Chunk, error) { got = append(got, i) }))
		}
		for i := range 20 {
			send(i)
		}
		synctest.Wait() // all written, awaiting responses
		for i := 20; i < 30; i++ {
			send(i) // some of these still queued when Close comes
		}
		s.Close()
		<-s.Done()
		want := make([]int, 30)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, got)
	})
}

// A keepalive is not sent, and cannot time out, while the reader holds the
// peer back for a busy callback: the peer is there, sending. Before, the
// keepalive's answer waited unread behind the peer's requests, and after 90
// s the session ended with "keepalive got no response".
func TestSessionLifecycleNoKeepaliveWhileTheReaderWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s, peer := pipeSessionAndPeer(t, SessionConfig{OnIncoming: func(*MSRPSession, *Chunk) { <-release }})
		go drain(peer)
		go func() {
			for range 300 {
				if peer.WriteChunk(context.Background(), textSend(peer, "chatter")) != nil {
					return
				}
			}
		}()
		time.Sleep(10 * DefaultKeepaliveInterval)
		assert.Equal(t, StateConnected, s.State())
		close(release)
	})
}

// A peer that hangs up cleanly while the session's own keepalive is on its
// way leaves Err nil: the application lost nothing. Before, the keepalive
// counted as lost work and Err was ErrPeerClosed.
func TestSessionErrNilWhenOnlyTheKeepaliveWasPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{})
		time.Sleep(DefaultKeepaliveInterval + time.Second)
		c, err := peer.ReadChunk(context.Background()) // the keepalive, left unanswered
		require.NoError(t, err)
		require.Equal(t, MethodSEND, c.Method)
		require.Empty(t, c.Data)
		peer.Close()
		<-s.Done()
		assert.NoError(t, s.Err(), "only the session's own keepalive was pending")
	})
}

// A clean close with nothing pending leaves Err nil.
func TestSessionErrNilOnACleanCloseWithNothingPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		resp := peerSendExpect(t, peer, textSend(peer, "hi"))
		require.Equal(t, 200, resp.Code)
		peer.Close()
		<-s.Done()
		assert.NoError(t, s.Err())
	})
}

// Shutdown does not wait for the session's own keepalive, which nobody
// asked for, and Err stays nil. Before, the flush waited for its response
// for a whole ResponseTimeout, the 408 ended the session with "keepalive
// got no response", and that became Err.
func TestSessionShutdownDoesNotWaitForTheKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: time.Second, ResponseTimeout: 30 * time.Second})
		got := make(chan *Chunk, 16)
		go func() { // the peer reads but answers nothing
			for {
				c, err := peer.ReadChunk(context.Background())
				if err != nil {
					close(got)
					return
				}
				got <- c
			}
		}()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		ka := <-got
		require.Equal(t, MethodSEND, ka.Method)
		require.Empty(t, ka.Data, "the keepalive is on the wire")

		start := time.Now()
		err := s.Shutdown(context.Background())
		took := time.Since(start)
		assert.NoError(t, err)
		<-s.Done()
		assert.NoError(t, s.Err(), "Err after a Shutdown that lost nothing")
		assert.Less(t, took, 5*time.Second, "Shutdown waited for the session's own keepalive")
	})
}
