package msrp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/internal/testcert"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPeer is the hostile or broken far end of a session under test: a bare
// TCP connection that writes whatever a case wants.
type rawPeer struct {
	conn *net.TCPConn
	tr   *MSRPTransport // for building chunks with the right paths, and reading answers
}

// hostileSetup starts a session on one end of a loopback TCP connection and
// returns it with the raw far end.
func hostileSetup(t *testing.T, cfg SessionConfig) (*MSRPSession, *rawPeer) {
	ts, peer := pipePair(t)
	s := NewMSRPSession(ts, cfg)
	t.Cleanup(func() { s.Close() })
	return s, &rawPeer{conn: peer.netConn().(*net.TCPConn), tr: peer}
}

func (p *rawPeer) send(t *testing.T, data []byte) {
	t.Helper()
	_, err := p.conn.Write(data)
	require.NoError(t, err)
}

func (p *rawPeer) wire(t *testing.T, text string) []byte {
	t.Helper()
	raw, err := textSend(p.tr, text).Encode(nil)
	require.NoError(t, err)
	return raw
}

func waitDone(t *testing.T, s *MSRPSession) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
}

// Each way a peer can cut a connection short, and what the session does:
// it ends at once, reports the cause, delivers nothing half-read, and
// leaves no goroutine behind.
func TestFaultsPeerGoesAway(t *testing.T) {
	leakcheck.Check(t)
	whole := func(p *rawPeer, t *testing.T) []byte { return p.wire(t, "a whole chunk") }
	cuts := []struct {
		name string
		at   func(raw []byte) int // bytes sent before the peer goes
	}{
		{"mid start line", func(raw []byte) int { return 7 }},
		{"mid header", func(raw []byte) int { return bytes.Index(raw, []byte("From-Path")) + 5 }},
		{"mid body", func(raw []byte) int { return bytes.Index(raw, []byte("a whole")) + 3 }},
		{"mid end-line", func(raw []byte) int { return len(raw) - 5 }},
		{"between flag and CRLF", func(raw []byte) int { return len(raw) - 2 }},
	}
	for _, cut := range cuts {
		t.Run("close "+cut.name, func(t *testing.T) {
			rec := newRecorder()
			s, p := hostileSetup(t, SessionConfig{OnIncoming: rec.onChunk})
			raw := whole(p, t)
			p.send(t, raw[:cut.at(raw)])
			p.conn.Close()
			waitDone(t, s)
			assert.ErrorIs(t, s.Err(), io.ErrUnexpectedEOF)
			chunks, _ := rec.snapshot()
			assert.Empty(t, chunks, "nothing half-read is delivered")
		})
	}
	t.Run("half-close after a chunk: it is answered, then the session ends", func(t *testing.T) {
		rec := newRecorder()
		s, p := hostileSetup(t, SessionConfig{OnIncoming: rec.onChunk})
		p.send(t, whole(p, t))
		require.NoError(t, p.conn.CloseWrite())
		resp, err := p.tr.ReadChunk(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 200, resp.Code)
		waitDone(t, s)
		assert.NoError(t, s.Err(), "a clean end: the peer closed at a chunk boundary, nothing lost")
		chunks, _ := rec.snapshot()
		assert.Len(t, chunks, 1)
	})
	t.Run("reset: the session ends with the error", func(t *testing.T) {
		s, p := hostileSetup(t, SessionConfig{})
		p.send(t, whole(p, t)[:20])
		require.NoError(t, p.conn.SetLinger(0))
		p.conn.Close()
		waitDone(t, s)
		require.Error(t, s.Err())
		assert.False(t, errors.Is(s.Err(), io.EOF), "a reset is not a clean end: %v", s.Err())
	})
	t.Run("pending requests fail at once when the peer goes", func(t *testing.T) {
		s, p := hostileSetup(t, SessionConfig{})
		errs := make(chan error, 1)
		go func() {
			_, err := s.DeliverChunk(context.Background(), textSend(s.Transport(), "anyone?"))
			errs <- err
		}()
		_, err := p.tr.ReadChunk(context.Background()) // the request arrived; never answer it
		require.NoError(t, err)
		start := time.Now()
		p.conn.Close()
		err = <-errs
		assert.ErrorIs(t, err, ErrSessionClosed)
		assert.Less(t, time.Since(start), time.Second)
	})
}

// A peer that stalls forever, mid-chunk and reading nothing: the keepalive
// finds the connection dead (its write cannot complete, or no response
// comes), and the session ends on its own.
func TestFaultStallForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, peer := pipeSessionAndPeer(t, SessionConfig{})
		raw, err := textSend(peer, "never finished").Encode(nil)
		require.NoError(t, err)
		go peer.netConn().Write(raw[:len(raw)/2]) // half a chunk, then silence: reads nothing either
		start := time.Now()
		<-s.Done()
		assert.Equal(t, DefaultKeepaliveInterval+DefaultResponseTimeout, time.Since(start))
		assert.Error(t, s.Err())
	})
}

