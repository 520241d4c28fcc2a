package msrp

// Bounds of the session under a busy application or a pushy peer; each
// test failed on 6818867, before the fixes a review of the lifecycle work
// found.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every callback counts towards the backlog that stops the reader, OnMessage
// for a message that ends at once included: a peer that sends messages
// refused at their first chunk (413), or empty messages, while OnMessage is
// busy, is held back by TCP. Before, those callbacks did not count, and
// they queued without bound.
func TestSessionLifecycleCallbackBacklogBoundsOnMessage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk func(peer *MSRPTransport, i int) *Chunk
	}{
		{"messages refused at their first chunk", func(peer *MSRPTransport, i int) *Chunk {
			c := peer.MakeSendRequest(fmt.Sprintf("msg%06d", i), []byte("four"), 1, 1<<30)
			c.ContFlag = FlagContinued
			c.Headers.Set(HeaderContentType, "text/plain")
			return c
		}},
		{"empty messages", func(peer *MSRPTransport, i int) *Chunk {
			c := peer.MakeSendRequest(fmt.Sprintf("msg%06d", i), nil, 1, 0)
			c.Headers.Set(HeaderContentType, "text/plain") // a body section, with no bytes
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var messages atomic.Int32
				s, peer := pipeSessionAndPeer(t, SessionConfig{
					KeepaliveInterval: -1,
					MessageConfig: MessageConfig{
						MaxMessageSize: 1 << 10,
						OnMessage: func(*MSRPSession, *IncomingMessage) {
							messages.Add(1)
							<-release // the application is busy
						},
					},
				})
				const n = 3000
				var answered atomic.Int32
				go func() {
					for {
						c, err := peer.ReadChunk(context.Background())
						if err != nil {
							return
						}
						if !c.IsRequest() {
							answered.Add(1)
						}
					}
				}()
				go func() {
					for i := range n {
						if err := peer.WriteChunk(context.Background(), tc.chunk(peer, i)); err != nil {
							t.Logf("peer write %d: %v", i, err)
							return
						}
					}
				}()
				synctest.Wait() // the reader has read all it will while OnMessage is busy
				s.mu.Lock()
				waiting := len(s.callbacks)
				s.mu.Unlock()
				t.Logf("%d requests answered, %d callbacks waiting, OnMessage busy", answered.Load(), waiting)
				assert.LessOrEqual(t, waiting, 2*maxBacklogChunks, "callbacks waiting for the callback goroutine are bounded")
				assert.Less(t, int(answered.Load()), n, "the reader stopped reading once the backlog was full")
				close(release)
				s.Close()
				<-s.Done()
			})
		})
	}
}

// The goroutine that reads a message's io.Reader reads no more once the
// message has ended: a Read under way then is its last. Before, it picked at
// random between handing the piece on and stopping, and often read again.
func TestSessionLifecycleMessageReaderStopsAfterTheMessageEnds(t *testing.T) {
	extra := 0
	const rounds = 30
	for range rounds {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: 4}})
			go drain(peer)
			r := &endedReader{release: make(chan struct{}), done: make(chan struct{})}
			defer close(r.done)
			m, err := s.SendMessage(r, Unknown, "text/plain", MessageOptions{})
			require.NoError(t, err)
			synctest.Wait() // the first Read waits
			m.Abort()
			s.Close()
			require.Error(t, m.Wait(context.Background()))
			close(r.release) // the Read returns, after the message ended
			synctest.Wait()
			if r.calls.Load() > 1 {
				extra++
			}
		})
	}
	assert.Zero(t, extra, "in %d of %d rounds the reader was read again after its message ended", extra, rounds)
}

// endedReader's first Read returns a full chunk once released; any later
// Read blocks until the test ends.
type endedReader struct {
	calls   atomic.Int32
	release chan struct{}
	done    chan struct{}
}

func (r *endedReader) Read(p []byte) (int, error) {
	if r.calls.Add(1) == 1 {
		<-r.release
		return copy(p, "abcd"), nil
	}
	<-r.done
	return 0, io.EOF
}

// The duplicate-transaction check counts every request queued or being
// written, with or without a callback. Before, one sent without a callback
// did not count, and a second chunk with its transaction id went out too.
func TestSessionLifecycleDuplicateCheckCountsFireAndForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer, gate := gatedSession(t, SessionConfig{KeepaliveInterval: -1})
		first := textSend(s.Transport(), "x")
		require.NoError(t, s.SendChunk(first, nil))
		synctest.Wait() // being written
		assert.ErrorContains(t, s.SendChunk(first.Clone(), func(*Chunk, error) {}), "already pending")
		assert.ErrorContains(t, s.SendChunk(first.Clone(), nil), "already pending")
		go drain(peer)
		close(gate.open)
		synctest.Wait()
	})
}

// Shutdown of an idle session with a ctx that has already ended completes
// the flush, which is done at once: nil, every time. Before, it picked at
// random between that and ctx's error.
func TestSessionLifecycleShutdownOfAnIdleSessionIsDeterministic(t *testing.T) {
	results := map[string]int{}
	for range 40 {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
			go drain(peer)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := s.Shutdown(ctx)
			results[fmt.Sprint(err)]++
		})
	}
	assert.Len(t, results, 1, "the same Shutdown returned different results: %v", results)
}

// MaxPending bounds message chunks too: the writer makes no more while
// MaxPending chunks are queued, being written or awaiting a response.
func TestSessionLifecycleMaxPendingBoundsMessageChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{
			KeepaliveInterval: -1,
			MaxPending:        2,
			MessageConfig:     MessageConfig{ChunkSize: 4, Window: 8},
		})
		go drain(peer) // reads, never answers
		_, err := s.SendMessage(strings.NewReader(strings.Repeat("x", 64)), 64, "text/plain", MessageOptions{})
		require.NoError(t, err)
		synctest.Wait()
		s.mu.Lock()
		outstanding, awaiting := s.outstanding, s.onWireLive
		s.mu.Unlock()
		assert.ErrorIs(t, s.SendChunk(textSend(s.Transport(), "y"), nil), ErrTooManyPending)
		assert.LessOrEqual(t, outstanding, 2, "chunks outstanding (%d awaiting a response) with MaxPending 2", awaiting)
	})
}
