package msrp

// One test per lifecycle defect that the review of eafef61 found (issue
// "Session lifecycle you can trust"), each built to fail on that commit: the
// interleaving it needs is forced, not hoped for. The randomized run over
// all of them is in chaos_test.go.

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/pipenet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gateConn holds every write until the test opens its gate, so that a test
// can act while the session's writer is inside a write. Closing it fails a
// held write, as closing a real connection does.
type gateConn struct {
	net.Conn
	open      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newGateConn(c net.Conn) *gateConn {
	return &gateConn{Conn: c, open: make(chan struct{}), closed: make(chan struct{})}
}

func (g *gateConn) Write(b []byte) (int, error) {
	select {
	case <-g.open:
		return g.Conn.Write(b)
	case <-g.closed:
		return 0, net.ErrClosed
	}
}

func (g *gateConn) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// pipeSessionWith is pipeSessionAndPeer with the session's side of the
// pipe wrapped.
func pipeSessionWith(t *testing.T, cfg SessionConfig, wrap func(net.Conn) net.Conn) (*MSRPSession, *MSRPTransport) {
	a, b := net.Pipe()
	aURI := URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	bURI := URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
	ta, peer := NewMSRPTransport(wrap(a), aURI), NewMSRPTransport(b, bURI)
	ta.SetRemotePath([]URI{bURI})
	peer.SetRemotePath([]URI{aURI})
	s := NewMSRPSession(ta, cfg)
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// gatedSession is a session whose writes wait for the gate.
func gatedSession(t *testing.T, cfg SessionConfig) (*MSRPSession, *MSRPTransport, *gateConn) {
	var g *gateConn
	s, peer := pipeSessionWith(t, cfg, func(c net.Conn) net.Conn { g = newGateConn(c); return g })
	return s, peer, g
}

// Finding 1: a request whose write is under way when the session ends got
// its outcome twice: once from the end, once from the failed write. The
// second went to a channel with room for one, which nobody read again, and
// the writer blocked on it for good: Close never returned. Here each way of
// ending the session during the write delivers the outcome exactly once.
func TestSessionLifecycleOutcomeOnceWhenTheEndInterruptsAWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(s *MSRPSession, peer *MSRPTransport, gate *gateConn)
	}{
		{"Close", func(s *MSRPSession, _ *MSRPTransport, _ *gateConn) { s.Close() }},
		{"Shutdown whose ctx ends", func(s *MSRPSession, _ *MSRPTransport, _ *gateConn) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}},
		{"the peer hangs up, and the write fails", func(_ *MSRPSession, peer *MSRPTransport, gate *gateConn) {
			peer.Close()
			synctest.Wait() // the reader has seen the end
			close(gate.open)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, peer, gate := gatedSession(t, SessionConfig{KeepaliveInterval: -1})
				var calls atomic.Int32
				outcome := make(chan error, 1) // room for one outcome, as DeliverChunk has
				require.NoError(t, s.SendChunk(textSend(s.Transport(), "x"), func(_ *Chunk, err error) {
					calls.Add(1)
					outcome <- err
				}))
				synctest.Wait() // the writer is inside the write
				tc.end(s, peer, gate)
				<-s.Done()
				assert.EqualValues(t, 1, calls.Load())
				assert.ErrorIs(t, <-outcome, ErrSessionClosed)
			})
		})
	}
}