// Byte-at-a-time delivery, garbage before and between chunks, a response
// to nothing, a REPORT about an unknown message: all harmless.
func TestFaultsOddButHarmless(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	s, p := hostileSetup(t, SessionConfig{OnIncoming: rec.onChunk})
	ctx := context.Background()

	raw := p.wire(t, "slowly")
	for i := range raw {
		p.send(t, raw[i:i+1])
	}
	resp, err := p.tr.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code)

	p.send(t, []byte("GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n"))
	p.send(t, p.wire(t, "after garbage"))
	p.send(t, []byte("\x00\x01\x02 binary noise \xff\r\n"))
	p.send(t, p.wire(t, "between garbage"))
	for range 2 {
		resp, err = p.tr.ReadChunk(ctx)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.Code)
	}

	stray, err := NewResponse(textSend(p.tr, "x"), 200, "")
	require.NoError(t, err)
	require.NoError(t, p.tr.WriteChunk(ctx, stray)) // a response to nothing: dropped

	report := p.tr.MakeRequest(MethodREPORT)
	report.Headers.Add(HeaderMessageID, "nosuchmessage")
	report.Headers.Add(HeaderByteRange, "1-10/10")
	report.Headers.Add(HeaderStatus, "000 413 Unwanted Message")
	require.NoError(t, p.tr.WriteChunk(ctx, report)) // goes to the application; never answered

	p.send(t, p.wire(t, "still here"))
	resp, err = p.tr.ReadChunk(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Code, "the REPORT got no response; the next answer is for the SEND")
	rec.waitFor(t, "all of it", func(cs []*Chunk, _ []*IncomingMessage) bool { return len(cs) == 5 })
	chunks, _ := rec.snapshot()
	var texts []string
	for _, c := range chunks {
		texts = append(texts, c.Method+" "+string(c.Data))
	}
	assert.Equal(t, []string{"SEND slowly", "SEND after garbage", "SEND between garbage", "REPORT ", "SEND still here"}, texts)
	assert.Equal(t, StateConnected, s.State())
}

// A peer floods requests and reads none of the responses: the session
// stops reading once MaxPending answers wait (TCP then holds the peer
// back), memory stays bounded, and once the peer reads, every request is
// answered.
func TestFaultFloodWithoutReading(t *testing.T) {
	leakcheck.Check(t)
	const flood = 100000
	var delivered sync.WaitGroup
	delivered.Add(flood)
	s, p := hostileSetup(t, SessionConfig{
		KeepaliveInterval: -1,
		MaxPending:        1024,
		OnIncoming:        func(*MSRPSession, *Chunk) { delivered.Done() },
	})
	raw := p.wire(t, "flood")
	burst := bytes.Repeat(raw, 1000)
	wrote := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < flood/1000 && err == nil; i++ {
			_, err = p.conn.Write(burst)
		}
		wrote <- err
	}()

	base := heapInUse()
	time.Sleep(300 * time.Millisecond) // the flood fills every buffer and stalls
	select {
	case err := <-wrote:
		t.Fatalf("the whole flood was taken in without reading responses (err %v): no back-pressure", err)
	default:
	}
	s.mu.Lock()
	queued := len(s.queue)
	s.mu.Unlock()
	assert.LessOrEqual(t, queued, 1024, "the response queue is bounded")
	growth := int64(heapInUse()) - int64(base)
	t.Logf("stalled with %d responses queued, heap growth %d KiB", queued, growth>>10)
	assert.Less(t, growth, int64(64<<20))

	// Now the peer reads: everything gets its answer.
	answered := 0
	go func() {
		for answered < flood {
			if _, err := p.tr.ReadChunk(context.Background()); err != nil {
				return
			}
			answered++
		}
	}()
	require.NoError(t, <-wrote)
	delivered.Wait()
	assert.Equal(t, StateConnected, s.State())
}

// A server under attack by silent, garbage-sending and flooding clients
// still binds and serves its good sessions.
func TestFaultsServerUnderAttack(t *testing.T) {
	leakcheck.Check(t)
	srv := &MSRPServer{ConnectConfig: ConnectConfig{BindTimeout: 2 * time.Second}}
	defer srv.Close()
	ctx := context.Background()
	local, err := srv.Acceptor(ServerAcceptorConfig{}).Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	addr := local[0].HostPort()

	var attackers []net.Conn
	for i := range 30 {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		attackers = append(attackers, conn)
		switch i % 3 {
		case 0: // silent
		case 1:
			conn.Write(bytes.Repeat([]byte("garbage without end "), 500))
		case 2:
			conn.Write([]byte("MSRP abcd SEND\r\nTo-Path: " + FormatPath(local) + "\r\nX-Pad: "))
			conn.Write(bytes.Repeat([]byte("p"), 100000)) // one endless header line
		}
	}
	defer func() {
		for _, c := range attackers {
			c.Close()
		}
	}()

	for i := range 3 {
		ours, theirs, _ := bindOnServer(t, srv)
		a, b := NewMSRPSession(theirs, SessionConfig{}), NewMSRPSession(ours, SessionConfig{})
		_, err = a.DeliverChunk(ctx, textSend(theirs, fmt.Sprint("good session ", i)))
		assert.NoError(t, err)
		a.Close()
		b.Close()
	}
}

