package msrp

// Benchmarks with the two ends in two processes, as users run them: the
// test binary runs itself again as the peer (TestMain dispatches on
// MSRP_BENCH_PEER), and every MSRP figure is reported beside a raw
// baseline over the same kind of connection in the same run.
//
//	go test -run '^$' -bench TwoProcess -benchtime 3x .
//
// MSRP_BENCH_PEER_CPUPROFILE=file writes the peer's CPU profile there.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const benchPeerEnv = "MSRP_BENCH_PEER"

// The two ends' URIs: the benchmark's (A) and the peer process's (B). The
// paths are set on both transports, as after a binding.
var (
	benchURIA = URI{Host: "127.0.0.1", Port: 1, SessionID: "aaaa", Transport: "tcp"}
	benchURIB = URI{Host: "127.0.0.1", Port: 2, SessionID: "bbbb", Transport: "tcp"}
)

// peerProcess is the other end of a two-process benchmark.
type peerProcess struct {
	cmd  *exec.Cmd
	conn net.Conn
}

// startPeer runs the test binary as the peer in mode, and returns the
// connection it made to us (TLS when useTLS, the peer being the server).
func startPeer(b *testing.B, mode string, useTLS bool, env ...string) *peerProcess {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cmd := startClients(b, mode, ln.Addr().String(), append(env, "MSRP_BENCH_TLS="+strconv.FormatBool(useTLS))...)
	conn, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		b.Fatal(err)
	}
	if useTLS {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			cmd.Process.Kill()
			b.Fatal(err)
		}
		conn = tc
	}
	return &peerProcess{cmd: cmd, conn: conn}
}

// wait waits for the peer to exit and returns the CPU time it used.
func (p *peerProcess) wait(b *testing.B) time.Duration {
	b.Helper()
	return waitClients(b, p.cmd)
}