// Finding 2: Close from OnIncoming waited for the reader that ran the
// callback, and a callback run by the session's end re-entered its
// sync.Once. Here Close and Shutdown work from inside every kind of
// callback, and the application's own Close afterwards returns too.
func TestSessionLifecycleCloseFromCallbacks(t *testing.T) {
	type setup struct {
		cfg    SessionConfig
		closed chan struct{} // closed by the callback once its Close returned
	}
	closeIn := func(su *setup, s *MSRPSession) {
		s.Close()
		close(su.closed)
	}
	for _, tc := range []struct {
		name  string
		cfg   func(su *setup)
		drive func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport)
	}{
		{"OnIncoming", func(su *setup) {
			su.cfg.OnIncoming = func(s *MSRPSession, _ *Chunk) { closeIn(su, s) }
		}, func(t *testing.T, _ *setup, _ *MSRPSession, peer *MSRPTransport) {
			go drain(peer)
			require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "bye")))
		}},
		{"OnMessage", func(su *setup) {
			su.cfg.OnMessage = func(s *MSRPSession, _ *IncomingMessage) { closeIn(su, s) }
		}, func(t *testing.T, _ *setup, _ *MSRPSession, peer *MSRPTransport) {
			go drain(peer)
			require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "bye")))
		}},
		{"MessageWriter", func(su *setup) {
			su.cfg.OnMessage = func(*MSRPSession, *IncomingMessage) {}
			su.cfg.MessageWriter = func(s *MSRPSession, _ *IncomingMessage) io.Writer {
				closeIn(su, s)
				return io.Discard
			}
		}, func(t *testing.T, _ *setup, _ *MSRPSession, peer *MSRPTransport) {
			go drain(peer)
			require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "bye")))
		}},
		{"the response to our request", nil, func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport) {
			require.NoError(t, s.SendChunk(textSend(s.Transport(), "hi"), func(*Chunk, error) { closeIn(su, s) }))
			req := peerRead(t, peer)
			go drain(peer)
			require.NoError(t, peer.WriteResponse(context.Background(), req, 200, ""))
		}},
		{"the failure the peer's leaving causes", nil, func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport) {
			require.NoError(t, s.SendChunk(textSend(s.Transport(), "hi"), func(*Chunk, error) { closeIn(su, s) }))
			peerRead(t, peer)
			peer.Close()
		}},
		{"the failure Close causes", nil, func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport) {
			require.NoError(t, s.SendChunk(textSend(s.Transport(), "hi"), func(*Chunk, error) { closeIn(su, s) }))
			peerRead(t, peer)
			go drain(peer)
			s.Close()
		}},
		{"OnProgress", nil, func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport) {
			go drain(peer)
			_, err := s.SendMessage(strings.NewReader("hi"), 2, "text/plain", MessageOptions{
				OnProgress: func(int64, int64) { closeIn(su, s) },
			})
			require.NoError(t, err)
		}},
		{"Shutdown from OnIncoming, with a request of ours awaiting its response", func(su *setup) {
			su.cfg.OnIncoming = func(s *MSRPSession, _ *Chunk) {
				s.Shutdown(context.Background())
				close(su.closed)
			}
		}, func(t *testing.T, su *setup, s *MSRPSession, peer *MSRPTransport) {
			answered := make(chan error, 1)
			require.NoError(t, s.SendChunk(textSend(s.Transport(), "hi"), func(_ *Chunk, err error) { answered <- err }))
			ours := peerRead(t, peer)
			require.NoError(t, peer.WriteChunk(context.Background(), textSend(peer, "please stop")))
			assert.Equal(t, 200, peerRead(t, peer).Code, "the request before Shutdown is answered")
			require.NoError(t, peer.WriteResponse(context.Background(), ours, 200, ""))
			go drain(peer)
			<-su.closed
			assert.NoError(t, <-answered)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				su := &setup{cfg: SessionConfig{KeepaliveInterval: -1}, closed: make(chan struct{})}
				if tc.cfg != nil {
					tc.cfg(su)
				}
				s, peer := pipeSessionAndPeer(t, su.cfg)
				tc.drive(t, su, s, peer)
				<-su.closed
				require.NoError(t, s.Close(), "the application's own Close after the callback's")
				<-s.Done()
				assert.Equal(t, StateDone, s.State())
			})
		})
	}
}

// Finding 3: once its queue was empty, Shutdown's writer stopped, so the
// responses to requests that arrived meanwhile were never written, and
// Shutdown waited for the peer, which waited for those responses. It also
// polled every 5 ms. Here the responses go out, the peer then answers, and
// Shutdown returns.
func TestSessionLifecycleShutdownWritesTheResponsesOwed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
		answered := make(chan error, 1)
		require.NoError(t, s.SendChunk(textSend(s.Transport(), "ours"), func(_ *Chunk, err error) { answered <- err }))
		ours := peerRead(t, peer)
		shutdown := make(chan error, 1)
		go func() { shutdown <- s.Shutdown(context.Background()) }()
		synctest.Wait() // Shutdown waits for the response to ours; the queue is empty
		assert.Equal(t, StateFlushing, s.State())

		// The peer asks something first, and answers only once answered.
		theirs := textSend(peer, "a question before I answer")
		require.NoError(t, peer.WriteChunk(context.Background(), theirs))
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		resp, err := peer.ReadChunk(ctx)
		require.NoError(t, err, "the response owed to the peer was written")
		assert.Equal(t, theirs.TransactionID, resp.TransactionID)
		assert.Equal(t, 200, resp.Code)
		require.NoError(t, peer.WriteResponse(context.Background(), ours, 200, ""))
		go drain(peer)
		assert.NoError(t, <-shutdown)
		assert.NoError(t, <-answered)
	})
}