// Hostile input, a lot of it: the parser's memory stays within a fixed
// bound whatever arrives. Under the race detector the volume is smaller.
func TestHostileInputHeapBound(t *testing.T) {
	total := int64(1 << 30)
	if raceEnabled {
		total = 64 << 20
	}
	patterns := [][]byte{
		bytes.Repeat([]byte("x"), 64<<10),                                     // one endless line
		bytes.Repeat([]byte("MSRP abcd SEND\r\nX-H: v\r\n"), 2000),            // headers without end
		[]byte("MSRP abcd SEND\r\nContent-Type: a/b\r\n\r\n"),                 // then an endless body
		bytes.Repeat([]byte("\r\n-------abc"), 5000),                          // end-line lookalikes
		bytes.Repeat([]byte("MSRP x SEND\r\n\r\n\x00\xff garbage\r\n"), 2000), // bad start lines
	}
	var p Parser
	body := bytes.Repeat([]byte("b"), 64<<10)
	base := heapInUse()
	var peak uint64
	var fed int64
	for i := 0; fed < total; i++ {
		in := patterns[i%len(patterns)]
		if i%len(patterns) == 2 {
			for range 100 { // 6.4 MiB of body: over the 4 MiB cap
				feedAllIgnoringErrors(&p, body)
				fed += int64(len(body))
			}
		}
		feedAllIgnoringErrors(&p, in)
		fed += int64(len(in))
		if i%200 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	growth := int64(peak) - int64(base)
	t.Logf("fed %d MiB of hostile input; peak heap growth %d KiB", fed>>20, growth>>10)
	assert.Less(t, growth, int64(32<<20), "a parser holds at most a chunk (4 MiB) and its lines")
}

func feedAllIgnoringErrors(p *Parser, b []byte) {
	for len(b) > 0 {
		_, n, _ := p.Feed(b)
		b = b[n:]
	}
}

// TLS refuses what it must by default: a certificate for another name, an
// expired one, and a self-signed one nobody vouches for (with no
// fingerprint configured).
func TestTLSRefusals(t *testing.T) {
	leakcheck.Check(t)
	ctx := context.Background()
	try := func(t *testing.T, serverCert tls.Certificate, clientCfg *tls.Config) error {
		acceptor, path := preparedAcceptor(t, ConnectConfig{
			TLSConfig:      &tls.Config{Certificates: []tls.Certificate{serverCert}},
			ConnectTimeout: 300 * time.Millisecond,
		}, true)
		go func() { // any peer will do: TLS is what is tested
			if tr, err := acceptor.Complete(ctx, nil); err == nil {
				tr.Close()
			}
		}()
		c := &ConnectorDirect{ConnectConfig: ConnectConfig{TLSConfig: clientCfg}}
		_, err := c.Prepare(ctx, URI{Host: "127.0.0.1", UseTLS: true})
		require.NoError(t, err)
		tr, err := c.Complete(ctx, path)
		if tr != nil {
			tr.Close()
		}
		return err
	}
	t.Run("wrong name", func(t *testing.T) {
		cert, pool := testcert.New("other.example.com")
		err := try(t, cert, &tls.Config{RootCAs: pool})
		var hostErr x509.HostnameError
		assert.ErrorAs(t, err, &hostErr)
	})
	t.Run("expired", func(t *testing.T) {
		cert, pool := testcert.NewWith(testcert.Options{
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		}, "127.0.0.1")
		err := try(t, cert, &tls.Config{RootCAs: pool})
		var invalid x509.CertificateInvalidError
		require.ErrorAs(t, err, &invalid)
		assert.Equal(t, x509.Expired, invalid.Reason)
	})
	t.Run("self-signed, no fingerprint", func(t *testing.T) {
		cert, err := SelfSignedCertificate("127.0.0.1")
		require.NoError(t, err)
		err = try(t, cert, nil)
		var unknown x509.UnknownAuthorityError
		assert.ErrorAs(t, err, &unknown)
	})
	t.Run("the same, with its fingerprint pinned: accepted", func(t *testing.T) {
		cert, err := SelfSignedCertificate("127.0.0.1")
		require.NoError(t, err)
		fp, err := CertificateFingerprint(cert.Certificate[0], "sha-256")
		require.NoError(t, err)
		verify, err := VerifyFingerprint(fp)
		require.NoError(t, err)
		assert.NoError(t, try(t, cert, &tls.Config{InsecureSkipVerify: true, VerifyConnection: verify}))
	})
}