// boundTransport is a transport on conn whose paths are set as a binding
// would set them.
func boundTransport(conn net.Conn, local, remote URI) *MSRPTransport {
	t := NewMSRPTransport(conn, local)
	t.SetRemotePath([]URI{remote})
	return t
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run is one measured exchange: its wall time and the CPU of each side.
type run struct {
	wall, ours, peers time.Duration
}

func (r *run) add(o run) { r.wall += o.wall; r.ours += o.ours; r.peers += o.peers }

// BenchmarkTwoProcessBulk sends one message of 256 MiB to a peer process
// that streams it into io.Discard, beside the same bytes written to a bare
// connection; plain TCP and TLS, 64 KiB and 8 KiB chunks. It reports both
// rates, their ratio and the CPU seconds per GiB on each side.
func BenchmarkTwoProcessBulk(b *testing.B) {
	size := int64(256 << 20)
	if n, err := strconv.ParseInt(os.Getenv("MSRP_BENCH_BULK_MIB"), 10, 64); err == nil {
		size = n << 20
	}
	for _, bc := range []struct {
		name      string
		chunkSize int
		useTLS    bool
		peer      string // how the peer takes the chunks
	}{
		{"tcp-64KiB", 64 << 10, false, "msrp-sink"},
		{"tcp-8KiB", 8 << 10, false, "msrp-sink"},
		{"tls-64KiB", 64 << 10, true, "msrp-sink"},
		{"tls-8KiB", 8 << 10, true, "msrp-sink"},
		{"tcp-64KiB-OnIncoming", 64 << 10, false, "msrp-chunks"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var raw, mine run
			for b.Loop() {
				raw.add(rawBulk(b, size, bc.useTLS))
				mine.add(msrpBulk(b, size, bc.chunkSize, bc.useTLS, bc.peer))
			}
			gib := float64(b.N) * float64(size) / (1 << 30)
			b.ReportMetric(float64(b.N)*float64(size)/raw.wall.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(float64(b.N)*float64(size)/mine.wall.Seconds()/1e6, "msrp-MB/s")
			b.ReportMetric(raw.wall.Seconds()/mine.wall.Seconds(), "msrp/raw")
			b.ReportMetric(mine.ours.Seconds()/gib, "send-cpu-s/GiB")
			b.ReportMetric(mine.peers.Seconds()/gib, "recv-cpu-s/GiB")
			b.ReportMetric(raw.ours.Seconds()/gib, "raw-send-cpu-s/GiB")
			b.ReportMetric(raw.peers.Seconds()/gib, "raw-recv-cpu-s/GiB")
		})
	}
}

func rawBulk(b *testing.B, size int64, useTLS bool) run {
	p := startPeer(b, "raw-sink", useTLS)
	defer p.conn.Close()
	buf := make([]byte, 64<<10)
	cpu, start := selfCPU(), time.Now()
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := p.conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	closeWrite(p.conn)
	if _, err := io.ReadFull(p.conn, buf[:1]); err != nil { // the peer has read it all
		b.Fatal(err)
	}
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	r.peers = p.wait(b)
	return r
}

func closeWrite(c net.Conn) {
	switch c := c.(type) {
	case *tls.Conn:
		c.CloseWrite()
	case *net.TCPConn:
		c.CloseWrite()
	}
}

func msrpBulk(b *testing.B, size int64, chunkSize int, useTLS bool, peerMode string) run {
	p := startPeer(b, peerMode, useTLS)
	t := boundTransport(p.conn, benchURIA, benchURIB)
	s := NewMSRPSession(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{ChunkSize: chunkSize}})
	defer s.Close()
	ctx := context.Background()
	cpu, start := selfCPU(), time.Now()
	m, err := s.SendMessage(io.LimitReader(zeroReader{}, size), size, "application/octet-stream", MessageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Wait(ctx); err != nil { // every chunk answered: the peer has it all
		b.Fatal(err)
	}
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	if err := s.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	r.peers = p.wait(b)
	return r
}

// BenchmarkTwoProcessSmall sends 100-byte messages to a peer process that
// answers each with 200: one at a time (round trips), and 64 in flight
// (pipelined), beside a raw exchange of the same bytes: the encoded SEND
// one way, the encoded 200 back.
func BenchmarkTwoProcessSmall(b *testing.B) {
	req := benchSend()
	reqWire, _ := req.Encode(nil)
	resp, _ := NewResponse(req, 200, "")
	respWire, _ := resp.Encode(nil)
	sizes := []string{"MSRP_BENCH_REQ=" + strconv.Itoa(len(reqWire)), "MSRP_BENCH_RESP=" + strconv.Itoa(len(respWire))}
	const n = 20000
	for _, inFlight := range []int{1, 64} {
		name := "round-trips"
		if inFlight > 1 {
			name = fmt.Sprintf("pipelined-%d", inFlight)
		}
		b.Run(name, func(b *testing.B) {
			var raw, mine run
			for b.Loop() {
				raw.add(rawSmall(b, n, inFlight, reqWire, len(respWire), sizes))
				mine.add(msrpSmall(b, n, inFlight))
			}
			msgs := float64(b.N * n)
			b.ReportMetric(msgs/raw.wall.Seconds(), "raw-msgs/s")
			b.ReportMetric(msgs/mine.wall.Seconds(), "msrp-msgs/s")
			b.ReportMetric(raw.wall.Seconds()/mine.wall.Seconds(), "msrp/raw")
			b.ReportMetric(float64(mine.ours.Microseconds())/msgs, "send-cpu-µs/msg")
			b.ReportMetric(float64(mine.peers.Microseconds())/msgs, "recv-cpu-µs/msg")
		})
	}
}

func benchSend() *Chunk {
	t := boundTransport(nil, benchURIA, benchURIB)
	c := t.MakeSendRequest("", make([]byte, 100), 1, 0)
	c.Headers.Set(HeaderContentType, "text/plain")
	return c
}

func rawSmall(b *testing.B, n, inFlight int, reqWire []byte, respLen int, env []string) run {
	p := startPeer(b, "raw-echo", false, env...)
	defer p.conn.Close()
	slots := make(chan struct{}, inFlight)
	cpu, start := selfCPU(), time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, respLen)
		for range n {
			if _, err := io.ReadFull(p.conn, buf); err != nil {
				b.Error(err)
				return
			}
			<-slots
		}
	})
	for range n {
		slots <- struct{}{}
		if _, err := p.conn.Write(reqWire); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	closeWrite(p.conn)
	r.peers = p.wait(b)
	return r
}