// Finding 4: the goroutine that reads a message's io.Reader was in the wait
// group that Close waited for, so a reader that produced nothing held Close
// (and Shutdown) forever, even after Abort. Here neither waits for it.
func TestSessionLifecycleCloseDoesNotWaitForTheMessageReader(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name  string
		abort bool
		end   func(s *MSRPSession) error
	}{
		{"Close", false, (*MSRPSession).Close},
		{"Close after Abort", true, (*MSRPSession).Close},
		{"Shutdown whose ctx ends", false, func(s *MSRPSession) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return s.Shutdown(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
				go drain(peer)
				pr, pw := io.Pipe()
				defer pw.Close() // the application's reader ends when the application says
				m, err := s.SendMessage(pr, Unknown, "text/plain", MessageOptions{})
				require.NoError(t, err)
				if tc.abort {
					m.Abort()
				}
				synctest.Wait()
				start := time.Now()
				endErr := tc.end(s)
				<-s.Done()
				if !tc.abort {
					assert.ErrorIs(t, m.Wait(context.Background()), ErrSessionClosed)
				}
				if strings.HasPrefix(tc.name, "Shutdown") {
					assert.ErrorIs(t, endErr, context.DeadlineExceeded)
					assert.Equal(t, time.Minute, time.Since(start), "Shutdown waited for the message until ctx ended")
				} else {
					assert.Zero(t, time.Since(start))
				}
				if tc.abort {
					assert.ErrorIs(t, m.Wait(context.Background()), ErrMessageAborted)
				}
			})
		})
	}
}

// Finding 5: SendMessage read a whole chunk from its reader (io.ReadFull)
// even when fewer bytes of the message were left, then one byte more: a
// complete message waited for the reader's end, each streamed chunk waited
// for a byte of the next, and a reader holding more than size bytes was
// read past the end and the message aborted.
func TestSessionLifecycleSendMessageReadsWhatItNeeds(t *testing.T) {
	// The peer's view: each chunk as it arrives, answered 200.
	type arrival struct {
		data string
		flag byte
	}
	answerAll := func(peer *MSRPTransport, arrivals chan<- arrival) {
		for {
			c, err := peer.ReadChunk(context.Background())
			if err != nil {
				close(arrivals)
				return
			}
			if c.IsRequest() {
				arrivals <- arrival{string(c.Data), c.ContFlag}
				peer.WriteResponse(context.Background(), c, 200, "")
			}
		}
	}
	t.Run("a known size is sent without waiting for the reader's end", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
			arrivals := make(chan arrival, 10)
			go answerAll(peer, arrivals)
			pr, pw := io.Pipe()
			defer pw.Close()
			m, err := s.SendMessage(pr, 21, "text/plain", MessageOptions{})
			require.NoError(t, err)
			go pw.Write([]byte("twenty-one bytes here"))
			assert.Equal(t, arrival{"twenty-one bytes here", FlagEnd}, <-arrivals)
			assert.NoError(t, m.Wait(context.Background()), "the pipe is still open")
		})
	})
	t.Run("a streamed chunk goes as soon as it is full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: 8}})
			arrivals := make(chan arrival, 10)
			go answerAll(peer, arrivals)
			pr, pw := io.Pipe()
			m, err := s.SendMessage(pr, Unknown, "text/plain", MessageOptions{})
			require.NoError(t, err)
			go pw.Write([]byte("12345678"))
			assert.Equal(t, arrival{"12345678", FlagContinued}, <-arrivals, "no byte of the next chunk needed")
			go func() {
				pw.Write([]byte("9ab"))
				pw.Close()
			}()
			assert.Equal(t, arrival{"9ab", FlagEnd}, <-arrivals)
			assert.NoError(t, m.Wait(context.Background()))
		})
	})
	t.Run("a reader with more than size bytes is read for size bytes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: 64}})
			arrivals := make(chan arrival, 10)
			go answerAll(peer, arrivals)
			r := bytes.NewReader(bytes.Repeat([]byte("x"), 150))
			m, err := s.SendMessage(r, 100, "text/plain", MessageOptions{})
			require.NoError(t, err)
			require.NoError(t, m.Wait(context.Background()))
			assert.Equal(t, arrival{strings.Repeat("x", 64), FlagContinued}, <-arrivals)
			assert.Equal(t, arrival{strings.Repeat("x", 36), FlagEnd}, <-arrivals)
			assert.Equal(t, 50, r.Len(), "nothing read past the message")
		})
	})
	t.Run("a reader that ends early aborts the message", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1})
			arrivals := make(chan arrival, 10)
			go answerAll(peer, arrivals)
			m, err := s.SendMessage(strings.NewReader(strings.Repeat("y", 60)), 100, "text/plain", MessageOptions{})
			require.NoError(t, err)
			err = m.Wait(context.Background())
			assert.ErrorContains(t, err, "ended after 60 of the 100 bytes")
			assert.Equal(t, FlagAborted, (<-arrivals).flag)
		})
	})
}

