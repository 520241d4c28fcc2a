package msrp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/pipenet"
)

// benchChunk builds a SEND carrying size bytes of body; size 0 gives the
// small text SEND of a chat message (about 200 bytes on the wire).
func benchChunk(size int) *Chunk {
	body := []byte("Hi Bob, are you there?")
	total := len(body)
	if size > 0 {
		body = bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		total = size
	}
	return &Chunk{
		TransactionID: "f3a2b9c81d0e4a57b6c2", Method: "SEND", Data: body, ContFlag: FlagEnd,
		Headers: Header{
			{HeaderToPath, "msrp://127.0.0.1:2855/8c2a4f1b9d3e;tcp"},
			{HeaderFromPath, "msrp://127.0.0.1:40123/a1b2c3d4e5f6;tcp"},
			{HeaderMessageID, "6a080543fe1a5c50"},
			{HeaderByteRange, fmt.Sprintf("1-%d/%d", total, total)},
			{HeaderContentType, "text/plain"},
		},
	}
}

// benchWire returns benchChunk(size) in wire form.
func benchWire(b *testing.B, size int) []byte {
	raw, err := benchChunk(size).Encode(nil)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

var benchSizes = []struct {
	name string
	size int
}{
	{"small", 0},
	{"2KiB", 2 << 10},
	{"64KiB", 64 << 10},
	{"4MiB", 4<<20 - 512}, // under the default 4 MiB cap with its headers
}

// BenchmarkParse feeds whole chunks to one Parser, as a reader would after a
// large read.
func BenchmarkParse(b *testing.B) {
	for _, bs := range benchSizes {
		raw := benchWire(b, bs.size)
		b.Run(bs.name, func(b *testing.B) {
			var p Parser
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				c, n, err := p.Feed(raw)
				if c == nil || err != nil || n != len(raw) {
					b.Fatal("no chunk", err)
				}
			}
		})
	}
}

// BenchmarkParseReads feeds chunks in 32 KiB pieces, the size of the
// transport's buffered reader, so that large bodies span many Feed calls.
func BenchmarkParseReads(b *testing.B) {
	for _, bs := range benchSizes[2:] {
		raw := benchWire(b, bs.size)
		b.Run(bs.name, func(b *testing.B) {
			var p Parser
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var got *Chunk
				for rest := raw; len(rest) > 0; {
					c, n, err := p.Feed(rest[:min(len(rest), 32<<10)])
					if err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
					if c != nil {
						got = c
					}
				}
				if got == nil {
					b.Fatal("no chunk")
				}
			}
		})
	}
}

// BenchmarkCopyBaseline is the floor a parser that hands out owned bodies
// cannot beat: allocate a body-sized buffer and copy the bytes into it once.
func BenchmarkCopyBaseline(b *testing.B) {
	for _, bs := range benchSizes {
		raw := benchWire(b, bs.size)
		b.Run(bs.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				dst := make([]byte, len(raw))
				copy(dst, raw)
				if dst[0] != 'M' {
					b.Fatal("copy")
				}
			}
		})
	}
}