func msrpSmall(b *testing.B, n, inFlight int) run {
	p := startPeer(b, "msrp-answer", false)
	t := boundTransport(p.conn, benchURIA, benchURIB)
	s := NewMSRPSession(t, SessionConfig{KeepaliveInterval: -1})
	defer s.Close()
	ctx := context.Background()
	body := make([]byte, 100)
	cpu, start := selfCPU(), time.Now()
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Go(func() {
			for i := w; i < n; i += inFlight {
				c := t.MakeSendRequest("", body, 1, 0)
				c.Headers.Set(HeaderContentType, "text/plain")
				if _, err := s.DeliverChunk(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	if err := s.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	r.peers = p.wait(b)
	return r
}

// runBenchPeer is the peer process: it connects back, does what mode says
// until the connection ends, and exits.
func runBenchPeer(mode string) int {
	if strings.HasSuffix(mode, "-many") {
		if err := benchManyClients(mode); err != nil {
			fmt.Fprintln(os.Stderr, "bench peer:", err)
			return 1
		}
		return 0
	}
	conn, err := net.Dial("tcp", os.Getenv("MSRP_BENCH_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench peer:", err)
		return 1
	}
	defer conn.Close()
	if os.Getenv("MSRP_BENCH_TLS") == "true" {
		cert, err := SelfSignedCertificate("127.0.0.1")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench peer:", err)
			return 1
		}
		conn = tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	if path := os.Getenv("MSRP_BENCH_PEER_CPUPROFILE"); path != "" { // where the peer's time goes
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	if err := benchPeer(mode, conn); err != nil {
		fmt.Fprintln(os.Stderr, "bench peer:", err)
		return 1
	}
	return 0
}

func benchPeer(mode string, conn net.Conn) error {
	switch mode {
	case "raw-sink": // read all, then say so with one byte
		if _, err := io.CopyBuffer(io.Discard, conn, make([]byte, 64<<10)); err != nil {
			return err
		}
		_, err := conn.Write([]byte{1})
		return err
	case "raw-echo": // answer each request of REQ bytes with RESP bytes
		reqLen, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_REQ"))
		respLen, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_RESP"))
		req, resp := make([]byte, reqLen), make([]byte, respLen)
		for {
			if _, err := io.ReadFull(conn, req); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if _, err := conn.Write(resp); err != nil {
				return err
			}
		}
	case "msrp-chunks": // a session whose application takes chunks, msrplib's way
		t := boundTransport(conn, benchURIB, benchURIA)
		var got int64
		s := NewMSRPSession(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: func(s *MSRPSession, c *Chunk) {
			got += int64(len(c.Data))
			s.Transport().ReleaseChunk(c)
		}})
		<-s.Done()
		if got == 0 {
			return errors.New("no chunk came")
		}
		return s.Err()
	case "msrp-sink", "msrp-answer": // a session that takes every message
		t := boundTransport(conn, benchURIB, benchURIA)
		cfg := SessionConfig{KeepaliveInterval: -1}
		if mode == "msrp-sink" {
			cfg.MessageWriter = func(*MSRPSession, *IncomingMessage) io.Writer { return io.Discard }
		}
		s := NewMSRPSession(t, cfg)
		ctx := context.Background()
		for m, _ := s.Receive(ctx); m != nil; m, _ = s.Receive(ctx) {
		}
		return s.Err()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// BenchmarkTwoProcessManySessions has a peer process open 100 sessions to
// one MSRPServer and send 200 small messages on each, one at a time per
// session, all sessions at once; the server's sessions take them with
// Receive. The raw baseline is 100 connections doing the same exchanges
// of the same bytes (the encoded SEND one way, its 200 back).
func BenchmarkTwoProcessManySessions(b *testing.B) {
	const sessions, each = 100, 200
	req := benchSend()
	reqWire, _ := req.Encode(nil)
	resp, _ := NewResponse(req, 200, "")
	respWire, _ := resp.Encode(nil)
	var raw, mine run
	for b.Loop() {
		raw.add(rawMany(b, sessions, each, len(reqWire), respWire))
		mine.add(msrpMany(b, sessions, each))
	}
	msgs := float64(b.N * sessions * each)
	b.ReportMetric(msgs/raw.wall.Seconds(), "raw-msgs/s")
	b.ReportMetric(msgs/mine.wall.Seconds(), "msrp-msgs/s")
	b.ReportMetric(raw.wall.Seconds()/mine.wall.Seconds(), "msrp/raw")
	b.ReportMetric(float64(mine.ours.Microseconds())/msgs, "server-cpu-µs/msg")
	b.ReportMetric(float64(mine.peers.Microseconds())/msgs, "client-cpu-µs/msg")
}

// startClients runs the test binary as a peer process in mode, connecting
// to addr, with env.
func startClients(b *testing.B, mode, addr string, env ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchPeerEnv+"="+mode, "MSRP_BENCH_ADDR="+addr)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd
}

// waitClients waits for a peer process to exit and returns the CPU time it
// used.
func waitClients(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("peer: %v", err)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func rawMany(b *testing.B, sessions, each, reqLen int, respWire []byte) run {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cpu, start := selfCPU(), time.Now()
	cmd := startClients(b, "raw-many", ln.Addr().String(), "MSRP_BENCH_SESSIONS="+strconv.Itoa(sessions),
		"MSRP_BENCH_EACH="+strconv.Itoa(each), "MSRP_BENCH_REQ="+strconv.Itoa(reqLen), "MSRP_BENCH_RESP="+strconv.Itoa(len(respWire)))
	var wg sync.WaitGroup
	for range sessions {
		conn, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, reqLen)
			for range each {
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Error(err)
					return
				}
				if _, err := conn.Write(respWire); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	r.peers = waitClients(b, cmd)
	return r
}

func benchPeerURI(i int) URI {
	return URI{Host: "127.0.0.1", Port: 3, SessionID: fmt.Sprintf("peer%04d", i), Transport: "tcp"}
}

func msrpMany(b *testing.B, sessions, each int) run {
	srv := &MSRPServer{}
	defer srv.Close()
	ctx := context.Background()
	accs := make([]Connector, sessions)
	var paths []string
	for i := range accs {
		accs[i] = srv.Acceptor(ServerAcceptorConfig{})
		local, err := accs[i].Prepare(ctx, URI{Host: "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		paths = append(paths, local[0].String())
	}
	cpu, start := selfCPU(), time.Now()
	cmd := startClients(b, "msrp-many", "", "MSRP_BENCH_PATHS="+strings.Join(paths, " "), "MSRP_BENCH_EACH="+strconv.Itoa(each))
	var wg sync.WaitGroup
	for i, acc := range accs {
		wg.Go(func() {
			s, err := StartSession(ctx, acc, []URI{benchPeerURI(i)}, SessionConfig{KeepaliveInterval: -1})
			if err != nil {
				b.Error(err)
				return
			}
			defer s.Close()
			for range each {
				if _, err := s.Receive(ctx); err != nil {
					b.Error(err)
					return
				}
			}
			<-s.Done() // the client hangs up once its last message is answered
		})
	}
	wg.Wait()
	r := run{wall: time.Since(start), ours: selfCPU() - cpu}
	r.peers = waitClients(b, cmd)
	return r
}

// benchManyClients is the peer of BenchmarkTwoProcessManySessions: many
// connections or sessions at once, each sending its messages one at a time.
func benchManyClients(mode string) error {
	each, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_EACH"))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	switch mode {
	case "raw-many":
		n, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_SESSIONS"))
		reqLen, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_REQ"))
		respLen, _ := strconv.Atoi(os.Getenv("MSRP_BENCH_RESP"))
		for range n {
			conn, err := net.Dial("tcp", os.Getenv("MSRP_BENCH_ADDR"))
			if err != nil {
				return err
			}
			wg.Go(func() {
				defer conn.Close()
				req, resp := make([]byte, reqLen), make([]byte, respLen)
				for range each {
					if _, err := conn.Write(req); err != nil {
						fail(err)
						return
					}
					if _, err := io.ReadFull(conn, resp); err != nil {
						fail(err)
						return
					}
				}
			})
		}
	case "msrp-many":
		for i, p := range strings.Fields(os.Getenv("MSRP_BENCH_PATHS")) {
			server, err := ParseURI(p)
			if err != nil {
				return err
			}
			wg.Go(func() {
				conn, err := net.Dial("tcp", server.HostPort())
				if err != nil {
					fail(err)
					return
				}
				t := NewMSRPTransport(conn, benchPeerURI(i))
				if err := t.Bind(ctx, []URI{server}); err != nil {
					fail(err)
					return
				}
				s := NewMSRPSession(t, SessionConfig{KeepaliveInterval: -1, OnIncoming: func(*MSRPSession, *Chunk) {}})
				body := make([]byte, 100)
				for range each {
					if err := s.Send(ctx, "text/plain", body, MessageOptions{}); err != nil {
						fail(err)
						break
					}
				}
				s.Shutdown(ctx)
			})
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