// Finding 6: a request with a body that arrived before our binding's 200
// was put back for the next read, and Bind read it back first, for ever:
// one core at 100%, past ctx's deadline, out of Cleanup's reach. Here it is
// kept once, Bind goes on to the 200, and the session answers and delivers
// the request once.
func TestSessionLifecycleBindKeepsAnEarlyRequestOnce(t *testing.T) {
	leakcheck.Check(t)
	active, peer := pipePair(t)
	bound := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bound <- active.Bind(ctx, peer.FullLocalPath())
	}()
	bind := peerRead(t, peer)
	early := textSend(peer, "before your 200")
	require.NoError(t, peer.WriteChunk(context.Background(), early))
	require.NoError(t, peer.WriteResponse(context.Background(), bind, 200, ""))
	select {
	case err := <-bound:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Bind did not get past the early request")
	}
	rec := newRecorder()
	s := NewMSRPSession(active, SessionConfig{OnIncoming: rec.onChunk, KeepaliveInterval: -1})
	defer s.Close()
	resp := peerRead(t, peer)
	assert.Equal(t, early.TransactionID, resp.TransactionID)
	assert.Equal(t, 200, resp.Code)
	probe := peer.MakeSendRequest("", nil, 1, 0)
	require.NoError(t, peer.WriteChunk(context.Background(), probe))
	assert.Equal(t, probe.TransactionID, peerRead(t, peer).TransactionID, "the early request was answered once")
	rec.waitFor(t, "the early request", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) == 2 })
	chunks, _ := rec.snapshot()
	assert.Equal(t, "before your 200", string(chunks[0].Data), "delivered once, before the probe")
	assert.Empty(t, chunks[1].Data)
}

// Finding 6, the other half: Bind and AcceptBinding end when ctx does, or
// when Cleanup is called, whatever the peer sends meanwhile.
func TestSessionLifecycleBindingEndsWithCtxAndCleanup(t *testing.T) {
	leakcheck.Check(t)
	t.Run("Bind, with an early request and no 200", func(t *testing.T) {
		active, peer := pipePair(t)
		go func() {
			if _, err := peer.ReadChunk(context.Background()); err == nil {
				peer.WriteChunk(context.Background(), textSend(peer, "no 200 for you"))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- active.Bind(ctx, peer.FullLocalPath()) }()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(5 * time.Second):
			t.Fatal("Bind outlived its context")
		}
	})
	t.Run("ConnectorDirect.Cleanup during Complete", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		asked := make(chan struct{})
		go func() { // accepts, reads the binding SEND, answers with a request, never a 200
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			tr := NewMSRPTransport(conn, URI{Host: "127.0.0.1", SessionID: "peer", Transport: "tcp"})
			if c, err := tr.ReadChunk(context.Background()); err == nil {
				from, _ := c.FromPath()
				tr.SetRemotePath(from)
				tr.WriteChunk(context.Background(), textSend(tr, "no 200 for you"))
			}
			close(asked)
			io.Copy(io.Discard, conn)
		}()
		c := &ConnectorDirect{}
		_, err = c.Prepare(context.Background(), URI{Host: "127.0.0.1"})
		require.NoError(t, err)
		addr := ln.Addr().(*net.TCPAddr)
		done := make(chan error, 1)
		go func() {
			_, err := c.Complete(context.Background(), []URI{{Host: "127.0.0.1", Port: addr.Port, SessionID: "peer", Transport: "tcp"}})
			done <- err
		}()
		<-asked // Complete is binding, with a request it must keep
		require.NoError(t, c.Cleanup())
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Cleanup did not stop Complete")
		}
	})
}