// BenchmarkEncode writes chunks into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, bs := range benchSizes {
		c := benchChunk(bs.size)
		b.Run(bs.name, func(b *testing.B) {
			buf, err := c.Encode(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, err = c.Encode(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseURI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseURI("msrps://relay.example.com:2855/hjdhfsesdf;tcp"); err != nil {
			b.Fatal(err)
		}
	}
}

// connPair returns the two ends of a loopback TCP connection, or of a TLS
// connection over one.
func connPair(b *testing.B, useTLS bool) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server := <-accepted
	if !useTLS {
		return client, server
	}
	serverCfg, clientCfg := tlsConfigs("127.0.0.1")
	clientCfg.ServerName = "127.0.0.1"
	tc, ts := tls.Client(client, clientCfg), tls.Server(server, serverCfg)
	errs := make(chan error, 1)
	go func() { errs <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return tc, ts
}

// BenchmarkTransferRatio sends 64 KiB SEND chunks one way, in rounds that
// alternate raw net.Conn writes of the encoded bytes (read into one reused
// buffer: the baseline) with MSRPTransport.WriteChunk/ReadChunk of the same
// chunks, and reports both throughputs and their ratio from the same run.
// In the "release" variants the reader hands each body back with
// ReleaseChunk, as a consumer that streams bodies onward does.
func BenchmarkTransferRatio(b *testing.B) {
	const perRound = 32
	for _, mode := range []struct {
		name            string
		useTLS, release bool
	}{{"tcp", false, false}, {"tcp-release", false, true}, {"tls", true, false}, {"tls-release", true, true}} {
		useTLS := mode.useTLS
		b.Run(mode.name, func(b *testing.B) {
			rawW, rawR := connPair(b, useTLS)
			defer rawW.Close()
			defer rawR.Close()
			mw, mr := connPair(b, useTLS)
			local := URI{Host: "127.0.0.1", Port: 1, SessionID: "sender", Transport: "tcp"}
			remote := URI{Host: "127.0.0.1", Port: 2, SessionID: "receiver", Transport: "tcp"}
			sender, receiver := NewMSRPTransport(mw, local), NewMSRPTransport(mr, remote)
			defer sender.Close()
			defer receiver.Close()
			sender.SetRemotePath([]URI{remote})

			chunk := sender.MakeSendRequest("", bytes.Repeat([]byte("0123456789abcdef"), 4096), 1, Unknown)
			chunk.Headers.Set(HeaderContentType, "application/octet-stream")
			wire, err := chunk.Encode(nil)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			ctx := context.Background()
			var rawTime, msrpTime time.Duration
			b.SetBytes(int64(2 * perRound * len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				go func() {
					for range perRound {
						rawW.Write(wire)
					}
				}()
				for got := 0; got < perRound*len(wire); {
					n, err := rawR.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
				rawTime += time.Since(start)

				start = time.Now()
				go func() {
					for range perRound {
						sender.WriteChunk(ctx, chunk)
					}
				}()
				for range perRound {
					c, err := receiver.ReadChunk(ctx)
					if err != nil || len(c.Data) != len(chunk.Data) {
						b.Fatal("bad chunk", err)
					}
					if mode.release {
						receiver.ReleaseChunk(c)
					}
				}
				msrpTime += time.Since(start)
			}
			bytesEach := float64(b.N) * perRound * float64(len(wire))
			b.ReportMetric(bytesEach/rawTime.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(bytesEach/msrpTime.Seconds()/1e6, "msrp-MB/s")
			b.ReportMetric(rawTime.Seconds()/msrpTime.Seconds(), "msrp/raw")
		})
	}
}

// BenchmarkLogger compares logging a chunk with no logger, with a logger
// whose handler is off for its level, and with one that is on.
func BenchmarkLogger(b *testing.B) {
	c := benchChunk(0)
	off := &Logger{Slog: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	on := &Logger{Slog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, bc := range []struct {
		name string
		l    *Logger
	}{{"nil", nil}, {"disabled", off}, {"enabled", on}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.l.sentChunk(c, nil)
			}
		})
	}
}

// BenchmarkServerBind measures sessions bound per second through one
// MSRPServer over loopback TCP: Prepare, connect, binding SEND, 200, and
// Complete, with several sessions binding at once.
func BenchmarkServerBind(b *testing.B) {
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			acc := srv.Acceptor(ServerAcceptorConfig{})
			local, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
			if err != nil {
				b.Fatal(err)
			}
			peerURI := newPeerURI()
			done := completeLater(ctx, acc, []URI{peerURI})
			conn, err := net.Dial("tcp", local[0].HostPort())
			if err != nil {
				b.Fatal(err)
			}
			p := NewMSRPTransport(conn, peerURI)
			if err := p.Bind(ctx, local); err != nil {
				b.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				b.Fatal(r.err)
			}
			r.t.Close()
			p.Close()
			acc.Cleanup()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "binds/s")
}

// BenchmarkIdleSessions binds many sessions through one MSRPServer and holds
// them idle, then reports the Go heap they take per session, both ends
// together (server transport and peer transport). Over TCP the count is
// kept within this machine's limit of open files; over in-memory pipes it
// is 10,000. Kernel socket buffers are not Go memory and are not counted.
func BenchmarkIdleSessions(b *testing.B) {
	for _, bc := range []struct {
		name     string
		sessions int
		pipes    bool
	}{{"pipes-10000", 10000, true}, {"tcp-4000", 4000, false}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				perSession, goroutines := holdIdleSessions(b, bc.sessions, bc.pipes)
				b.ReportMetric(perSession, "B/session")
				b.ReportMetric(goroutines, "goroutines/session")
			}
		})
	}
}

// holdIdleSessions binds n sessions, measures, and closes them. It returns
// the heap bytes and goroutines added per bound, idle session.
func holdIdleSessions(tb testing.TB, n int, pipes bool) (float64, float64) {
	ctx := context.Background()
	cfg := ConnectConfig{BindTimeout: time.Minute}
	dial := tcpDial
	if pipes {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2855})
		cfg.Listen = func(context.Context, string, string) (net.Listener, error) { return ln, nil }
		dial = ln.Dial
	}
	srv := &MSRPServer{ConnectConfig: cfg}
	defer srv.Close()
	// Start the listener before measuring.
	if _, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1"}); err != nil {
		tb.Fatal(err)
	}
	baseHeap, baseG := heapInUse(), runtime.NumGoroutine()

	ends := make([]*MSRPTransport, 0, 2*n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			acc := srv.Acceptor(ServerAcceptorConfig{})
			local, err := acc.Prepare(ctx, URI{Host: "127.0.0.1"})
			if err != nil {
				tb.Error(err)
				return
			}
			peerURI := newPeerURI()
			done := completeLater(ctx, acc, []URI{peerURI})
			conn, err := dial(ctx, "tcp", local[0].HostPort())
			if err != nil {
				tb.Error(err)
				return
			}
			p := NewMSRPTransport(conn, peerURI)
			errs := make(chan error, 1)
			go func() { errs <- p.Bind(ctx, local) }()
			r := <-done
			if err := <-errs; err != nil || r.err != nil {
				tb.Error(err, r.err)
				return
			}
			mu.Lock()
			ends = append(ends, p, r.t)
			mu.Unlock()
		})
	}
	wg.Wait()
	perSession := float64(heapInUse()-baseHeap) / float64(n)
	goroutines := float64(runtime.NumGoroutine()-baseG) / float64(n)
	for _, t := range ends {
		t.Close()
	}
	return perSession, goroutines
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkSessionDeliver sends 100-byte text messages with DeliverChunk
// from 64 goroutines at once, each waiting for its 200 OK, and reports
// messages per second. The raw variant does the same exchange of bytes over
// a bare TCP connection: each request is the encoded SEND, each answer the
// encoded 200, with fixed lengths and no parsing.
func BenchmarkSessionDeliver(b *testing.B) {
	const workers = 64
	body := bytes.Repeat([]byte("m"), 100)
	b.Run("msrp", func(b *testing.B) {
		ta, tb := benchTransportPair(b)
		a := NewMSRPSession(ta, SessionConfig{KeepaliveInterval: -1})
		peer := NewMSRPSession(tb, SessionConfig{KeepaliveInterval: -1})
		defer a.Close()
		defer peer.Close()
		ctx := context.Background()
		go func() { // the peer takes each message, as an application would
			for m, _ := peer.Receive(ctx); m != nil; m, _ = peer.Receive(ctx) {
			}
		}()
		b.ReportAllocs()
		b.SetParallelism(workers / max(1, runtime.GOMAXPROCS(0)))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := ta.MakeSendRequest("", body, 1, 0)
				c.Headers.Set(HeaderContentType, "text/plain")
				if _, err := a.DeliverChunk(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("raw", func(b *testing.B) {
		client, server := connPair(b, false)
		defer client.Close()
		defer server.Close()
		tr := NewMSRPTransport(nil, URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"})
		tr.SetRemotePath([]URI{{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}})
		req := tr.MakeSendRequest("", body, 1, 0)
		req.Headers.Set(HeaderContentType, "text/plain")
		reqWire, _ := req.Encode(nil)
		resp, _ := NewResponse(req, 200, "")
		respWire, _ := resp.Encode(nil)
		go func() { // the peer: read a request, write an answer
			buf := make([]byte, len(reqWire))
			for {
				if _, err := io.ReadFull(server, buf); err != nil {
					return
				}
				if _, err := server.Write(respWire); err != nil {
					return
				}
			}
		}()
		// Answers come back in order: each goes to the oldest waiter.
		var mu sync.Mutex
		var waiters []chan struct{}
		go func() {
			buf := make([]byte, len(respWire))
			for {
				if _, err := io.ReadFull(client, buf); err != nil {
					return
				}
				mu.Lock()
				w := waiters[0]
				waiters = waiters[1:]
				mu.Unlock()
				close(w)
			}
		}()
		b.ReportAllocs()
		b.SetParallelism(workers / max(1, runtime.GOMAXPROCS(0)))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := make(chan struct{})
				mu.Lock()
				waiters = append(waiters, w)
				_, err := client.Write(reqWire)
				mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
				<-w
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

func benchTransportPair(b *testing.B) (*MSRPTransport, *MSRPTransport) {
	ca, cb := connPair(b, false)
	aURI := URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	bURI := URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
	ta, tb := NewMSRPTransport(ca, aURI), NewMSRPTransport(cb, bURI)
	ta.SetRemotePath([]URI{bURI})
	tb.SetRemotePath([]URI{aURI})
	return ta, tb
}

// BenchmarkSessionStream streams one 1 GiB message through a session to an
// io.Writer at the far end, beside raw TCP writes of the same number of
// bytes read into one buffer, and reports both throughputs, their ratio,
// and the peak growth of the heap (both ends live in this process) while
// the message flows.
func BenchmarkSessionStream(b *testing.B) {
	const size = 1 << 30
	for _, bc := range []struct {
		name      string
		chunkSize int
	}{{"direct-default-64KiB", 0}, {"relay-sized-8KiB", DefaultChunkSize}} {
		chunkSize := bc.chunkSize
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var msrpTime, rawTime time.Duration
			var peak uint64
			for b.Loop() {
				rawTime += rawTransfer(b, size)
				d, p := sessionTransfer(b, size, chunkSize)
				msrpTime += d
				peak = max(peak, p)
			}
			b.ReportMetric(float64(b.N)*size/rawTime.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(float64(b.N)*size/msrpTime.Seconds()/1e6, "msrp-MB/s")
			b.ReportMetric(rawTime.Seconds()/msrpTime.Seconds(), "msrp/raw")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

func rawTransfer(b *testing.B, size int64) time.Duration {
	w, r := connPair(b, false)
	defer w.Close()
	defer r.Close()
	src := make([]byte, 64<<10)
	start := time.Now()
	go func() {
		for sent := int64(0); sent < size; sent += int64(len(src)) {
			w.Write(src)
		}
	}()
	if _, err := io.CopyBuffer(io.Discard, io.LimitReader(r, size), make([]byte, 64<<10)); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func sessionTransfer(b *testing.B, size int64, chunkSize int) (time.Duration, uint64) {
	ta, tb := benchTransportPair(b)
	done := make(chan *IncomingMessage, 1)
	a := NewMSRPSession(ta, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: chunkSize}})
	peer := NewMSRPSession(tb, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{
		OnMessage:     func(_ *MSRPSession, m *IncomingMessage) { done <- m },
		MessageWriter: func(*MSRPSession, *IncomingMessage) io.Writer { return io.Discard },
	}})
	defer a.Close()
	defer peer.Close()
	base := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample the heap while the message flows
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
		}
	}()
	start := time.Now()
	m, err := a.SendMessage(io.LimitReader(zeroReader{}, size), size, "application/octet-stream", MessageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := <-done; got.Err != nil {
		b.Fatal(got.Err)
	}
	d := time.Since(start)
	close(stop)
	<-sampled
	return d, peak.Load()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkReassemblyOutOfOrder holds n one-byte fragments beyond a gap, in
// the worst order (each after the last held), then fills the gap: the time
// per fragment stays flat as n grows (O(log n) each), and the heap holds
// what the limit allows. Before, each fragment cost a scan of those held:
// 32,000 took 2 s.
func BenchmarkReassemblyOutOfOrder(b *testing.B) {
	for _, n := range []int{25000, 50000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			frags, want := oneByteFragments(n, true)
			var in incomingMessages
			in.init(&MessageConfig{MaxMessageSize: 64 << 20}, true)
			var peak uint64
			b.ReportAllocs()
			for b.Loop() {
				base := heapInUse()
				im := &inMessage{}
				got, err := placeAll(&in, im, frags[:n-1])
				if err != nil || len(got) != 0 {
					b.Fatal(err, len(got))
				}
				peak = max(peak, heapInUse()-min(base, heapInUse()))
				if got, err = placeAll(&in, im, frags[n-1:]); err != nil || len(got) != len(want) {
					b.Fatal(err, len(got))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/fragment")
			b.ReportMetric(float64(peak)/float64(n), "heap-B/fragment")
		})
	}
}