// Cleanup stops a relay connector at each step: while it waits for the
// relay's answer to AUTH, and while it waits for the peer to bind.
func TestSessionLifecycleRelayCleanupStopsEachStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer bool // the relay answers AUTH, so that Complete is reached
	}{{"Prepare", false}, {"Complete", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
				defer ln.Close()
				f := &fakeRelay{script: func(req *Chunk, _ int) *Chunk {
					if tc.answer && req.Method == MethodAUTH {
						return reply(req, 200, HeaderUsePath, usePath)
					}
					return nil
				}}
				go func() {
					if conn, err := ln.Accept(); err == nil {
						f.serve(conn)
					}
				}()
				a := &AcceptorRelay{Relay: relayFor(2855), ConnectConfig: ConnectConfig{Dial: ln.Dial}}
				done := make(chan error, 1)
				go func() {
					_, err := a.Prepare(context.Background(), URI{Host: "127.0.0.1"})
					if err == nil {
						_, err = a.Complete(context.Background(), []URI{newPeerURI()})
					}
					done <- err
				}()
				synctest.Wait() // waiting for the relay, or for the peer
				start := time.Now()
				require.NoError(t, a.Cleanup())
				assert.ErrorIs(t, <-done, context.Canceled)
				assert.Zero(t, time.Since(start))
			})
		})
	}
}

// Finding 7: chunks the writer had taken but not yet written were neither
// queued nor pending, so MaxPending and the duplicate-transaction check
// missed them: a duplicate replaced the first transaction, whose callback
// was never called. Here both count every chunk until it is settled.
func TestSessionLifecyclePendingCountsChunksBeingWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer, gate := gatedSession(t, SessionConfig{KeepaliveInterval: -1, MaxPending: 2})
		// Failure-Report: no settles a chunk once written: it is never
		// awaiting a response, so only the count of chunks being written
		// holds it.
		noReport := func(text string) *Chunk {
			c := textSend(s.Transport(), text)
			c.Headers.Set(HeaderFailureReport, "no")
			return c
		}
		outcomes := make(chan string, 4)
		record := func(name string) func(*Chunk, error) {
			return func(_ *Chunk, err error) {
				if err == nil {
					outcomes <- name
				}
			}
		}
		first := noReport("x")
		require.NoError(t, s.SendChunk(first, record("first")))
		synctest.Wait() // the writer is inside the write of first
		assert.ErrorContains(t, s.SendChunk(first.Clone(), record("duplicate")), "already pending")
		require.NoError(t, s.SendChunk(noReport("y"), record("second")))
		assert.ErrorIs(t, s.SendChunk(noReport("z"), record("third")), ErrTooManyPending, "one being written, one queued")
		go drain(peer)
		close(gate.open)
		assert.Equal(t, "first", <-outcomes)
		assert.Equal(t, "second", <-outcomes)
		synctest.Wait()
		assert.Empty(t, outcomes, "no other outcome")
	})
}

// Finding 8: the reader started inside NewMSRPSession and could run a
// callback, with a chunk kept from the binding, before the constructor had
// returned the session the callback used (a data race). Callbacks now get
// the session as an argument.
func TestSessionLifecycleCallbacksGetTheirSession(t *testing.T) {
	leakcheck.Check(t)
	active, peer := pipePair(t)
	active.unreadChunks(textSend(peer, "kept from the binding"))
	seen := make(chan *MSRPSession, 1)
	s := NewMSRPSession(active, SessionConfig{
		KeepaliveInterval: -1,
		OnIncoming: func(s *MSRPSession, c *Chunk) {
			assert.Equal(t, StateConnected, s.State()) // usable at once
			seen <- s
		},
	})
	defer s.Close()
	assert.Same(t, s, <-seen)
	assert.Equal(t, 200, peerRead(t, peer).Code)
}

// Finding 9: CheckIncomingSENDChunk read the transport's To-Path after
// releasing its lock, racing with SetRemotePath (the race detector saw it).
func TestSessionLifecyclePathCheckRacesNoPathChange(t *testing.T) {
	a, b := pipePair(t)
	c := textSend(b, "x")
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			a.SetRemotePath(b.FullLocalPath())
		}
	})
	for range 200 {
		assert.NoError(t, a.CheckIncomingSENDChunk(c))
	}
	wg.Wait()
}
